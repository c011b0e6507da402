"""The audio-visual classifier of AV-SSL and its own unlabelled-batch terms.

The semi-supervised task (:mod:`polymodal.train.tasks.semi_supervised`) gives the
first two terms of ``L = L_s + γ1 L_u + γ2 L_mix + γ3 L_c``: cross-entropy on the
labelled clips and, with weight γ1 (``task.options.unlabelled_weight``), on the
EMA teacher's confident pseudo-labels of the unlabelled clips, the student seeing
the strong (noised) view and the teacher the weak (clean) one. This model adds the
other two through :meth:`AVSSLModel.unlabelled_terms`:

- ``L_mix`` (γ2, ``mix_weight``): the student's soft cross-entropy on mixed
  unlabelled clips against the two clips' targets mixed by area (:mod:`.mixing`).
  With ``mix_targets: teacher`` a clip's target is the teacher's one-hot
  pseudo-label where it is confident and its softmax prediction where it is not
  (SVFormer's rule), and every mixed clip counts; ``confident`` keeps one-hot
  pseudo-labels and counts a mixed clip only where both are confident — nothing,
  while the teacher never reaches the threshold;
- ``L_c`` (γ3, ``contrastive_weight``): audio–video InfoNCE in which a clip pair's
  similarity is, per time slice of the patch grid, the best match of that slice's
  audio embedding over the slice's patch tokens, averaged over slices — what
  teaches the patches the sound comes from (and that change with it) to light up.

The localisation map is the cosine similarity of each time slice's audio
embedding with that slice's patch tokens (:func:`.localisation.similarity_map`),
computed by the teacher for guided mixing.
One class covers every variant of the check: video only (with tube mixing: the
SVFormer-style baseline), audio only, and both (no mixing, a random box, or the
localised box).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from polymodal.data.contract import present, validate_batch
from polymodal.errors import ConfigError, DataError
from polymodal.methods.av_ssl.localisation import map_boxes, per_slice, random_boxes, similarity_map
from polymodal.methods.av_ssl.mixing import (
    box_masks,
    mixed_targets,
    paste,
    soft_cross_entropy,
    teacher_targets,
    tube_masks,
)
from polymodal.modules.encoders import SpectrogramEncoder
from polymodal.modules.vit3d import ConvStemVideoViT, VideoViT
from polymodal.train.tasks.semi_supervised import UnlabelledStep

MixKind = Literal["none", "guided", "box", "tube"]
MIXES: tuple[str, ...] = ("none", "guided", "box", "tube")
MixTargets = Literal["teacher", "confident"]
MIX_TARGETS: tuple[str, ...] = ("teacher", "confident")


@dataclass
class AVOutput:
    """What :class:`AVSSLModel` returns.

    Attributes:
        logits: (B, C) class scores.
        audio: (B, t, E) projected audio embedding per time slice of the video's patch
            grid, or None unless both modalities are encoded.
        patches: (B, N, E) projected video patch embeddings, or None without video.
        localisation: (B, t, h, w) audio–patch similarity, when both are encoded.
    """

    logits: Tensor
    audio: Tensor | None = None
    patches: Tensor | None = None
    localisation: Tensor | None = None


class AVSSLModel(nn.Module):
    """Video ViT and/or spectrogram encoder, pooled, concatenated, one linear head.

    Video tokens are max-pooled over patches, audio tokens mean-pooled over time.

    Missing modality: a sample whose ``<m>_mask`` is False contributes zeros in
    place of that modality's pooled features (and no localisation is trusted for it).

    Args:
        num_classes: C.
        video: the video encoder (tokens (B, N, D)), or None.
        audio: the audio encoder (tokens (B, N_a, D)), or None.
        embed_dim: E, width of the audio–patch similarity space.
        mix: ``none``, ``guided`` (needs both encoders), ``box`` or ``tube``.
        mix_weight: γ2.
        mix_targets: ``teacher`` or ``confident`` (the module doc).
        contrastive_weight: γ3 (needs both encoders; 0 = off).
        temperature: of the contrastive logits.
        box_side: side in pixels of the guided and random boxes.
        tube_share: (low, high) range of the share of patch columns a tube mix takes.
    """

    def __init__(
        self,
        num_classes: int,
        video: VideoViT | None = None,
        audio: nn.Module | None = None,
        embed_dim: int = 32,
        mix: MixKind = "none",
        mix_weight: float = 1.0,
        mix_targets: MixTargets = "teacher",
        contrastive_weight: float = 0.0,
        temperature: float = 0.1,
        box_side: int = 12,
        tube_share: Sequence[float] = (0.2, 0.5),
    ) -> None:
        super().__init__()
        if video is None and audio is None:
            raise ConfigError("AVSSLModel needs a video or an audio encoder")
        if mix not in MIXES:
            raise ConfigError(f"mix must be one of {', '.join(MIXES)}, got {mix!r}")
        if mix_targets not in MIX_TARGETS:
            raise ConfigError(
                f"mix_targets must be one of {', '.join(MIX_TARGETS)}, got {mix_targets!r}"
            )
        both = video is not None and audio is not None
        if (mix == "guided" or contrastive_weight > 0) and not both:
            raise ConfigError("guided mixing and the contrastive term need video and audio")
        if mix != "none" and video is None:
            raise ConfigError(f"mix {mix!r} mixes video clips; the model has no video encoder")
        if video is not None and not 0 < box_side <= video.volume_size[1]:
            raise ConfigError(f"box_side must be in 1..{video.volume_size[1]}, got {box_side}")
        self.video, self.audio = video, audio
        self.num_classes = num_classes
        self.mix, self.mix_weight, self.mix_targets = mix, mix_weight, mix_targets
        self.contrastive_weight, self.temperature = contrastive_weight, temperature
        self.box_side, self.tube_share = box_side, tuple(float(s) for s in tube_share)
        widths = [int(enc.dim) for enc in (video, audio) if enc is not None]  # type: ignore[arg-type]
        self.head = nn.Sequential(nn.LayerNorm(sum(widths)), nn.Linear(sum(widths), num_classes))
        self.project_video = nn.Linear(widths[0], embed_dim) if both else None
        self.project_audio = nn.Linear(widths[-1], embed_dim) if both else None

    def forward(self, batch: Mapping[str, Tensor]) -> AVOutput:
        """Classify clips and, with both encoders, localise the sound.

        Args:
            batch: ``video`` (B, T, C, S, S) and/or ``audio`` (B, F, T_a), as the
                model's encoders need; optional ``<m>_mask`` (B,); other keys ignored.

        Returns:
            :class:`AVOutput`.

        Raises:
            DataError: the batch breaks the data contract or lacks a modality
                the model encodes (the message names it).
        """
        validate_batch(batch)
        pooled, out = [], AVOutput(logits=torch.empty(0))
        if self.video is not None:
            tokens = self.video(_required(batch, "video"))  # (B, N, D)
            # Max over patches: a digit fills a few tubes of a mostly empty canvas,
            # and a mean over all of them drowns it (the ViT then barely learns).
            pooled.append(_masked(tokens.amax(dim=1), present(batch, "video")))
            if self.project_video is not None:
                out.patches = self.project_video(tokens)  # (B, N, E)
        if self.audio is not None:
            tokens = self.audio(_required(batch, "audio"))  # (B, N_a, D)
            pooled.append(_masked(tokens.mean(dim=1), present(batch, "audio")))
            if self.project_audio is not None and self.video is not None:
                # The audio tokens pooled onto the video's t time slices (both span
                # the clip), so a patch can match the sound of its own moment.
                slices = F.adaptive_avg_pool1d(tokens.transpose(1, 2), self.video.grid[0])
                out.audio = self.project_audio(slices.transpose(1, 2))  # (B, t, E)
        if out.audio is not None and out.patches is not None:
            out.localisation = similarity_map(out.audio, out.patches, self.video.grid)  # type: ignore[union-attr]
        out.logits = self.head(torch.cat(pooled, dim=-1))
        return out

    def unlabelled_terms(self, step: UnlabelledStep) -> dict[str, Tensor]:
        """γ2 L_mix and γ3 L_c on one unlabelled batch (the module doc); the keys are
        ``mix`` and ``contrastive``, each present when its weight and variant are on."""
        terms: dict[str, Tensor] = {}
        if self.contrastive_weight > 0:
            loss = audio_video_nce(step.student.audio, step.student.patches, self.temperature)
            terms["contrastive"] = self.contrastive_weight * loss
        if self.mix != "none" and self.mix_weight > 0:
            terms["mix"] = self.mix_weight * self.mix_loss(step)
        return terms

    def mix_masks(self, step: UnlabelledStep) -> Tensor:
        """(B, T, 1, S, S) bool: the pixels of each strong clip pasted into its partner."""
        assert self.video is not None
        frames, size, _ = self.video.volume_size
        count = step.strong["video"].shape[0]
        if self.mix == "guided":
            boxes = map_boxes(step.teacher.localisation, frames, size, self.box_side)
        elif self.mix == "box":
            boxes = random_boxes(count, frames, size, self.box_side)
        else:
            low, high = self.tube_share
            share = low + (high - low) * torch.rand(count)
            patch = size // self.video.grid[1]
            return tube_masks(count, frames, size, patch, share).to(step.strong["video"].device)
        return box_masks(boxes.to(step.strong["video"].device), size)

    def mix_loss(self, step: UnlabelledStep) -> Tensor:
        """L_mix: clip i's region pasted into clip π(i) (π a random permutation).

        Reports in ``step.metrics``: ``mix_share``, the share of mixed clips that
        count, and ``mix_hard_share``, the share whose target holds a confident
        (one-hot) pseudo-label of either clip.
        """
        partner = torch.randperm(step.pseudo.shape[0]).to(step.pseudo.device)
        a = step.strong
        b = {key: value[partner] for key, value in a.items() if key in ("video", "audio")}
        mixed = paste(a, b, self.mix_masks(step))
        confident = step.keep > 0
        if self.mix_targets == "teacher":
            per_clip = teacher_targets(step.teacher.logits.softmax(dim=-1), confident)
            weight = torch.ones_like(step.keep)
        else:
            per_clip = F.one_hot(step.pseudo, self.num_classes).to(step.keep.dtype)
            weight = step.keep * step.keep[partner]
        targets = mixed_targets(per_clip, per_clip[partner], mixed.area)
        step.metrics["mix_share"] = (weight > 0).float().mean()
        step.metrics["mix_hard_share"] = (confident | confident[partner]).float().mean()
        logits = self(mixed.batch).logits
        return soft_cross_entropy(logits, targets, weight)


def audio_video_nce(audio: Tensor, patches: Tensor, temperature: float) -> Tensor:
    """Symmetric InfoNCE over a batch; a clip pair's similarity is, per time slice, the
    audio's best match over that slice's patches, averaged over the slices.

    Args:
        audio: (B, E) audio embeddings (one slice), or (B, t, E) one per time slice.
        patches: (B, N, E) video patch embeddings, N = t·n in time-major order.
        temperature: τ; logits are similarities / τ.

    Returns:
        () mean of the audio→video and video→audio cross-entropies, pair (i, i) positive.
    """
    a, v = per_slice(audio, patches, audio.shape[1] if audio.dim() == 3 else 1)
    best = torch.einsum("ise,jsne->ijsn", a, v).amax(dim=-1)  # (B, B, t)
    logits = best.mean(dim=-1) / temperature  # (B, B)
    targets = torch.arange(a.shape[0], device=a.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def _required(batch: Mapping[str, Tensor], name: str) -> Tensor:
    if name not in batch:
        raise DataError(
            f"AVSSLModel encodes {name!r}, which the batch lacks (keys {sorted(batch)})"
        )
    return batch[name]


def _masked(pooled: Tensor, mask: Tensor | None) -> Tensor:
    """Zero the pooled features (B, D) of samples whose modality is missing."""
    return pooled if mask is None else pooled * mask[:, None].to(pooled.dtype)


def build_av_ssl(
    fusion: str,
    modalities: Mapping[str, Mapping[str, Any]],
    dim: int = 48,
    num_classes: int = 10,
    **options: Any,
) -> AVSSLModel:
    """An :class:`AVSSLModel` from config dicts (``model:`` of a recipe).

    Args:
        fusion: must be ``concat`` (pooled features side by side, one linear head).
        modalities: ``video`` and/or ``audio``, each with its ``shape`` (read off the
            data) and options: video ``tubelet``, ``patch_size``, ``depth``,
            ``num_heads``, ``conv_stem`` (default True: :class:`ConvStemVideoViT`);
            audio ``depth``.
        dim: token width D of both encoders.
        num_classes: C.
        **options: the :class:`AVSSLModel` options (``mix``, ``mix_weight``, ...).

    Raises:
        ConfigError: another fusion, an unknown modality or option.
    """
    if fusion != "concat":
        raise ConfigError(f"the AV-SSL model fuses by 'concat', not {fusion!r}")
    unknown = set(modalities) - {"video", "audio"}
    if unknown:
        raise ConfigError(f"the AV-SSL model encodes video and audio, not {sorted(unknown)}")
    video = audio = None
    if "video" in modalities:
        spec = dict(modalities["video"])
        frames, channels, height, width = spec.pop("shape")
        stem_options = (
            {"stem_width": spec.pop("stem_width", 8)} if spec.pop("conv_stem", True) else {}
        )
        stem = ConvStemVideoViT if stem_options else VideoViT
        video = stem(
            frames=frames,
            image_size=(height, width),
            in_channels=channels,
            dim=dim,
            tubelet=spec.pop("tubelet", 2),
            patch_size=spec.pop("patch_size", 4),
            depth=spec.pop("depth", 2),
            num_heads=spec.pop("num_heads", 4),
            **stem_options,
        )
        _no_leftovers("video", spec)
    if "audio" in modalities:
        spec = dict(modalities["audio"])
        n_mels = spec.pop("shape")[0]
        audio = SpectrogramEncoder(n_mels, dim, depth=spec.pop("depth", 3))
        _no_leftovers("audio", spec)
    return AVSSLModel(num_classes, video, audio, **options)


def _no_leftovers(name: str, spec: Mapping[str, Any]) -> None:
    if spec:
        raise ConfigError(f"model.modalities.{name}: unknown option(s) {sorted(spec)}")
