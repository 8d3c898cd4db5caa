"""Decoding at the cost of the pixels needed: the same picture as a full decode, for less work."""

import io

import numpy as np
import pytest
from PIL import Image

from ris.embedding.imaging import load_image
from ris.embedding.jpeg_scans import keep_scans_for_eighth_scale
from ris.errors import ImageDecodeError
from tests.imagefiles import textured, two_halves, write_image

SIZE = 64
LIMIT = 100_000_000


def _photo_like(width: int, height: int) -> Image.Image:
    """Large and detailed, so its AC scans carry most of the bytes as a photo's do."""
    return textured(width // 8, height // 8).resize((width, height), Image.Resampling.BICUBIC)


def _draft_decode(data: bytes, side: int, mode: str = "RGB") -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    image.draft(mode, (side, side))
    return np.asarray(image if image.mode == mode else image.convert(mode))


@pytest.mark.parametrize("subsampling", [0, 1, 2])  # 4:4:4, 4:2:2, 4:2:0
def test_progressive_jpeg_at_an_eighth_keeps_every_pixel(subsampling: int) -> None:
    """Chroma whose DC terms are fewer than `side` keeps its AC scans: every pixel as before."""
    out = io.BytesIO()
    _photo_like(1600, 1200).save(out, "JPEG", quality=92, progressive=True, subsampling=subsampling)
    whole = out.getvalue()
    side = 1200 // 8
    fewer = keep_scans_for_eighth_scale(whole, side)
    assert fewer is not None and len(fewer) < 0.8 * len(whole)
    np.testing.assert_array_equal(_draft_decode(fewer, side), _draft_decode(whole, side))


def test_chroma_with_enough_dc_terms_loses_only_its_finer_detail() -> None:
    """4:2:0 chroma whose DC terms alone are `side` both ways is read from them: luma keeps
    every pixel, colours stay close even on a picture of random colours."""
    out = io.BytesIO()
    _photo_like(2400, 1800).save(out, "JPEG", quality=90, progressive=True, subsampling=2)
    whole = out.getvalue()
    side = 1800 // 16
    fewer = keep_scans_for_eighth_scale(whole, side)
    assert fewer is not None and len(fewer) < 0.2 * len(whole)
    luma = [_draft_decode(data, side, "YCbCr")[:, :, 0] for data in (fewer, whole)]
    np.testing.assert_array_equal(luma[0], luma[1])
    reduced, full = _draft_decode(fewer, side), _draft_decode(whole, side)
    assert np.abs(reduced.astype(np.int16) - full).mean() < 8.0


def test_load_image_of_a_large_4_2_0_progressive_jpeg_stays_close_to_a_plain_draft(
    tmp_path,
) -> None:
    path = write_image(tmp_path / "big.jpg", _photo_like(2400, 1800), quality=90, progressive=True)
    side = SIZE * 3 // 4
    expected = Image.fromarray(_draft_decode(path.read_bytes(), side)).resize(
        (SIZE, SIZE), Image.Resampling.BILINEAR
    )
    array = load_image(str(path), SIZE, LIMIT).astype(np.int16)
    assert np.abs(array - np.asarray(expected, np.int16)).mean() < 8.0


def test_load_image_gives_the_same_array_as_before(tmp_path) -> None:
    """The product's decode of a large progressive JPEG equals Pillow's plain draft decode."""
    image = _photo_like(2400, 1800)
    path = write_image(tmp_path / "big.jpg", image, quality=90, progressive=True, subsampling=0)
    side = SIZE * 3 // 4
    expected = Image.fromarray(_draft_decode(path.read_bytes(), side)).resize(
        (SIZE, SIZE), Image.Resampling.BILINEAR
    )
    np.testing.assert_array_equal(load_image(str(path), SIZE, LIMIT), np.asarray(expected))
    np.testing.assert_array_equal(load_image(path.read_bytes(), SIZE, LIMIT), np.asarray(expected))


@pytest.mark.parametrize(
    ("mode", "options"),
    [("L", {}), ("RGB", {"restart_marker_rows": 2, "subsampling": 0})],
    ids=["grey", "restart-markers"],
)
def test_grey_and_restart_marked_progressive_jpegs_keep_every_pixel(
    mode: str, options: dict[str, int]
) -> None:
    out = io.BytesIO()
    image = _photo_like(1600, 1200).convert(mode)
    image.save(out, "JPEG", quality=90, progressive=True, **options)
    whole = out.getvalue()
    fewer = keep_scans_for_eighth_scale(whole, 150)
    assert fewer is not None and len(fewer) < 0.5 * len(whole)
    np.testing.assert_array_equal(_draft_decode(fewer, 150), _draft_decode(whole, 150))


def _segment(data: bytes, marker: int, nth: int = 0) -> int:
    """Where the `nth` segment with `marker` starts."""
    position = -1
    for _ in range(nth + 1):
        position = data.index(bytes([0xFF, marker]), position + 1)
    return position


def _damaged(whole: bytes, damage: str) -> bytes:
    data = bytearray(whole)
    frame, second_scan = _segment(whole, 0xC2), _segment(whole, 0xDA, 1)
    if damage == "zero sampling":
        data[frame + 4 + 7] = 0x00
    elif damage == "scan without components":
        data[second_scan + 4] = 0
    elif damage == "cut scan header":
        del data[second_scan + 6 :]
    elif damage == "second frame header":
        length = int.from_bytes(whole[frame + 2 : frame + 4], "big")
        data[second_scan:second_scan] = whole[frame : frame + 2 + length]
    elif damage == "arithmetic coding":
        data[frame + 1] = 0xCA
    elif damage == "thousands of segments":
        data[second_scan:second_scan] = b"\xff\xfe\x00\x03x" * 5000
    return bytes(data)


@pytest.mark.parametrize(
    "damage",
    [
        "zero sampling",
        "scan without components",
        "cut scan header",
        "second frame header",
        "arithmetic coding",
        "thousands of segments",
    ],
)
def test_hostile_headers_are_left_whole_and_decoded_or_refused_with_a_reason(
    tmp_path, damage: str
) -> None:
    out = io.BytesIO()
    _photo_like(1600, 1200).save(out, "JPEG", quality=90, progressive=True)
    data = _damaged(out.getvalue(), damage)
    assert keep_scans_for_eighth_scale(data, 150) is None
    path = tmp_path / "damaged.jpg"
    path.write_bytes(data)
    try:
        array = load_image(str(path), SIZE, LIMIT)
    except ImageDecodeError as error:
        assert str(error).startswith(("corrupt image", "not an image")), str(error)
    else:
        assert array.shape == (SIZE, SIZE, 3)


def test_baseline_jpegs_are_left_to_the_plain_decoder() -> None:
    out = io.BytesIO()
    _photo_like(800, 600).save(out, "JPEG", quality=90)
    assert keep_scans_for_eighth_scale(out.getvalue(), 75) is None
    assert keep_scans_for_eighth_scale(b"not a jpeg", 75) is None


def test_a_reduced_progressive_jpeg_is_still_turned_upright(tmp_path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image = two_halves(1600, 800, (255, 0, 0), (0, 0, 255))
    path = write_image(tmp_path / "r.jpg", image, exif=exif.tobytes(), progressive=True)
    array = load_image(str(path), SIZE, LIMIT)
    assert array[2, SIZE // 2, 0] > 200 and array[-3, SIZE // 2, 2] > 200


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95])
def test_a_truncated_progressive_jpeg_is_decoded_or_refused_with_a_reason(
    tmp_path, cut: float
) -> None:
    whole = write_image(
        tmp_path / "w.jpg", _photo_like(1600, 1200), quality=90, progressive=True
    ).read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(whole[: int(len(whole) * cut)])
    try:
        array = load_image(str(path), SIZE, LIMIT)
    except ImageDecodeError as error:
        assert str(error).startswith("corrupt image")
    else:
        assert array.shape == (SIZE, SIZE, 3)


def test_large_png_is_shrunk_first_and_stays_close_to_a_full_resize(tmp_path) -> None:
    image = _photo_like(1800, 1200)
    path = write_image(tmp_path / "big.png", image)
    full = np.asarray(image.resize((SIZE, SIZE), Image.Resampling.BILINEAR), dtype=np.int16)
    reduced = load_image(str(path), SIZE, LIMIT).astype(np.int16)
    assert np.abs(full - reduced).mean() < 2.0


def test_large_transparent_png_and_webp_are_composited_on_white(tmp_path) -> None:
    clear = Image.new("RGBA", (1600, 1600), (0, 0, 0, 0))
    for name in ("clear.png", "clear.webp"):
        path = write_image(tmp_path / name, clear, **({"lossless": True} if "webp" in name else {}))
        assert load_image(str(path), SIZE, LIMIT).min() == 255, name


def test_webp_keeps_its_exif_orientation_and_colours(tmp_path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    image = two_halves(400, 200, (255, 0, 0), (0, 0, 255))
    path = write_image(tmp_path / "r.webp", image, exif=exif.tobytes(), quality=95)
    array = load_image(str(path), SIZE, LIMIT)
    assert array[2, SIZE // 2, 0] > 200 and array[2, SIZE // 2, 2] < 60
    assert array[-3, SIZE // 2, 2] > 200 and array[-3, SIZE // 2, 0] < 60


def test_a_corrupt_webp_is_refused_with_a_reason(tmp_path) -> None:
    whole = write_image(tmp_path / "w.webp", _photo_like(800, 600), quality=80).read_bytes()
    path = tmp_path / "cut.webp"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ImageDecodeError, match="corrupt image|not an image"):
        load_image(str(path), SIZE, LIMIT)
