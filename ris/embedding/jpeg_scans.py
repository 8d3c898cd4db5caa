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
_SOF_PROGRESSIVE = (0xC2, 0xC6, 0xCA, 0xCE)
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


def _components(frame: bytes) -> list[_Component]:
    """The frame's components with their block grids (JPEG Annex A.1.1)."""
    height, width = int.from_bytes(frame[1:3], "big"), int.from_bytes(frame[3:5], "big")
    fields = [frame[6 + 3 * index : 9 + 3 * index] for index in range(frame[5])]
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
    of a full decode: its 1/8 inverse DCT reads the DC term alone. A subsampled one (chroma) is
    scaled up by its inverse DCT, which reads AC terms: its AC scans are left out only when its
    DC terms alone are `side` samples both ways, and it then differs from a full decode by the
    chroma detail finer than that."""
    if data[:2] != b"\xff\xd8":
        return None
    kept = [data[:2]]
    emptied: dict[int, _Component] = {}
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
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
        if marker in _SOF_PROGRESSIVE:
            emptied = {
                component.identifier: component
                for component in _components(data[position + 4 : end])
                if min(component.columns, component.rows) >= side
            }
        if marker != _SOS:
            kept.append(data[position:end])
            position = end
            continue
        if not emptied:
            return None  # a baseline JPEG, a scan before its frame header, or too small
        components = [data[position + 5 + 2 * index] for index in range(data[position + 4])]
        following = _NEXT_MARKER.search(data, end)
        scan_end = following.start() if following else len(data)
        if data[end - 3] == 0 or components[0] not in emptied:  # DC scans, kept components
            kept.append(data[position:scan_end])
        position = scan_end
    if not emptied:
        return None
    kept.append(_NO_RESTARTS)  # the empty scans have no restart markers
    kept.extend(_empty_scan(component) for component in emptied.values())
    kept.append(b"\xff\xd9")
    return b"".join(kept)
