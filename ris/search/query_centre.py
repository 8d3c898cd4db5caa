"""The centre of a query picture, searched again when nothing the whole query found verifies:
a picture pasted into a screenshot, padded or framed fills more of it than of the whole."""

from __future__ import annotations

import io

from ris.embedding.imaging import ImageSource, decoding, open_image, upright_rgb

# The centre's share of each side: its middle 49% of the area, as a search's second try.
CENTRE_SIDE = 0.7
# Decoded at least this many pixels on a side before the cut, so that the centre still has
# what local features (ris/search/verify.py's MAX_SIDE) and the model are given.
DECODE_SIDE = 480


def query_centre(source: ImageSource, max_pixels: int) -> bytes:
    """The upright picture's centre (CENTRE_SIDE of each side) as PNG bytes, which the
    embedding pipeline and local features read as they read an upload; raises
    ImageDecodeError if the picture cannot be read."""
    with open_image(source, max_pixels) as image, decoding():
        upright = upright_rgb(image, source, DECODE_SIDE)
        width, height = upright.size
        left, top = round(width * (1 - CENTRE_SIDE) / 2), round(height * (1 - CENTRE_SIDE) / 2)
        centre = upright.crop((left, top, width - left, height - top))
        encoded = io.BytesIO()
        # Lossless and quick to write: the bytes are read once by each of two readers.
        centre.save(encoded, "PNG", compress_level=1)
    return encoded.getvalue()
