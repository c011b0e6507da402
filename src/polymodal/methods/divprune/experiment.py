"""The small VLM the ``divprune`` claim check prunes (trained once, cached)."""

from __future__ import annotations

from polymodal.train.config import DataConfig, OptimConfig, TrainerConfig
from polymodal.train.vlm import VLMConfig, VLMModelConfig


def vlm_config(quick: bool) -> VLMConfig:
    """The bench VLM: ``configs/shapes_vlm.yaml``'s model; quick: smaller data and model.

    Quick size trains a narrower model for one epoch on 2,000 items (well under a
    minute on two CPU cores); it checks that everything runs, not the claim.
    """
    if quick:
        return VLMConfig(
            name="divprune-vlm-quick",
            data=DataConfig(
                name="shapes_vqa",
                options={"train": 2000, "val": 100, "test": 200},
                batch_size=64,
            ),
            model=VLMModelConfig(vision_hidden=64, text_hidden=64),
            optim=OptimConfig(lr=2e-3, weight_decay=0.01),
            trainer=TrainerConfig(max_epochs=1, patience=None, progress_bar=False),
        )
    return VLMConfig(
        name="divprune-vlm",
        data=DataConfig(name="shapes_vqa", options={}, batch_size=64),
        trainer=TrainerConfig(max_epochs=3, patience=None, progress_bar=False),
    )
