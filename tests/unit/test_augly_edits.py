"""The held-out sets' AugLy edits: every edit runs, a seed fixes the pixels, hard copies are
small crops."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ris.datasets import augly_edits


def _photo() -> Image.Image:
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (180, 240, 3), dtype=np.uint8)
    return Image.fromarray(pixels).resize((480, 360))


@pytest.mark.parametrize("name", sorted(augly_edits.AUGLY_EDITS))
def test_every_edit_gives_an_rgb_picture_and_its_parameters(name: str) -> None:
    image, params = augly_edits.AUGLY_EDITS[name](_photo(), np.random.default_rng(1))
    assert image.convert("RGB").size[0] > 0 and isinstance(params, dict)


@pytest.mark.parametrize("strength", sorted(augly_edits.STRENGTHS))
def test_the_same_seed_gives_the_same_copy_and_another_seed_another(strength: str) -> None:
    edit = augly_edits.STRENGTHS[strength]
    first = edit(_photo(), np.random.default_rng([3, 1]))
    again = edit(_photo(), np.random.default_rng([3, 1]))
    other = edit(_photo(), np.random.default_rng([3, 2]))
    assert first.steps == again.steps and first.quality == again.quality
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))
    assert first.steps != other.steps


def test_a_hard_copy_keeps_a_tenth_to_a_quarter_of_the_picture_then_two_or_three_edits() -> None:
    for seed in range(20):
        copy = augly_edits.hard(_photo(), np.random.default_rng(seed))
        crop, *edits, jpeg = copy.steps
        left, top, right, bottom = crop["box"]
        assert 0.09 <= (right - left) * (bottom - top) <= 0.26
        assert 2 <= len(edits) <= 3 and jpeg["edit"] == "jpeg"
        assert augly_edits.JPEG_QUALITY[0] <= copy.quality <= augly_edits.JPEG_QUALITY[1]
