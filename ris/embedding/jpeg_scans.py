"""Large progressive JPEGs decoded at a fraction of their cost: only the scans a 1/8 decode reads.

A progressive JPEG stores its DCT coefficients in scans: first the DC term of every 8x8 block,
then bands of AC terms and refinements of their precision. Decoding at 1/8 scale (Pillow's draft
mode, for any photo 8 times larger than the model's input) reads only the DC term of a
full-resolution component, yet libjpeg still Huffman-decodes every scan, and while any AC term is
missing it "smooths" every block from its neighbours: that is what makes a large progressive file
several times slower than a baseline one. Here every AC scan of a component whose DC terms alone
give enough samples is left out, and one empty scan (a run of end-of-block codes) takes its
place, so that libjpeg knows those terms are zero rather than missing and skips the smoothing.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# The end of a scan's entropy-coded data: a marker that is not a stuffed 0xFF00 or a restart.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7]")
# Huffman-coded progressive frames; every other frame type (baseline, lossless, arithmetic-coded,
# hierarchical) is left to libjpeg whole.
_SOF_PROGRESSIVE = 0xC2
_SOF_ANY = {*range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC}
# More segments than a photo has (about 20 scans and their tables): left to libjpeg whole, so that
# a hostile file costs no more here than in libjpeg.
_MOST_SEGMENTS = 1000
_SOS, _EOI = 0xDA, 0xD9
_STANDALONE = {0x01, *range(0xD0, 0xD8)}
# The empty scans' Huffman table: the end-of-block runs EOB0..EOB14, each a 4-bit code.
_EMPTY_TABLE_ID = 3
_EOB_RUN_CLASSES = 15
_LONGEST_RUN = (1 << _EOB_RUN_CLASSES) - 1
_NO_RESTARTS = b"\xff\xdd\x00\x04\x00\x00"


class _Component(NamedTuple):
    identifier: int
    columns: int  # 8x8 blocks across
    rows: int  # 8x8 blocks down


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _components(frame: bytes) -> list[_Component] | None:
    """The frame's components with their block grids (JPEG Annex A.1.1); None for a header
    libjpeg would refuse or this does not handle."""
    if len(frame) < 6 or not 1 <= frame[5] <= 4 or len(frame) != 6 + 3 * frame[5]:
        return None
    height, width = int.from_bytes(frame[1:3], "big"), int.from_bytes(frame[3:5], "big")
    fields = [frame[6 + 3 * index : 9 + 3 * index] for index in range(frame[5])]
    samplings = [factor for _, sampling, _ in fields for factor in (sampling >> 4, sampling & 15)]
    identifiers = {identifier for identifier, _, _ in fields}
    valid = height > 0 and width > 0 and all(1 <= factor <= 4 for factor in samplings)
    if not valid or len(identifiers) < len(fields):
        return None
    widest = max(sampling >> 4 for _, sampling, _ in fields)
    tallest = max(sampling & 0x0F for _, sampling, _ in fields)
    return [
        _Component(
            identifier,
            _ceil_div(_ceil_div(width * (sampling >> 4), widest), 8),
            _ceil_div(_ceil_div(height * (sampling & 0x0F), tallest), 8),
        )
        for identifier, sampling, _ in fields
    ]


def _entropy_coded(bits: str) -> bytes:
    """Bits padded with ones to a whole byte, every 0xFF byte stuffed with a zero."""
    bits += "1" * (-len(bits) % 8)
    coded = bytearray()
    for start in range(0, len(bits), 8):
        coded.append(int(bits[start : start + 8], 2))
        if coded[-1] == 0xFF:
            coded.append(0)
    return bytes(coded)


def _empty_scan(component: _Component) -> bytes:
    """A first scan of AC terms 1-63 at full precision in which every block is one long
    end-of-block run: every AC term of the component is then known to be zero."""
    codes = []
    blocks = component.columns * component.rows
    while blocks:
        run = min(blocks, _LONGEST_RUN)
        size = run.bit_length() - 1  # EOBn: a run of 2**n plus n extra bits
        codes.append(format(size, "04b") + (format(run - (1 << size), f"0{size}b") if size else ""))
        blocks -= run
    lengths = bytes(16)[:3] + bytes([_EOB_RUN_CLASSES]) + bytes(12)  # 15 codes of 4 bits
    table = bytes([0x10 | _EMPTY_TABLE_ID]) + lengths + bytes(n << 4 for n in range(15))
    header = bytes([1, component.identifier, _EMPTY_TABLE_ID, 1, 63, 0])
    return (
        b"\xff\xc4" + (2 + len(table)).to_bytes(2, "big") + table
        + b"\xff\xda" + (2 + len(header)).to_bytes(2, "big") + header
        + _entropy_coded("".join(codes))
    )  # fmt: skip


def keep_scans_for_eighth_scale(data: bytes, side: int) -> bytes | None:
    """`data` without the AC scans a decode at 1/8 scale, at least `side` pixels both ways, can
    do without, or None when nothing can be left out (not a progressive JPEG, or a structure
    this does not recognise). A full-resolution component (luma) comes out with the very pixels
    of a full decode: its 1/8 inverse DCT reads the DC term alone. A subsampled one may be
    scaled up by its inverse DCT, which then reads AC terms (4:2:0 chroma is): its AC scans are
    left out only when its DC terms alone are `side` samples both ways, and it may then differ
    from a full decode by the chroma detail finer than that. The bytes come from anywhere:
    whatever they hold, this returns bytes or None, reading each at most a few times."""
    try:
        return _without_ac_scans(data, side)
    except (IndexError, ValueError):  # a structure the checks below missed: decode it whole
        return None


def _without_ac_scans(data: bytes, side: int) -> bytes | None:
    if data[:2] != b"\xff\xd8":
        return None
    kept = [data[:2]]
    emptied: dict[int, _Component] | None = None  # None until the frame header
    position = 2
    while position + 4 <= len(data):
        if len(kept) > _MOST_SEGMENTS or data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker == _EOI:
            break
        if marker in _STANDALONE:
            kept.append(data[position : position + 2])
            position += 2
            continue
        end = position + 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        if end > len(data) or end < position + 4:
            return None
        if marker in _SOF_ANY:
            components = _components(data[position + 4 : end])
            if marker != _SOF_PROGRESSIVE or emptied is not None or components is None:
                return None  # another kind of frame, a second frame header, or a bad one
            emptied = _emptied(components, side)
        if marker != _SOS:
            kept.append(data[position:end])
            position = end
            continue
        header = data[position + 4 : end]
        if emptied is None or not 1 <= header[0] <= 4 or len(header) != 4 + 2 * header[0]:
            return None  # a scan before its frame header, or a malformed one
        following = _NEXT_MARKER.search(data, end)
        scan_end = following.start() if following else len(data)
        first, component = header[-3], header[1]
        if first == 0 or component not in emptied:
            kept.append(data[position:scan_end])  # DC scans, and the components kept whole
        position = scan_end
    if not emptied:
        return None  # a baseline JPEG, or a picture too small for its DC terms alone
    kept.append(_NO_RESTARTS)  # the empty scans have no restart markers
    kept.extend(_empty_scan(component) for component in emptied.values())
    kept.append(b"\xff\xd9")
    return b"".join(kept)


def _emptied(components: list[_Component], side: int) -> dict[int, _Component]:
    """The components whose DC terms alone are `side` samples both ways, by identifier."""
    return {
        component.identifier: component
        for component in components
        if min(component.columns, component.rows) >= side
    }
