"""Token rows of the three Nexus-O tasks, left-padded like the VQA recipe's.

::

    asr      <bos> <audio>×K  question words ?                 (stage 1: transcribe)
    spoken   <bos> <image>×M <audio>×K  answer <eos>           (stages 2, 3; the question is heard)
    typed    <bos> <image>×M  question words  answer <eos>     (the base VLM's rows)

Labels are the transcript (asr; it ends at its question mark, where the VLM's
language model expects an answer, not ``<eos>``) or the answer and ``<eos>``
(spoken, typed); -100 elsewhere. Audio rides beside the tokens as right-zero-padded waveforms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from polymodal.errors import ConfigError
from polymodal.train.vqa_batches import PromptFormat, normalize_pixels

ROW_KINDS = ("asr", "spoken", "typed")


@dataclass
class OmniBatch:
    """A batch of Nexus-O rows.

    Attributes:
        input_ids: (B, T) tokens; ``<audio>`` marks the K slots of each heard row.
        attention_mask: (B, T) 1 on tokens, 0 on left padding.
        labels: (B, T) supervised tokens, -100 elsewhere.
        pixel_values: (B', 3, H, W) images of the rows that have one, or None.
        audio: (B'', S) waveforms of the rows that hear one (zero-padded), or None.
        audio_lengths: (B'',) samples of speech per heard row, or None.
        answer_ids: (B,) token id of each row's answer (or first transcript word).
        question_type: (B,) index into ``QUESTION_TYPES``.
        prompt_length: tokens before the supervised part (answer rows: T - 2).
    """

    input_ids: Tensor
    attention_mask: Tensor
    labels: Tensor
    pixel_values: Tensor | None
    audio: Tensor | None
    audio_lengths: Tensor | None
    answer_ids: Tensor
    question_type: Tensor

    def prompt(self) -> tuple[Tensor, Tensor]:
        """(B, T - 2) ids and mask without ``answer <eos>`` (spoken and typed rows)."""
        return self.input_ids[:, :-2], self.attention_mask[:, :-2]


class OmniCollator:
    """Samples of Spoken Shapes-VQA -> :class:`OmniBatch` of one or more row kinds.

    Args:
        fmt: the VLM's prompt ids.
        audio_id: the id of ``<audio>``.
        audio_tokens: K, slots per heard question.
        kinds: row kinds to make of every sample, e.g. ``("spoken", "typed")``
            gives two rows per sample (the stage-2 mix).
    """

    def __init__(
        self, fmt: PromptFormat, audio_id: int, audio_tokens: int, kinds: Sequence[str]
    ) -> None:
        unknown = [k for k in kinds if k not in ROW_KINDS]
        if unknown or not kinds:
            raise ConfigError(f"row kinds must be some of {ROW_KINDS}, got {list(kinds)}")
        self.fmt, self.audio_id, self.audio_tokens, self.kinds = (
            fmt,
            audio_id,
            audio_tokens,
            tuple(kinds),
        )

    def _row(self, sample: dict[str, Tensor], kind: str) -> tuple[list[int], list[int]]:
        fmt = self.fmt
        words = sample["text_ids"][sample["text_ids"] != fmt.pad].tolist()
        audio = [self.audio_id] * self.audio_tokens
        if kind == "asr":
            return [fmt.bos, *audio, *words], [-100] * (1 + len(audio)) + words
        image = [fmt.image] * fmt.num_visual_tokens
        heard = audio if kind == "spoken" else words
        prompt, target = [fmt.bos, *image, *heard], [int(fmt.answer_ids[sample["label"]]), fmt.eos]
        return [*prompt, *target], [-100] * len(prompt) + target

    def __call__(self, samples: Sequence[dict[str, Tensor]]) -> OmniBatch:
        rows = [(s, kind, *self._row(s, kind)) for kind in self.kinds for s in samples]
        length = max(len(tokens) for _, _, tokens, _ in rows)
        input_ids = torch.full((len(rows), length), self.fmt.pad, dtype=torch.long)
        labels = torch.full_like(input_ids, -100)
        attention_mask = torch.zeros_like(input_ids)
        for i, (_, _, tokens, row_labels) in enumerate(rows):
            input_ids[i, length - len(tokens) :] = torch.tensor(tokens)
            labels[i, length - len(tokens) :] = torch.tensor(row_labels)
            attention_mask[i, length - len(tokens) :] = 1
        images = [s["image"] for s, kind, _, _ in rows if kind != "asr"]
        heard = [s["audio"] for s, kind, _, _ in rows if kind != "typed"]
        audio = lengths = None
        if heard:
            lengths = torch.tensor([a.numel() for a in heard])
            audio = torch.zeros(len(heard), int(lengths.max()))
            for i, wave in enumerate(heard):
                audio[i, : wave.numel()] = wave
        return OmniBatch(
            input_ids=input_ids,
            attention_mask=attention_mask,
            labels=labels,
            pixel_values=normalize_pixels(torch.stack(images)) if images else None,
            audio=audio,
            audio_lengths=lengths,
            answer_ids=self.fmt.answer_ids[torch.stack([s["label"] for s, _, _, _ in rows])],
            question_type=torch.stack([s["question_type"] for s, _, _, _ in rows]),
        )
