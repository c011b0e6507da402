"""Abn-BLIP: a Q-Former with one query per abnormality writes a CTPA report finding by finding.

A frozen 3D encoder (pre-trained by multi-label classification of the findings)
gives volume tokens. A ``transformers`` ``Blip2QFormerModel`` turns K learnable
queries into K outputs by cross-attending to them. With ``per_abnormality``
(Abn-BLIP), query k belongs to finding k and is trained by

- **BCE**: a per-finding linear head on query k predicts finding k;
- **soft contrastive**: query k of case i is pulled toward the sentence about
  finding k of case j in proportion to how well the status of k in case j agrees
  with case i's predicted probability (soft targets, as the paper's);
- **captioning**: a small Llama reads query k as a prefix and writes finding k's
  sentence — the report's own sentence when positive, "No <finding>." when not —
  for every positive finding and as many sampled negative ones;

and the report is assembled region by region from the captions of the findings
the BCE head calls positive. Without ``per_abnormality`` (the generic baseline)
the same modules see K generic queries and the Llama writes the whole report
from all K outputs at once. Our deviation from the paper: captions come from a
separate small Llama, not from the Q-Former's own text path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import Blip2QFormerConfig, Blip2QFormerModel, LlamaConfig, LlamaForCausalLM

from polymodal.data.contract import validate_batch
from polymodal.data.dataset import padded_rows
from polymodal.data.synth import ctpa
from polymodal.data.synth.ctpa_reports import (
    FINDINGS,
    assemble_report,
    finding_clauses,
    finding_sentence,
    parse_report,
)
from polymodal.errors import ConfigError
from polymodal.modules.encoders import VolumeCNN
from polymodal.modules.text_encoder import SmallTextEncoder, masked_mean
from polymodal.modules.vit3d import VolumeViT

IGNORE = -100


class AbnBlipOutput(NamedTuple):
    """What :meth:`AbnBlip.forward` returns in training.

    Attributes:
        loss: () the sum of the parts the variant trains.
        parts: ``{"bce", "contrastive", "caption"}`` losses (present ones).
        logits: (B, K) per-finding logits of the BCE head.
    """

    loss: Tensor
    parts: dict[str, Tensor]
    logits: Tensor


class AbnBlip(nn.Module):
    """See the module doc.

    Args:
        encoder: the 3D encoder (frozen here): (B, D, H, W) -> (B, N, E) tokens, with ``dim`` E.
        per_abnormality: one query per finding (Abn-BLIP) or generic queries (baseline).
        hidden: Q-Former width H.
        layers: Q-Former layers.
        lm_hidden: Llama width.
        lm_layers: Llama layers.
        temperature: of the soft contrastive term.
        max_sentence: longest caption in words (BOS/EOS included).
        max_report: longest whole report (generic variant).
        volume_shape: (D, H, W) the encoder expects, checked on every call.
    """

    def __init__(
        self,
        encoder: nn.Module,
        per_abnormality: bool = True,
        hidden: int = 128,
        layers: int = 2,
        lm_hidden: int = 128,
        lm_layers: int = 2,
        temperature: float = 0.1,
        max_sentence: int = 24,
        max_report: int = 72,
        volume_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.volume_shape = None if volume_shape is None else tuple(volume_shape)
        k, vocab = len(FINDINGS), len(ctpa.VOCAB)
        self.encoder = encoder.requires_grad_(False)
        self.per_abnormality = per_abnormality
        self.temperature = temperature
        self.max_sentence, self.max_report = max_sentence, max_report
        config = Blip2QFormerConfig(
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=4,
            intermediate_size=2 * hidden,
            encoder_hidden_size=encoder.dim,
            cross_attention_frequency=1,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
        self.qformer = Blip2QFormerModel(config)
        self.queries = nn.Parameter(torch.randn(1, k, hidden) * 0.02)
        self.finding_weight = nn.Parameter(torch.randn(k, hidden) * 0.02)  # BCE head
        self.finding_bias = nn.Parameter(torch.zeros(k))
        self.text = SmallTextEncoder(vocab, dim=hidden, depth=1, max_length=max_sentence)
        self.text_project = nn.Linear(hidden, hidden)
        lm = LlamaConfig(
            vocab_size=vocab,
            hidden_size=lm_hidden,
            intermediate_size=2 * lm_hidden,
            num_hidden_layers=lm_layers,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=k + max_report + 8,
            pad_token_id=ctpa.PAD,
            bos_token_id=ctpa.BOS,
            eos_token_id=ctpa.EOS,
        )
        self.lm = LlamaForCausalLM(lm)
        self.prefix = nn.Linear(hidden, lm_hidden)

    # ------------------------------------------------------------------ encoding

    def query_outputs(self, ct: Tensor) -> Tensor:
        """(B, K, H) Q-Former outputs of the K queries over the frozen encoder's tokens.

        Raises:
            DataError: ``ct`` is not (B, D, H, W) of the encoder's size, or holds NaN/Inf.
        """
        validate_batch({"ct": ct}, {"ct": self.volume_shape} if self.volume_shape else None)
        with torch.no_grad():
            tokens = self.encoder(ct)  # (B, N, E)
        queries = self.queries.expand(ct.shape[0], -1, -1)
        return self.qformer(query_embeds=queries, encoder_hidden_states=tokens).last_hidden_state

    def finding_logits(self, outputs: Tensor) -> Tensor:
        """(B, K) logit of finding k from query k's output."""
        return (outputs * self.finding_weight).sum(dim=-1) + self.finding_bias

    # ------------------------------------------------------------------ captions

    def _caption_loss(self, prefixes: Tensor, targets: Tensor) -> Tensor:
        """Llama loss of target ids (S, L) (BOS first, -100 padded) after (S, P, H) prefixes."""
        embed = self.lm.get_input_embeddings()
        tokens = targets.masked_fill(targets == IGNORE, ctpa.PAD)
        inputs = torch.cat([self.prefix(prefixes), embed(tokens)], dim=1)
        labels = torch.cat(
            [torch.full(prefixes.shape[:2], IGNORE, device=targets.device), targets], dim=1
        )
        labels[:, prefixes.shape[1]] = IGNORE  # BOS is given, not predicted
        return self.lm(inputs_embeds=inputs, labels=labels).loss

    @torch.no_grad()
    def _greedy(self, prefixes: Tensor, length: int) -> list[list[int]]:
        """Greedy word ids after each (P, H) prefix, until EOS or ``length`` words."""
        embed = self.lm.get_input_embeddings()
        context = self.prefix(prefixes)  # (S, P, D)
        ids = torch.full((len(prefixes), 1), ctpa.BOS, dtype=torch.long, device=prefixes.device)
        done = torch.zeros(len(prefixes), dtype=torch.bool, device=prefixes.device)
        for _ in range(length - 1):
            logits = self.lm(inputs_embeds=torch.cat([context, embed(ids)], dim=1)).logits
            following = logits[:, -1].argmax(dim=-1).masked_fill(done, ctpa.PAD)
            ids = torch.cat([ids, following[:, None]], dim=1)
            done |= following == ctpa.EOS
            if bool(done.all()):
                break
        return [[int(t) for t in row if t not in (ctpa.PAD,)] for row in ids.tolist()]

    # ------------------------------------------------------------------ training

    def _sentences(self, batch: Mapping[str, Tensor]) -> list[dict[int, str]]:
        """Per case, the report's clause about each positive finding."""
        return [finding_clauses(ctpa.decode(row)) for row in batch["tokens"]]

    def forward(self, batch: Mapping[str, Tensor]) -> AbnBlipOutput:
        """Training losses on ``ct``, ``labels`` (B, K) and ``tokens`` (the report).

        Negative findings to caption are drawn from the global generator (the task
        seeds it per step).
        """
        outputs = self.query_outputs(batch["ct"])  # (B, K, H)
        logits = self.finding_logits(outputs)
        labels = batch["labels"].float()
        if not self.per_abnormality:
            prefixes = outputs  # every query output before the whole report
            targets = batch["tokens"][:, : self.max_report]
            caption = self._caption_loss(prefixes, targets)
            return AbnBlipOutput(caption, {"caption": caption}, logits)
        bce = F.binary_cross_entropy_with_logits(logits, labels)
        sentences = self._sentences(batch)
        contrastive = self._contrastive(outputs, logits, labels, sentences)
        caption = self._finding_captions(outputs, labels, sentences)
        parts = {"bce": bce, "contrastive": contrastive, "caption": caption}
        return AbnBlipOutput(bce + contrastive + caption, parts, logits)

    def _sentence_ids(self, sentences: list[dict[int, str]], k: int, labels: Tensor) -> Tensor:
        rows = []
        for i, found in enumerate(sentences):
            text = found.get(k) if labels[i, k] > 0 else None
            rows.append(ctpa.encode(text or finding_sentence(k, False))[: self.max_sentence])
        return padded_rows(rows, IGNORE)

    def _contrastive(
        self, outputs: Tensor, logits: Tensor, labels: Tensor, sentences: list[dict[int, str]]
    ) -> Tensor:
        """Soft-target InfoNCE per finding, averaged over findings."""
        probabilities = logits.detach().sigmoid()  # (B, K)
        losses = []
        for k in range(len(FINDINGS)):
            ids = self._sentence_ids(sentences, k, labels).to(outputs.device)
            words = ids.masked_fill(ids == IGNORE, ctpa.PAD)
            mask = (words != ctpa.PAD).long()
            text = masked_mean(self.text(words, mask).last, mask)
            text = F.normalize(self.text_project(text), dim=-1)  # (B, H)
            query = F.normalize(outputs[:, k], dim=-1)
            scores = query @ text.T / self.temperature  # (B, B)
            p, y = probabilities[:, k : k + 1], labels[None, :, k]  # (B, 1), (1, B)
            agreement = p * y + (1 - p) * (1 - y)  # (B, B): case j's status vs case i's belief
            targets = agreement / agreement.sum(dim=1, keepdim=True)
            losses.append(-(targets * scores.log_softmax(dim=1)).sum(dim=1).mean())
        return torch.stack(losses).mean()

    def _finding_captions(
        self, outputs: Tensor, labels: Tensor, sentences: list[dict[int, str]]
    ) -> Tensor:
        """Caption every positive finding and as many sampled negative ones."""
        prefixes, rows = [], []
        for i, found in enumerate(sentences):
            positive = torch.nonzero(labels[i] > 0).flatten().tolist()
            negative = torch.nonzero(labels[i] == 0).flatten()
            count = max(1, len(positive))
            drawn = negative[torch.randperm(len(negative))[:count]].tolist()
            for k in positive + drawn:
                text = found.get(k) if k in positive else None
                rows.append(ctpa.encode(text or finding_sentence(k, False))[: self.max_sentence])
                prefixes.append(outputs[i, k])
        targets = padded_rows(rows, IGNORE).to(outputs.device)
        return self._caption_loss(torch.stack(prefixes)[:, None], targets)

    # ------------------------------------------------------------------ reports

    @torch.no_grad()
    def write_reports(self, batch: Mapping[str, Tensor], threshold: float = 0.5) -> list[str]:
        """One report per ``ct`` volume (B, D, H, W): Abn-BLIP captions the findings
        its BCE head calls positive and assembles them; the generic model writes it whole."""
        ct = batch["ct"]
        outputs = self.query_outputs(ct)
        if not self.per_abnormality:
            return [ctpa.decode(ids) for ids in self._greedy(outputs, self.max_report)]
        positive = self.finding_logits(outputs).sigmoid() > threshold  # (B, K)
        cases, findings = torch.nonzero(positive, as_tuple=True)
        captions = (
            self._greedy(outputs[cases, findings][:, None], self.max_sentence) if len(cases) else []
        )
        per_case: list[dict[int, str]] = [{} for _ in range(ct.shape[0])]
        for i, k, ids in zip(cases.tolist(), findings.tolist(), captions, strict=True):
            per_case[i][k] = ctpa.decode(ids)
        return [assemble_report(found) for found in per_case]

    def report_labels(self, batch: Mapping[str, Tensor]) -> Tensor:
        """(B, K) findings stated by the reports this model writes (parsed)."""
        reports = self.write_reports(batch)
        return torch.from_numpy(np.stack([parse_report(r).labels for r in reports]))

    def reference_labels(self, batch: Mapping[str, Tensor]) -> Tensor:
        """(B, K) findings stated by the reference reports (parsed)."""
        texts = [ctpa.decode(row) for row in batch["tokens"]]
        return torch.from_numpy(np.stack([parse_report(t).labels for t in texts]))


