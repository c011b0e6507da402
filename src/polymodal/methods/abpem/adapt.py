"""Online test-time adaptation of a fusion model, batch by batch, with an exact reset.

:class:`TestTimeAdapter` wraps a model and a :class:`~polymodal.methods.abpem.methods.Method`.
Each :meth:`~TestTimeAdapter.step` takes one unlabeled batch, makes ``steps`` Adam
updates of the selected parameters on the method's loss, and returns the predictions
of the updated model on that same batch (as ABPEM and READ report accuracy).

The model interface (what :class:`~polymodal.methods.abpem.model.AVFusionTransformer`
provides; a user's model needs the same):

- ``encode(batch) -> FusionTokens`` — the modality encoders: tokens (B, N, D),
  ``segments`` ({modality: slice of N}), ``padding`` (B, N) and ``present``;
- ``fuse(tokens, return_attention) -> AVFusionOutput`` — the fusion layer and head:
  ``logits`` (B, C) and, when asked, ``attention_logits`` (B, H, N, N) pre-softmax;
- ``fusion_attention`` — the fusion attention module, with ``q_proj``, ``k_proj``
  and ``v_proj`` (for the default ``"fusion_qkv"`` selection);
- ``encoders`` — the module holding the encoders (for ``"fusion_norm"``).

Parameter selections: ``"fusion_qkv"``; ``"fusion_norm"`` (LayerNorm/GroupNorm/
BatchNorm affine parameters outside ``encoders``); ``"norm"`` (all of them);
``"none"``; or a list of ``fnmatch`` patterns over parameter names. Every other
parameter is frozen (``requires_grad`` False) while the adapter holds the model.

When no selected parameter acts inside ``encode`` (checked on the first batch), the
encoder output is computed once per batch without gradients, cached for the next
batches (``cache_size``) and reused for the prediction after the update.

Edge cases:

- **one sample**: the update runs; the balance term is left out when the adaptation
  forward holds a single sample (see :mod:`~polymodal.methods.abpem.methods`);
- **NaN or Inf**: samples with a non-finite value in any modality are skipped: they
  take no part in the update and their row of ``logits`` is NaN (``valid`` False);
  a batch with no finite sample makes no update;
- **missing modality**: handled by the model (padding); such samples join the
  entropy terms but not the attention bootstrapping.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from polymodal.data.contract import MODALITIES
from polymodal.errors import ConfigError, DataError
from polymodal.methods.abpem.methods import Method
from polymodal.methods.abpem.model import FusionTokens

NORM_LAYERS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)


@dataclass
class AdaptStep:
    """What one :meth:`TestTimeAdapter.step` returns.

    Attributes:
        logits: (B, C) predictions after the update; NaN rows for skipped samples.
        valid: (B,) bool, False for samples skipped for non-finite input.
        loss: the loss of the (last) update, None when no update was made.
        terms: the loss's named terms.
    """

    logits: Tensor
    valid: Tensor
    loss: float | None = None
    terms: dict[str, float] = field(default_factory=dict)


def select_parameters(model: nn.Module, selection: str | Sequence[str]) -> dict[str, nn.Parameter]:
    """The named parameters a selection picks (see the module doc).

    Raises:
        ConfigError: an unknown selection, a model without the attribute it needs, or
            patterns that match nothing.
    """
    named = dict(model.named_parameters())
    if isinstance(selection, str):
        if selection == "none":
            return {}
        if selection == "fusion_qkv":
            attention = getattr(model, "fusion_attention", None)
            if attention is None:
                raise ConfigError("'fusion_qkv' needs a model with a 'fusion_attention' module")
            wanted = {
                id(p)
                for proj in ("q_proj", "k_proj", "v_proj")
                for p in getattr(attention, proj).parameters()
            }
            return {n: p for n, p in named.items() if id(p) in wanted}
        if selection in ("norm", "fusion_norm"):
            skip: set[int] = set()
            if selection == "fusion_norm":
                encoders = getattr(model, "encoders", None)
                if encoders is None:
                    raise ConfigError("'fusion_norm' needs a model with an 'encoders' module")
                skip = {id(m) for m in encoders.modules()}
            wanted = {
                id(p)
                for m in model.modules()
                if isinstance(m, NORM_LAYERS) and id(m) not in skip
                for p in m.parameters(recurse=False)
            }
            return {n: p for n, p in named.items() if id(p) in wanted}
        raise ConfigError(
            f"unknown parameter selection {selection!r}; use fusion_qkv, fusion_norm, norm, "
            "none or a list of name patterns"
        )
    picked = {n: p for n, p in named.items() if any(fnmatch.fnmatch(n, pat) for pat in selection)}
    if not picked:
        raise ConfigError(f"parameter patterns {list(selection)} match no parameter of the model")
    return picked


def finite_samples(batch: Mapping[str, Any]) -> Tensor:
    """(B,) bool: samples whose every floating modality tensor is finite."""
    masks = [
        torch.isfinite(value).flatten(1).all(dim=1)
        for key, value in batch.items()
        if key in MODALITIES and isinstance(value, Tensor) and value.is_floating_point()
    ]
    if not masks:
        raise DataError(f"batch has no modality (keys: {sorted(batch)})")
    return torch.stack(masks).all(dim=0)


def _subset(batch: Mapping[str, Any], keep: Tensor) -> dict[str, Any]:
    size = keep.shape[0]
    return {
        k: v[keep] if isinstance(v, Tensor) and v.dim() and v.shape[0] == size else v
        for k, v in batch.items()
    }


class TestTimeAdapter:
    """Adapt a fusion model online (see the module doc for the model interface).

    Args:
        model: the model; it is put in eval mode and its ``requires_grad`` flags set.
        method: the objective, e.g. ``ABPEM()``.
        params: parameter selection; None takes the method's default.
        lr: Adam learning rate (1e-4, the papers' value).
        betas, weight_decay: Adam's other settings.
        cache_size: encoder outputs of this many recent samples from earlier batches
            join each adaptation forward; None takes the method's value.
        steps: updates per batch (1, the papers' value).
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        model: nn.Module,
        method: Method,
        params: str | Sequence[str] | None = None,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.0,
        cache_size: int | None = None,
        steps: int = 1,
    ) -> None:
        if steps < 1:
            raise ConfigError(f"steps must be >= 1, got {steps}")
        self.model = model.eval()
        self.method = method
        self.steps = steps
        self.cache_size = method.cache_size if cache_size is None else cache_size
        self.params = select_parameters(model, method.params if params is None else params)
        if method.name != "none" and not self.params:
            raise ConfigError(f"method {method.name!r} has no parameter to adapt")
        chosen = {id(p) for p in self.params.values()}
        for p in model.parameters():
            p.requires_grad_(id(p) in chosen)
        self.optimizer = (
            torch.optim.Adam(
                list(self.params.values()), lr=lr, betas=betas, weight_decay=weight_decay
            )
            if self.params
            else None
        )
        self._initial_params = {n: p.detach().clone() for n, p in self.params.items()}
        self._initial_optimizer = (
            copy.deepcopy(self.optimizer.state_dict()) if self.optimizer else None
        )
        self._cache: list[FusionTokens] = []
        self._encoder_adapted: bool | None = None

    def reset(self) -> None:
        """Restore the selected parameters and the optimizer state exactly; empty the cache."""
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(self._initial_params[name])
        if self.optimizer is not None and self._initial_optimizer is not None:
            self.optimizer.load_state_dict(copy.deepcopy(self._initial_optimizer))
        self._cache.clear()

    def _encode(self, batch: Mapping[str, Any]) -> FusionTokens:
        if self._encoder_adapted is None:  # first batch: does a selected parameter act here?
            with torch.enable_grad():
                tokens = self.model.encode(batch)  # type: ignore[operator]
            self._encoder_adapted = bool(tokens.tokens.requires_grad)
            if self._encoder_adapted and self.cache_size:
                raise ConfigError(
                    "the feature cache needs frozen encoders; set cache_size=0 or adapt only "
                    "parameters after the encoders"
                )
            return tokens if self._encoder_adapted else tokens.detach()
        with torch.set_grad_enabled(self._encoder_adapted):
            return self.model.encode(batch)  # type: ignore[no-any-return, operator]

    def _cached_with(self, tokens: FusionTokens) -> FusionTokens:
        if not self.cache_size or not self._cache:
            return tokens
        return FusionTokens.cat([*self._cache, tokens])

    def _remember(self, tokens: FusionTokens) -> None:
        """Keep the most recent ``cache_size`` samples' tokens for the next batches."""
        if not self.cache_size:
            return
        self._cache.append(tokens.detach())
        while (excess := sum(len(t) for t in self._cache) - self.cache_size) > 0:
            oldest = self._cache[0]
            if excess >= len(oldest):
                self._cache.pop(0)
            else:
                self._cache[0] = _slice_tokens(oldest, excess)

    @torch.no_grad()
    def predict(self, batch: Mapping[str, Any]) -> Tensor:
        """(B, C) logits of the current model, without adapting; NaN rows for bad samples."""
        valid = finite_samples(batch)
        logits = None
        if bool(valid.any()):
            logits = self.model.fuse(self.model.encode(_subset(batch, valid))).logits  # type: ignore[operator]
        return _scatter(logits, valid, self._num_classes())

    def step(self, batch: Mapping[str, Any]) -> AdaptStep:
        """Adapt on one unlabeled batch, then predict it with the updated model.

        Args:
            batch: modality tensors (B, ...), optional ``<m>_mask``; labels are ignored.

        Returns:
            :class:`AdaptStep` with logits (B, C) read after the update.
        """
        valid = finite_samples(batch)
        if not bool(valid.any()):
            return AdaptStep(_scatter(None, valid, self._num_classes()), valid)
        clean = _subset(batch, valid)
        if self.optimizer is None:  # no adaptation
            with torch.no_grad():
                out = self.model.fuse(self.model.encode(clean))  # type: ignore[operator]
            return AdaptStep(_scatter(out.logits, valid), valid)
        tokens = self._encode(clean)
        if not self._encoder_adapted:
            return self._adapt(tokens, valid)
        loss, terms = torch.zeros(()), dict[str, float]()
        for step in range(self.steps):
            with torch.enable_grad():
                out = self.model.fuse(  # type: ignore[operator]
                    tokens if step == 0 else self._encode(clean),
                    return_attention=self.method.needs_attention,
                )
                loss, terms = self.method.objective(out)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
            self.optimizer.step()
        with torch.no_grad():
            logits = self.model.fuse(self.model.encode(clean)).logits  # type: ignore[operator]
        return AdaptStep(_scatter(logits, valid), valid, loss.item(), terms)

    def step_encoded(self, tokens: FusionTokens) -> AdaptStep:
        """:meth:`step` on encoder output computed beforehand (finite, without gradients).

        Lets several methods share one encoding of a test stream. Only for selections
        outside ``model.encoders`` (the encoders must stay frozen).

        Raises:
            ConfigError: a selected parameter lies inside ``model.encoders``.
        """
        encoders = getattr(self.model, "encoders", None)
        inside = {id(p) for p in encoders.parameters()} if encoders is not None else set()
        if any(id(p) in inside for p in self.params.values()):
            raise ConfigError("step_encoded needs frozen encoders; use step() for this selection")
        valid = torch.ones(len(tokens), dtype=torch.bool, device=tokens.tokens.device)
        if self.optimizer is None:
            with torch.no_grad():
                return AdaptStep(self.model.fuse(tokens).logits, valid)  # type: ignore[operator]
        return self._adapt(tokens.detach(), valid)

    def _adapt(self, tokens: FusionTokens, valid: Tensor) -> AdaptStep:
        """Update on cached + current encoder output, remember it, predict the current batch."""
        assert self.optimizer is not None
        loss, terms = torch.zeros(()), dict[str, float]()
        for _ in range(self.steps):
            with torch.enable_grad():
                out = self.model.fuse(  # type: ignore[operator]
                    self._cached_with(tokens), return_attention=self.method.needs_attention
                )
                loss, terms = self.method.objective(out)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
            self.optimizer.step()
        self._remember(tokens)
        with torch.no_grad():
            logits = self.model.fuse(tokens).logits  # type: ignore[operator]
        return AdaptStep(_scatter(logits, valid), valid, loss.item(), terms)

    def _num_classes(self) -> int:
        return int(getattr(self.model, "num_classes", 0)) or 1


def _slice_tokens(tokens: FusionTokens, start: int) -> FusionTokens:
    """The samples of ``tokens`` from index ``start`` on."""
    return FusionTokens(
        tokens.tokens[start:],
        tokens.segments,
        tokens.padding[start:],
        {m: v[start:] for m, v in tokens.present.items()},
    )


def _scatter(logits: Tensor | None, valid: Tensor, num_classes: int = 1) -> Tensor:
    """Place the valid samples' logits in a (B, C) tensor of NaN."""
    width = logits.shape[1] if logits is not None else num_classes
    out = torch.full((valid.shape[0], width), float("nan"), device=valid.device)
    if logits is not None:
        out[valid] = logits.detach().to(out.dtype)
    return out
