"""Per-layer taps and block hooks on Hugging Face vision transformers.

The same two tools :class:`~polymodal.modules.encoders.ViTEncoder` offers, on a
``transformers`` model: every layer's tokens, and a ``hook(layer_index, tokens)``
run before each encoder layer (deep prompts, per-layer fusion). They work by
registering PyTorch forward (pre-)hooks on the encoder layers for the duration of a
``with`` block, so the model itself is not changed or copied. Supported layouts:
``ViTModel`` (``layers``; ``encoder.layer`` in earlier releases), ``Dinov2Model``
(``encoder.layer``), ``CLIPVisionModel`` (``vision_model.encoder.layers``) and
anything else with one of the paths in :data:`LAYER_PATHS`.

Example::

    with VisionTaps(model, hook=add_prompts) as taps:
        out = model(pixel_values=pixels)
    taps.hidden_states   # embeddings, then each layer's output: (B, N, D) each
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from polymodal.errors import ConfigError
from polymodal.modules.encoders import BlockHook

LAYER_PATHS = (
    "layers",
    "encoder.layer",
    "encoder.layers",
    "vision_model.encoder.layers",
    "vision_model.encoder.layer",
)
"""Attribute paths, tried in order, of the ``nn.ModuleList`` of encoder layers."""


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The encoder layers of a Hugging Face vision model, in order.

    Args:
        model: e.g. ``ViTModel``, ``Dinov2Model``, ``CLIPVisionModel``.

    Returns:
        The model's own ``nn.ModuleList`` of layers.

    Raises:
        ConfigError: when no path of :data:`LAYER_PATHS` leads to a ModuleList.
    """
    for path in LAYER_PATHS:
        found: Any = model
        for name in path.split("."):
            found = getattr(found, name, None)
        if isinstance(found, nn.ModuleList):
            return found
    raise ConfigError(
        f"{type(model).__name__} has none of the encoder layer lists {LAYER_PATHS}; "
        "pass a ViTModel, Dinov2Model or CLIPVisionModel"
    )


def _first_tensor(output: Any) -> Tensor:
    """A layer's hidden states: the tensor itself, or the first item of a tuple."""
    return output[0] if isinstance(output, tuple) else output


class VisionTaps:
    """Context manager that taps every encoder layer of a vision model and runs a hook.

    Inside the ``with`` block each forward call of the model fills
    :attr:`hidden_states` with ``num_layers + 1`` tensors (B, N_i, D): the input of
    the first layer (the embeddings), then every layer's output. These equal the
    model's ``output_hidden_states=True`` (before any final LayerNorm). A new forward
    call starts a new list. Leaving the block removes every hook.

    The ``hook(i, tokens) -> tokens`` replaces the (B, N, D) input of layer i before
    its attention. It may change N by concatenating prompt tokens; they then pass
    through all later layers and the final LayerNorm, so the next layer's hook
    replaces them and the caller slices them off ``last_hidden_state`` (e.g. keep
    ``[:, :1]`` and ``[:, 1 + P:]`` for P prompts after the CLS token). The pooled
    output of ``ViTModel``/``CLIPVisionModel`` reads token 0, which prompts placed
    after the CLS token leave in place.

    Args:
        model: the Hugging Face vision model.
        hook: optional ``hook(layer_index, tokens) -> tokens``.
    """

    def __init__(self, model: nn.Module, hook: BlockHook | None = None) -> None:
        self.layers = encoder_layers(model)
        self.hook = hook
        self.hidden_states: list[Tensor] = []
        self._handles: list[RemovableHandle] = []

    def __enter__(self) -> VisionTaps:
        for i, layer in enumerate(self.layers):
            self._handles.append(layer.register_forward_pre_hook(self._pre(i), with_kwargs=True))
            self._handles.append(layer.register_forward_hook(self._post))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _pre(self, index: int) -> Any:
        def pre_hook(
            module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
            # layers take hidden_states first, positionally (ViT, DINOv2) or by name
            positional = bool(args)
            tokens: Tensor = args[0] if positional else kwargs["hidden_states"]
            if index == 0:
                self.hidden_states = [tokens]
            if self.hook is None:
                return None
            tokens = self.hook(index, tokens)
            if positional:
                return (tokens, *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": tokens}

        return pre_hook

    def _post(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        self.hidden_states.append(_first_tensor(output))


__all__ = ["LAYER_PATHS", "VisionTaps", "encoder_layers"]