def build_abn_blip(
    fusion: str,
    modalities: Mapping[str, Mapping[str, Any]],
    dim: int = 64,
    encoder: str = "cnn3d",
    patch_size: int = 4,
    depth: int = 3,
    per_abnormality: bool = True,
    num_labels: int = len(FINDINGS),
    **options: Any,
) -> AbnBlip:
    """Build :class:`AbnBlip` (``model.options.builder:
    polymodal.methods.abn_blip:build_abn_blip``, ``task.kind: report_generation``).

    The encoder (a :class:`~polymodal.modules.encoders.VolumeCNN` or a
    :class:`VolumeViT`) takes its weights from a multi-label run through
    ``model.init_from`` (``init_map: {"encoders.ct.": "encoder."}``).

    Args:
        fusion: unused.
        modalities: ``ct`` with its (D, H, W) shape.
        dim: the encoder's width; encoder: ``"cnn3d"`` or ``"vit3d"``; depth: its
            stages or blocks; patch_size: the ViT's (all as in the pre-training run).
        per_abnormality: Abn-BLIP (True) or the generic-query baseline.
        num_labels: the data set's findings per case; must be the vocabulary's K.
        **options: :class:`AbnBlip` options.
    """
    if num_labels != len(FINDINGS):
        raise ConfigError(
            f"Abn-BLIP's queries follow the {len(FINDINGS)} CTPA findings; "
            f"the data has {num_labels}"
        )
    shape = tuple(int(s) for s in modalities["ct"]["shape"])
    if encoder == "cnn3d":
        volume_encoder: nn.Module = VolumeCNN(dim, depth)
    elif encoder == "vit3d":
        volume_encoder = VolumeViT(shape, patch_size, 1, dim, depth)
    else:
        raise ConfigError(f"model.options.encoder must be cnn3d or vit3d, got {encoder!r}")
    return AbnBlip(volume_encoder, per_abnormality, volume_shape=shape, **options)
