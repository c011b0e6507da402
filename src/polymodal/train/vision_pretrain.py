"""Stage 0 of the VLM recipe: the vision tower learns what each patch shows.

LLaVA starts from a CLIP vision tower that already knows what is in an image; our
small VLM starts from random weights. Before the VQA stage, this stage trains the
CLIP-style tower (plus a throw-away linear head) to name the object under every
patch — shape and colour, or background — from the scene tables that Shapes-VQA
stores with its training split. It is dense supervision (64 labels per image), so
it takes about a minute on a CPU, and it uses only the training split.

Why: with a random tower, the language model must discover at the same time which
visual features matter and how to find the token a question asks about; on a CPU
budget it stalls near chance for epochs. With a tower that already separates the
objects, the VQA stage only has to learn the lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from polymodal.data.synth.shapes_render import COLORS, FIELDS, SHAPES

BACKGROUND = len(SHAPES) * len(COLORS)
"""Class of a patch that shows no object; objects are ``shape * len(COLORS) + colour``."""
CENTRE = BACKGROUND + 1
"""With ``centres``, an object's centre patches are ``CENTRE + shape * len(COLORS) + colour``."""


@dataclass
class VisionPretrainConfig:
    """Stage-0 settings.

    Args:
        steps: optimiser steps (0 skips the stage).
        batch_size: images per step.
        lr: AdamW learning rate.
        centres: also tell an object's centre patches from the rest of it
            (:func:`patch_labels`). Where objects span many patches (the
            ``dense`` layout), every object then has the same number of
            centre tokens whatever its size, so a count is a count of tokens.
    """

    steps: int = 250
    batch_size: int = 64
    lr: float = 1e-3
    centres: bool = False

    @property
    def classes(self) -> int:
        """Classes of the throw-away head: objects, background, and centres if asked."""
        return CENTRE + BACKGROUND if self.centres else BACKGROUND + 1


def patch_labels(scenes: Tensor, image_size: int, patch_size: int, centres: bool = False) -> Tensor:
    """The object class under the centre of every patch.

    Args:
        scenes: (S, max_objects, 1 + len(FIELDS)) scene table (``present`` first).
        image_size: image side in pixels.
        patch_size: patch side in pixels.
        centres: label an object's centre patches — those whose centre is less than
            a patch side from the object's centre in x and in y — ``CENTRE + class``:
            four patches when the object's centre is a patch corner (the ``dense``
            layout, objects of any size), one when it is a patch centre.

    Returns:
        (S, M) int64, M = (image_size / patch_size)²: ``shape * len(COLORS) + colour``
        of the object whose bounding circle holds the patch centre, else ``BACKGROUND``.
    """
    side = image_size // patch_size
    middles = (torch.arange(side, dtype=torch.float32) + 0.5) * patch_size
    cy, cx = torch.meshgrid(middles, middles, indexing="ij")  # (side, side) pixel centres
    column = {name: 1 + i for i, name in enumerate(FIELDS)}
    labels = torch.full((scenes.shape[0], side * side), BACKGROUND, dtype=torch.int64)
    for k in range(scenes.shape[1]):  # objects never overlap: each patch gets at most one
        obj = scenes[:, k]  # (S, 7)
        dx = cx.reshape(1, -1) - obj[:, column["x"], None]
        dy = cy.reshape(1, -1) - obj[:, column["y"], None]
        inside = (dx**2 + dy**2).sqrt() <= obj[:, column["radius"], None]
        inside &= obj[:, 0, None] > 0  # present
        kind = (obj[:, column["shape"]] * len(COLORS) + obj[:, column["color"]]).long()[:, None]
        labels = torch.where(inside, kind, labels)
        if centres:
            central = inside & (torch.maximum(dx.abs(), dy.abs()) < patch_size)
            labels = torch.where(central, CENTRE + kind, labels)
    return labels


def patch_head(tower: Any, config: VisionPretrainConfig) -> nn.Linear:
    """The stage's linear head: tower width → :attr:`VisionPretrainConfig.classes`,
    on the tower's device (seed the generator first for the same start)."""
    device = next(tower.parameters()).device
    return nn.Linear(tower.config.hidden_size, config.classes).to(device)


def _patch_logits(tower: Any, head: nn.Module, pixels: Tensor) -> Tensor:
    """(B, 3, H, W) pixel values → (B, M, classes): the head on every patch token."""
    return head(tower(pixel_values=pixels, output_hidden_states=True).hidden_states[-1][:, 1:])


def pretrain_vision_tower(
    tower: Any,
    images: Tensor,
    labels: Tensor,
    config: VisionPretrainConfig,
    normalize: Callable[[Tensor], Tensor],
    seed: int = 0,
    progress: bool = True,
    head: nn.Module | None = None,
) -> float:
    """Train ``tower`` to classify every patch; returns the last step's loss.

    Args:
        tower: a CLIP-style vision model (``hidden_states[-1]`` is (B, 1 + M, D), CLS first);
            it trains on the device it is on.
        images: (S, 3, H, W) uint8 training images.
        labels: (S, M) patch classes from :func:`patch_labels`.
        config: steps, batch size, learning rate.
        normalize: maps (B, 3, H, W) floats in [0, 1] to the tower's ``pixel_values``.
        seed: draws the batches and the head's initial weights.
        progress: show a progress bar.
        head: the linear head to train beside the tower (from :func:`patch_head`;
            pass one to measure :func:`patch_accuracy` afterwards), or None for a
            fresh one that is thrown away.
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    device = next(tower.parameters()).device
    head = patch_head(tower, config) if head is None else head
    optimizer = torch.optim.AdamW([*tower.parameters(), *head.parameters()], lr=config.lr)
    tower.train()
    loss = torch.tensor(float("nan"))
    for _ in tqdm(range(config.steps), desc="vision pretraining", disable=not progress):
        pick = torch.randint(len(images), (config.batch_size,), generator=generator)
        pixels = normalize(images[pick].to(device).float() / 255.0)
        logits = _patch_logits(tower, head, pixels)
        loss = F.cross_entropy(logits.flatten(0, 1), labels[pick].to(device).flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return float(loss.detach())


class PatchAccuracy(NamedTuple):
    """How well the tower names patches on held-out images.

    Attributes:
        patches: accuracy over all patches (background included).
        objects: accuracy over the patches that show an object (label ≠ ``BACKGROUND``).
    """

    patches: float
    objects: float


@torch.no_grad()
def patch_accuracy(
    tower: Any,
    head: nn.Module,
    images: Tensor,
    labels: Tensor,
    normalize: Callable[[Tensor], Tensor],
    batch_size: int = 64,
) -> PatchAccuracy:
    """Per-patch accuracy of ``tower`` and its stage-0 ``head``.

    Args:
        tower, head: as trained by :func:`pretrain_vision_tower`.
        images: (S, 3, H, W) uint8 images (held out from training).
        labels: (S, M) their :func:`patch_labels`.
        normalize: as in training.
        batch_size: images per forward pass.
    """
    device = next(tower.parameters()).device
    was_training = tower.training
    tower.eval()
    correct = []
    for start in range(0, len(images), batch_size):
        pixels = normalize(images[start : start + batch_size].to(device).float() / 255.0)
        predicted = _patch_logits(tower, head, pixels).argmax(-1).cpu()
        correct.append(predicted == labels[start : start + batch_size])
    tower.train(was_training)
    hits = torch.cat(correct)
    on_object = labels != BACKGROUND
    return PatchAccuracy(float(hits.float().mean()), float(hits[on_object].float().mean()))
