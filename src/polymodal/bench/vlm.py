"""The small VLM shared by the claim checks that need one: trained once, cached."""

from __future__ import annotations

from polymodal.train.config import on_device
from polymodal.train.vlm import VLMConfig, load_vlm_config

DENSE = "shapes_vlm_dense"
"""The packaged recipe of the 576-token regime (``configs/shapes_vlm_dense.yaml``)."""
DENSE_QUICK_DATA = "{train: 240, val: 40, test: 100, image_size: 96, layout: dense, grid: 24}"


def vlm_config(quick: bool, device: str = "cpu", dense: bool = False) -> VLMConfig:
    """The bench VLM: the recipe's defaults (the values of ``configs/shapes_vlm.yaml``:
    64 visual tokens), or with ``dense`` the 576-token recipe
    (``configs/shapes_vlm_dense.yaml``, LLaVA-1.5's token count).

    Quick size trains a narrower model for one epoch on 2,000 questions (240 dense;
    well under a minute on two CPU cores); it checks that everything runs, not the
    claim. ``device`` (``cpu`` or ``cuda``) is where it trains; a CUDA run is its own
    cache entry.
    """
    overrides = ["trainer.progress_bar=false"]
    if quick:
        data = DENSE_QUICK_DATA if dense else "{train: 2000, val: 100, test: 200}"
        overrides += [
            f"name=shapes-vlm{'-dense' if dense else ''}-quick",
            f"data.options={data}",
            "model.vision_hidden=64",
            "model.text_hidden=64",
            f"vision_pretrain.steps={20 if dense else 40}",
            "trainer.max_epochs=1",
        ]
    return on_device(load_vlm_config(DENSE if dense else None, overrides), device)
