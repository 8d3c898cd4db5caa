"""The centre of a query picture, searched again when nothing the whole query found verifies:
a picture pasted into a screenshot, padded or framed fills more of it than of the whole."""

from __future__ import annotations

from ris.embedding.imaging import ImageSource, cut_out

# The centre's share of each side: its middle 49% of the area, as a search's second try.
CENTRE_SIDE = 0.7
# Decoded at least this many pixels on a side before the cut, so that the centre still has
# what local features (ris/search/verify.py's MAX_SIDE) and the model are given.
DECODE_SIDE = 480


def query_centre(source: ImageSource, max_pixels: int) -> bytes:
    """The upright picture's centre (CENTRE_SIDE of each side) as PNG bytes, which the
    embedding pipeline and local features read as they read an upload; raises
    ImageDecodeError if the picture cannot be read."""
    margin = (1 - CENTRE_SIDE) / 2
    (centre,) = cut_out(source, max_pixels, DECODE_SIDE, [(margin, margin, 1 - margin, 1 - margin)])
    return centre
