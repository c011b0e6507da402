"""Training and evaluating one Nexus-O stage with Lightning.

Stage 1 (ASR alignment) learns to transcribe the spoken question into the VLM's
words with the language model frozen; stage 2 answers spoken and typed questions
(two rows per sample) with the audio encoder frozen; stage 3 trains only the
speech decoder to say the answer, from the LM's state at the answer position.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor

from polymodal.methods.nexus_o.batches import OmniBatch, OmniCollator
from polymodal.methods.nexus_o.model import NexusO

STAGE_ROWS = {1: ("asr",), 2: ("spoken", "typed"), 3: ("spoken",)}
"""The rows each stage trains on."""


class StageModule(L.LightningModule):
    """One stage of Nexus-O: the loss of its rows, AdamW on its trainable parts only.

    Args:
        model: the omni model.
        stage: 1, 2 or 3.
        lr: AdamW learning rate (cosine to zero over ``total_steps``).
        total_steps: optimiser steps of the whole stage.
        answer_units: stage 3: answer token id -> (T,) unit sequence to say.
    """

    def __init__(
        self,
        model: NexusO,
        stage: int,
        lr: float,
        total_steps: int,
        answer_units: dict[int, Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.model, self.stage, self.lr, self.total_steps = model, stage, lr, total_steps
        self.answer_units = answer_units or {}
        self.trainable = model.set_stage(stage)

    def on_train_epoch_start(self) -> None:
        self.model.eval()  # no dropout anywhere; frozen parts must not change
        for name in ("audio_encoder", "adapter", "language_model", "speech_decoder"):
            if any(p.requires_grad for p in self.model.part(name).parameters()):
                self.model.part(name).train()

    def training_step(self, batch: OmniBatch, batch_idx: int) -> Tensor:
        if self.stage == 3:
            with torch.no_grad():
                state = self.model.forward(batch, prompt_only=True, hidden=True).hidden_states[-1][
                    :, -1
                ]
            sequences = [self.answer_units[int(a)] for a in batch.answer_ids]
            loss = self.model.speech_decoder.loss(state, sequences)
        else:
            loss = self.model(batch).loss
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch.input_ids))
        return loss

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.AdamW(self.trainable, lr=self.lr, weight_decay=0.01)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, self.lr, total_steps=max(self.total_steps, 2), pct_start=0.1
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def stage_collator(model: NexusO, stage: int, kinds: tuple[str, ...] | None = None) -> OmniCollator:
    """The collator of a stage's rows (or of ``kinds``)."""
    return OmniCollator(
        model.fmt, model.audio_id, model.config.audio_tokens, kinds or STAGE_ROWS[stage]
    )


@torch.no_grad()
def transcribe(
    model: NexusO, batch: OmniBatch, end_id: int, max_words: int = 16
) -> list[list[int]]:
    """Greedy transcripts of ``asr`` rows (prompt ``<bos> <audio>×K``): token ids per row,
    each up to and including ``end_id`` (the question mark) or ``max_words`` long."""
    model.eval()
    prompt_len = 1 + model.config.audio_tokens
    ids = torch.stack(
        [
            row[mask.bool()][:prompt_len]
            for row, mask in zip(batch.input_ids, batch.attention_mask, strict=True)
        ]
    )
    rows = [[] for _ in range(len(ids))]
    done = torch.zeros(len(ids), dtype=torch.bool)
    for _ in range(max_words):
        step = OmniBatch(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            labels=torch.full_like(ids, -100),
            pixel_values=None,
            audio=batch.audio,
            audio_lengths=batch.audio_lengths,
            answer_ids=batch.answer_ids,
            question_type=batch.question_type,
        )
        logits = model.vlm(
            inputs_embeds=model.embed(step), attention_mask=step.attention_mask, use_cache=False
        ).logits[:, -1]
        token = logits.argmax(-1)
        for i, t in enumerate(token.tolist()):
            if not done[i]:
                rows[i].append(t)
        done |= token == end_id
        if bool(done.all()):
            break
        ids = torch.cat([ids, token[:, None]], 1)
    return rows


@torch.no_grad()
def answer_correct(model: NexusO, batches: Any) -> Tensor:
    """(N,) bool: greedy answer == gold answer, over every row of ``batches``."""
    model.eval()
    hits = [model.answer(batch)[0] == batch.answer_ids for batch in batches]
    return torch.cat(hits)
