"""Large progressive JPEGs decoded at a fraction of their cost: only the scans a 1/8 decode reads.

A progressive JPEG stores its DCT coefficients in scans: first the DC term of every 8x8 block,
then bands of AC terms and refinements of their precision. Decoding at 1/8 scale (Pillow's draft
mode, for any photo 8 times larger than the model's input) uses only the DC term of the
full-resolution component, yet libjpeg still Huffman-decodes every scan: that is what makes a
large progressive file several times slower than a baseline one. Leaving out the scans a 1/8
decode never reads gives the same pixels for a fraction of the entropy decoding.
"""

from __future__ import annotations

import re

# The end of a scan's entropy-coded data: a marker that is not a stuffed 0xFF00 or a restart.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7]")
_SOF_PROGRESSIVE = (0xC2, 0xC6, 0xCA, 0xCE)
_SOS, _EOI = 0xDA, 0xD9
_STANDALONE = {0x01, *range(0xD0, 0xD8)}


def _full_resolution_components(frame: bytes) -> set[int]:
    """Ids of the components sampled at the frame's full resolution (luma, usually). libjpeg
    scales a subsampled component's inverse DCT up instead of upsampling it, so a 1/8 decode
    reads more than the DC term of those: they are kept whole."""
    components = [frame[6 + 3 * index : 9 + 3 * index] for index in range(frame[5])]
    widest = max(sampling >> 4 for _, sampling, _ in components)
    tallest = max(sampling & 0x0F for _, sampling, _ in components)
    return {
        identifier
        for identifier, sampling, _ in components
        if sampling >> 4 == widest and sampling & 0x0F == tallest
    }


def _scan_is_read(components: list[int], first: int, refining: bool, full: set[int]) -> bool:
    if first == 0 or not set(components) <= full:
        return True  # DC scans, and every scan of a subsampled component
    # One first pass of the lowest AC band is kept: with no AC term received at all,
    # libjpeg-turbo's block smoothing would also change the DC terms, and the pixels would
    # differ from a full decode's. Its values are never used at 1/8.
    return first == 1 and not refining


def keep_scans_for_eighth_scale(data: bytes) -> bytes | None:
    """`data` without the scans a decode at 1/8 scale does not read, or None when nothing can
    be left out (not a progressive JPEG, or a structure this does not recognise)."""
    if data[:2] != b"\xff\xd8":
        return None
    kept = [data[:2]]
    full: set[int] | None = None
    dropped_any = False
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
            full = _full_resolution_components(data[position + 4 : end])
        if marker != _SOS:
            kept.append(data[position:end])
            position = end
            continue
        if full is None:
            return None  # a baseline JPEG, or a scan before its frame header
        components = [data[position + 5 + 2 * index] for index in range(data[position + 4])]
        first, refining = data[end - 3], data[end - 1] >> 4 != 0
        following = _NEXT_MARKER.search(data, end)
        scan_end = following.start() if following else len(data)
        if _scan_is_read(components, first, refining, full):
            kept.append(data[position:scan_end])
        else:
            dropped_any = True
        position = scan_end
    if not dropped_any:
        return None
    kept.append(b"\xff\xd9")
    return b"".join(kept)
