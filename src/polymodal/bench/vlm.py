"""The small VLM shared by the claim checks that need one: trained once, cached."""

from __future__ import annotations

from polymodal.train.config import on_device
from polymodal.train.vlm import VLMConfig, load_vlm_config


def vlm_config(quick: bool, device: str = "cpu") -> VLMConfig:
    """The bench VLM: the recipe's defaults (the values of ``configs/shapes_vlm.yaml``).

    Quick size trains a narrower model for one epoch on 2,000 questions (well under
    a minute on two CPU cores); it checks that everything runs, not the claim.
    ``device`` (``cpu`` or ``cuda``) is where it trains; a CUDA run is its own
    cache entry.
    """
    overrides = ["trainer.progress_bar=false"]
    if quick:
        overrides += [
            "name=shapes-vlm-quick",
            "data.options={train: 2000, val: 100, test: 200}",
            "model.vision_hidden=64",
            "model.text_hidden=64",
            "vision_pretrain.steps=40",
            "trainer.max_epochs=1",
        ]
    return on_device(load_vlm_config(None, overrides), device)
