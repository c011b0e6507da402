"""The bench VLMs: the 64-token recipe and the 576-token (dense) one."""

from polymodal.bench.registry import all_checks
from polymodal.bench.vlm import vlm_config
from polymodal.data.synth.shapes_vqa import ShapesVQAConfig


def test_the_dense_recipe_gives_576_visual_tokens_on_the_dense_layout():
    for quick in (False, True):
        config = vlm_config(quick, dense=True)
        options = config.data.options
        assert options["layout"] == "dense"
        assert (options["image_size"] // config.model.patch_size) ** 2 == 576
        assert options["grid"] * config.model.patch_size == options["image_size"]
        ShapesVQAConfig(**options)  # the data set accepts every option
    assert vlm_config(False).model.patch_size == 8  # the 64-token recipe is unchanged
    assert vlm_config(False).data.options["image_size"] == 64


def test_both_regimes_are_checks_of_their_own():
    checks = all_checks()
    for name in ("divprune", "aki"):
        assert checks[f"{name}_dense"].claim == checks[name].claim
        assert checks[f"{name}_dense"].criterion == checks[name].criterion
        assert not checks[f"{name}_dense"].default
