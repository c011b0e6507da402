"""Stage 0 of the dense VLM under several towers: how well does each name its patches?

The 576-token recipe (``configs/shapes_vlm_dense.yaml``) asks the vision tower to
name the object under every 4-pixel patch before the VQA stage. This script runs
that stage alone for each variant (dotted overrides of the recipe) and prints the
per-patch accuracy on held-out validation scenes — over all patches and over the
patches that show an object (a tower that says "background" everywhere scores
about 0.8 on the first and 0 on the second) — with the stage's time.

    python benchmarks/vlm_dense_stage0.py [--steps 150] [--val 300]
        [--variant NAME=OVERRIDE,OVERRIDE ...]

Without ``--variant`` it compares CLIP's patch embedding with the convolutional
stem, both with centre labels (the recipe's). One thread suits it
(``OMP_NUM_THREADS=1``); the data set is the recipe's, built once in the cache.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from polymodal.data.synth.shapes_vqa import SPLITS, load_shapes_vqa
from polymodal.hf.llava import build_small_llava
from polymodal.train.vlm import load_vlm_config, pretrain_stage, small_llava_config

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "shapes_vlm_dense.yaml"
VARIANTS = {"patch": ["model.vision_stem=patch"], "conv": ["model.vision_stem=conv"]}


def parse_variants(values: list[str]) -> dict[str, list[str]]:
    """``["name=a.b=1,c=2"]`` -> ``{"name": ["a.b=1", "c=2"]}``."""
    variants = {}
    for value in values:
        name, _, overrides = value.partition("=")
        variants[name] = [o for o in overrides.split(",") if o]
    return variants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150, help="stage-0 steps per variant")
    parser.add_argument("--val", type=int, default=300, help="validation scenes scored")
    parser.add_argument("--variant", action="append", default=[], help="NAME=OVERRIDE,...")
    args = parser.parse_args()
    variants = parse_variants(args.variant) or VARIANTS
    base = load_vlm_config(CONFIG, ["trainer.progress_bar=false"])
    started = time.perf_counter()
    data = {split: load_shapes_vqa(split, **base.data.options) for split in SPLITS}
    print(f"data ready in {time.perf_counter() - started:.0f} s", flush=True)
    val = data["val"]
    val.tensors = {**val.tensors, "images": val.tensors["images"][: args.val]}
    val.scene_objects = val.scene_objects[: args.val]  # overrides the cached property
    print("| variant | steps | patches | object patches | seconds |\n|---|---|---|---|---|")
    for name, overrides in variants.items():
        config = load_vlm_config(CONFIG, ["trainer.progress_bar=false", *overrides])
        config = replace(config, vision_pretrain=replace(config.vision_pretrain, steps=args.steps))
        image_size = int(data["train"].tensors["images"].shape[-1])
        spec = small_llava_config(config.model, data["train"].tokenizer, image_size)
        tower = build_small_llava(spec, seed=config.seed).model.vision_tower
        started = time.perf_counter()
        accuracy = pretrain_stage(tower, data, config, spec.patch_size)
        seconds = time.perf_counter() - started
        print(
            f"| {name} | {args.steps} | {accuracy.patches:.3f} | {accuracy.objects:.3f} | "
            f"{seconds:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
