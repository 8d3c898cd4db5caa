"""Model recipes: a collection records its model's fingerprint, so adding a recipe field must
not change the fingerprints of the recipes collections were built with."""

from ris.embedding.models import MODELS, get_model_spec

# The fingerprints of recipes that collections in the field carry (their ONNX file names too).
SHIPPED = {
    "efficientnet-lite0": "0755bf3a7f145a7d",
    "lite0-mobilenet-v2-gem-deframe": "fe9f1ed318570406",
    "lite0-mobilenet-v2-gem-deframe-256": "d1dcbb83a4ec941d",
}


def test_recipes_collections_were_built_with_keep_their_fingerprints() -> None:
    assert {name: MODELS[name].fingerprint[:16] for name in SHIPPED} == SHIPPED


def test_the_compact_models_differ_in_dimension_and_shrinkage() -> None:
    first, compact = (get_model_spec(f"lite0-mobilenet-v2-gem-deframe-{d}") for d in (256, 384))
    assert (first.dim, first.projection_shrinkage) == (256, 30.0)
    assert (compact.dim, compact.projection_shrinkage) == (384, 10.0)
    assert compact.fingerprint != first.fingerprint
