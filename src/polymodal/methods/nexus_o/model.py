"""Nexus-O on the small VLM: a trained LLaVA-style model that also hears its questions.

:class:`NexusO` holds the base VLM (vision tower, projector, language model), the
audio encoder and adapter (:mod:`.audio`) and the speech decoder
(:mod:`.speech_out`). A heard question's K ``<audio>`` embeddings are replaced by
the adapter's tokens before the language model runs; ``<image>`` slots are filled
by LLaVA itself. :data:`STAGES` says what trains in each stage; everything else
is frozen (``requires_grad`` off and left out of the optimiser, so it stays
bit-identical).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from polymodal.errors import ConfigError
from polymodal.hf.llava import positions_from_mask
from polymodal.methods.nexus_o.audio import AudioAdapter, AudioEncoder, WhisperAudioEncoder
from polymodal.methods.nexus_o.batches import OmniBatch
from polymodal.methods.nexus_o.speech_out import SpeechDecoder
from polymodal.train.vqa_batches import PromptFormat

STAGES = {
    1: ("audio_encoder", "adapter"),
    2: ("adapter", "language_model"),
    3: ("speech_decoder",),
}
"""Stage -> the parts that train: 1 ASR alignment, 2 spoken-question VQA, 3 speech output."""


ENCODERS = {"transformer": AudioEncoder, "whisper": WhisperAudioEncoder}
"""Audio encoders by name."""


@dataclass(frozen=True)
class NexusOConfig:
    """Sizes of the parts Nexus-O adds to the VLM.

    Args:
        audio_hidden: audio encoder width.
        audio_layers: audio encoder depth.
        audio_heads: attention heads of the encoder and the adapter's pooling.
        audio_tokens: K, ``<audio>`` slots per question.
        window_s: longest question in seconds.
        units: k-means speech units of the spoken answers.
        decoder_hidden: width of the speech decoder's GRU.
        encoder: ``"transformer"`` (log-mel transformer) or ``"whisper"`` (the encoder of
            a Hugging Face ``WhisperModel`` from a tiny config, for real Whisper weights).
    """

    audio_hidden: int = 96
    audio_layers: int = 2
    audio_heads: int = 4
    audio_tokens: int = 16
    window_s: float = 6.0
    units: int = 48
    decoder_hidden: int = 128
    encoder: str = "transformer"


class NexusO(nn.Module):
    """The omni model.

    Args:
        vlm: a ``LlavaForConditionalGeneration`` whose vocabulary holds ``<audio>``.
        fmt: the VLM's prompt ids.
        audio_id: id of ``<audio>``.
        config: sizes of the added parts.
    """

    def __init__(self, vlm: Any, fmt: PromptFormat, audio_id: int, config: NexusOConfig) -> None:
        super().__init__()
        self.vlm, self.fmt, self.audio_id, self.config = vlm, fmt, audio_id, config
        text_hidden = vlm.get_input_embeddings().weight.shape[1]
        if config.encoder not in ENCODERS:
            raise ConfigError(f"encoder must be one of {sorted(ENCODERS)}, got {config.encoder!r}")
        self.audio_encoder = ENCODERS[config.encoder](
            config.audio_hidden, config.audio_layers, config.audio_heads, config.window_s
        )
        self.adapter = AudioAdapter(
            config.audio_hidden, text_hidden, config.audio_tokens, config.audio_heads
        )
        self.speech_decoder = SpeechDecoder(text_hidden, config.units, config.decoder_hidden)

    def part(self, name: str) -> nn.Module:
        """A part by name: ``audio_encoder``, ``adapter``, ``language_model``, ``vision``,
        ``speech_decoder``."""
        if name == "language_model":
            return nn.ModuleList([self.vlm.model.language_model, self.vlm.lm_head])
        if name == "vision":
            return nn.ModuleList(
                [self.vlm.model.vision_tower, self.vlm.model.multi_modal_projector]
            )
        return getattr(self, name)

    def set_stage(self, stage: int) -> list[nn.Parameter]:
        """Freeze all but the stage's parts; returns the parameters that train."""
        if stage not in STAGES:
            raise ConfigError(f"stage must be one of {sorted(STAGES)}, got {stage!r}")
        self.requires_grad_(False)
        for name in STAGES[stage]:
            self.part(name).requires_grad_(True)
        return [p for p in self.parameters() if p.requires_grad]

    def embed(self, batch: OmniBatch) -> Tensor:
        """(B, T, D) input embeddings with the adapter's tokens in the ``<audio>`` slots."""
        embeds = self.vlm.get_input_embeddings()(batch.input_ids)
        if batch.audio is None:
            return embeds
        features, mask = self.audio_encoder(batch.audio, batch.audio_lengths)
        tokens = self.adapter(features, mask)  # (B'', K, D)
        slots = batch.input_ids == self.audio_id
        heard = slots.any(1)
        if (
            int(heard.sum()) != tokens.shape[0]
            or int(slots.sum()) != tokens.numel() // tokens.shape[-1]
        ):
            raise ConfigError("every heard row needs exactly K <audio> slots and one clip")
        return embeds.masked_scatter(slots[..., None], tokens.to(embeds.dtype))

    def forward(self, batch: OmniBatch, prompt_only: bool = False, hidden: bool = False) -> Any:
        """Run the language model on a batch (the prompt only: no answer, no loss).

        Returns:
            The ``transformers`` output: ``loss`` (unless ``prompt_only``), ``logits``
            (B, T, V), and ``hidden_states`` when ``hidden``.
        """
        embeds = self.embed(batch)
        mask, labels = batch.attention_mask, batch.labels
        if prompt_only:
            embeds, mask, labels = embeds[:, :-2], mask[:, :-2], None
        return self.vlm(
            inputs_embeds=embeds,
            attention_mask=mask,
            position_ids=positions_from_mask(mask),
            pixel_values=batch.pixel_values,
            labels=labels,
            output_hidden_states=hidden,
            use_cache=False,
        )

    @torch.no_grad()
    def answer(self, batch: OmniBatch) -> tuple[Tensor, Tensor]:
        """Greedy answer token and the LM's last hidden state at the answer position.

        Returns:
            ``(answer_ids, state)``: (B,) token ids and (B, D).
        """
        out = self.forward(batch, prompt_only=True, hidden=True)
        return out.logits[:, -1].argmax(-1), out.hidden_states[-1][:, -1]
