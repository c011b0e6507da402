"""Small per-modality encoders that turn a batched modality tensor into tokens.

Every encoder maps its input to **tokens (B, N, D)**, exposes ``dim`` (D) and
``num_tokens(shape)`` (N for a per-sample input shape), and is small enough to
train on a CPU in seconds. A pooled feature is the token mean, :func:`pool`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple, overload

import torch
from torch import Tensor, nn

from polymodal.errors import ConfigError, DataError
from polymodal.modules.attention import TransformerBlock
from polymodal.modules.masking import MaskedOutput, random_masking


def pool(tokens: Tensor) -> Tensor:
    """Mean over the token axis: (B, N, D) -> (B, D)."""
    return tokens.mean(dim=1)


def _halve(n: int, times: int) -> int:
    """Length after ``times`` 3x3 convolutions with stride 2 and padding 1 (ceil(n / 2))."""
    for _ in range(times):
        n = (n + 1) // 2
    return n


def _check_input(name: str, x: Tensor, want: Sequence[int | None]) -> None:
    """Raise a ValueError naming the encoder unless x is (B, *want) (None = any size)."""
    got = tuple(x.shape[1:])
    if x.dim() != len(want) + 1 or any(w not in (None, g) for w, g in zip(want, got, strict=False)):
        layout = ", ".join("*" if w is None else str(w) for w in want)
        raise DataError(f"{name} expects input of shape (B, {layout}), got {tuple(x.shape)}")


class _ConvStages(nn.Sequential):
    """``depth`` stages of Conv(3x3, stride 2) → BatchNorm → ReLU (2D, or 3D with
    ``dims=3``).

    Widths double stage by stage up to ``dim`` (e.g. 16, 32, 64): the early,
    high-resolution stages dominate the cost, and narrow ones there make the
    encoders several times cheaper on a CPU at no loss on small inputs.
    """

    def __init__(self, in_channels: int, dim: int, depth: int, dims: int = 2) -> None:
        conv_type, norm_type = (
            (nn.Conv2d, nn.BatchNorm2d) if dims == 2 else (nn.Conv3d, nn.BatchNorm3d)
        )
        layers: list[nn.Module] = []
        widths = [max(dim // 2 ** (depth - 1 - i), min(dim, 8)) for i in range(depth)]
        for i, width in enumerate(widths):
            # bias=False: the BatchNorm that follows has its own shift.
            conv = conv_type(
                in_channels if i == 0 else widths[i - 1], width, 3, stride=2, padding=1, bias=False
            )
            # He (fan-out) init for conv followed by ReLU, as in ResNet: keeps activation
            # variance steady through the stages (PyTorch's default is tuned for linear).
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            layers += [conv, norm_type(width), nn.ReLU(inplace=True)]
        super().__init__(*layers)


class ImageCNN(nn.Module):
    """A small CNN whose final feature map becomes a grid of tokens.

    Each of ``depth`` stages halves the spatial size (rounding up), so an (H, W)
    image gives ``ceil(H / 2**depth) * ceil(W / 2**depth)`` tokens.

    Args:
        in_channels: image channels C.
        dim: token width D (channels of every stage).
        depth: number of stride-2 stages.
    """

    def __init__(self, in_channels: int = 1, dim: int = 64, depth: int = 3) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.dim = dim
        self.depth = depth
        self.stages = _ConvStages(in_channels, dim, depth)

    def num_tokens(self, shape: Sequence[int]) -> int:
        """Number of tokens N for a per-sample input shape (C, H, W)."""
        return _halve(shape[-2], self.depth) * _halve(shape[-1], self.depth)

    def forward(self, x: Tensor) -> Tensor:
        """Encode images.

        Args:
            x: (B, C, H, W) images.

        Returns:
            (B, h * w, D) tokens in row-major order of the final feature map.
        """
        _check_input("ImageCNN", x, (self.in_channels, None, None))
        f = self.stages(x)  # (B, D, h, w)
        return f.flatten(2).transpose(1, 2)  # (B, D, h*w) -> (B, h*w, D): one token per cell


BlockHook = Callable[[int, Tensor], Tensor]
"""``hook(layer_index, tokens) -> tokens``: applied to the (B, N, D) input of block
``layer_index`` (0-based), before its attention; may return (B, N', D)."""


class VolumeCNN(nn.Module):
    """A small 3D CNN whose final feature map becomes a grid of tokens: the volume
    counterpart of :class:`ImageCNN`, for local signatures (lesions, emboli) that a
    ViT trained from scratch on a few hundred volumes learns slowly.

    Args:
        dim: token width D.
        depth: number of stride-2 stages; a (D, H, W) volume gives
            ``ceil(D / 2**depth) * ceil(H / 2**depth) * ceil(W / 2**depth)`` tokens.
    """

    def __init__(self, dim: int = 48, depth: int = 2) -> None:
        super().__init__()
        self.dim, self.depth = dim, depth
        self.stages = _ConvStages(1, dim, depth, dims=3)

    def num_tokens(self, shape: Sequence[int]) -> int:
        return (
            _halve(shape[-3], self.depth)
            * _halve(shape[-2], self.depth)
            * _halve(shape[-1], self.depth)
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, D, H, W) one-channel volumes -> (B, N, dim) tokens, row-major (d, h, w)."""
        _check_input("VolumeCNN", x, (None, None, None))
        return self.stages(x.unsqueeze(1)).flatten(2).transpose(1, 2)


class ViTOutput(NamedTuple):
    """Output of :meth:`ViTEncoder.forward` with ``output_hidden_states=True``.

    Attributes:
        last: (B, N, D) tokens after the final LayerNorm (what the plain call returns).
        hidden_states: ``depth + 1`` tensors (B, N_i, D): the embeddings, then each
            block's output before the final LayerNorm (the Hugging Face convention).
            N_i differs from N only where a hook added tokens.
    """

    last: Tensor
    hidden_states: tuple[Tensor, ...]


def run_blocks(
    tokens: Tensor, blocks: nn.ModuleList, norm: nn.Module, hook: BlockHook | None = None
) -> ViTOutput:
    """Run tokens through transformer blocks and a final norm, keeping every layer.

    Args:
        tokens: (B, N, D) embeddings, the input of the first block.
        blocks: :class:`~polymodal.modules.attention.TransformerBlock` s, in order.
        norm: the final normalisation.
        hook: optional ``hook(layer_index, tokens) -> tokens`` before each block.

    Returns:
        :class:`ViTOutput`: ``last`` = norm(output of the last block) and the
        embeddings plus each block's output.
    """
    hidden = [tokens]
    for i, block in enumerate(blocks):
        if hook is not None:
            tokens = hook(i, tokens)
        tokens = block(tokens).output
        hidden.append(tokens)
    return ViTOutput(norm(tokens), tuple(hidden))


class ViTEncoder(nn.Module):
    """Vision transformer: conv patch embedding, learned positions, pre-norm blocks.

    Besides the plain ``enc(x) -> (B, N, D)``, :meth:`forward` can return every
    layer's tokens (multi-layer fusion, probes) and take a ``hook`` applied before
    each block (deep prompt tuning, per-layer fusion of another stream).

    Args:
        image_size: input size, an int for square images or (H, W).
        patch_size: side of the non-overlapping patches, an int for squares or (P_h, P_w);
            must divide H and W.
        in_channels: image channels C.
        dim: token width D.
        depth: number of transformer blocks.
        num_heads: attention heads per block.
        cls_token: prepend a learned CLS token (it is token 0 of the output).
        mlp_ratio: MLP width of the blocks as a multiple of D.
        dropout: dropout inside the blocks.
    """

    def __init__(
        self,
        image_size: int | Sequence[int] = 28,
        patch_size: int | Sequence[int] = 7,
        in_channels: int = 1,
        dim: int = 64,
        depth: int = 2,
        num_heads: int = 4,
        cls_token: bool = True,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        patch = (patch_size, patch_size) if isinstance(patch_size, int) else tuple(patch_size)
        if len(size) != 2 or len(patch) != 2 or size[0] % patch[0] or size[1] % patch[1]:
            raise ConfigError(f"patch_size {patch_size} must divide image_size {size}")
        self.image_size: tuple[int, int] = (int(size[0]), int(size[1]))
        self.in_channels = in_channels
        self.dim = dim
        self.grid = (size[0] // patch[0], size[1] // patch[1])
        n_patches = self.grid[0] * self.grid[1]
        self.patch_embed = nn.Conv2d(in_channels, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if cls_token else None
        self.pos_embed = nn.Parameter(torch.zeros(1, n_patches + int(cls_token), dim))
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, num_heads, mlp_ratio, dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self._init_weights()

    def _init_weights(self) -> None:
        # ViT/timm recipe: truncated normal (std 0.02) for positions, CLS and linear
        # layers, zero biases; the patch embedding is initialised like a linear layer
        # on the flattened patch (Xavier-uniform), as in MAE.
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        w = self.patch_embed.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        for m in self.blocks.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @property
    def num_patches(self) -> int:
        """Number of patch tokens (without CLS)."""
        return self.grid[0] * self.grid[1]

    def num_tokens(self, shape: Sequence[int] | None = None) -> int:
        """Number of output tokens N (patches plus CLS); fixed by ``image_size``."""
        return self.num_patches + int(self.cls_token is not None)

    def embed(self, x: Tensor) -> Tensor:
        """Patch embedding, CLS token and positions: the input of the first block.

        Args:
            x: (B, C, H, W) images of size ``image_size``.

        Returns:
            (B, N, D) tokens, CLS first when enabled.
        """
        _check_input("ViTEncoder", x, (self.in_channels, *self.image_size))
        t = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, D, gh, gw) -> (B, gh*gw, D)
        if self.cls_token is not None:
            t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], dim=1)
        return t + self.pos_embed

    @overload
    def forward(
        self,
        x: Tensor,
        output_hidden_states: Literal[False] = False,
        hook: BlockHook | None = None,
    ) -> Tensor: ...

    @overload
    def forward(
        self, x: Tensor, output_hidden_states: Literal[True], hook: BlockHook | None = None
    ) -> ViTOutput: ...

    def forward(
        self, x: Tensor, output_hidden_states: bool = False, hook: BlockHook | None = None
    ) -> Tensor | ViTOutput:
        """Encode images.

        A ``hook`` sees the input of every block, ``hook(i, tokens)`` for block i, and
        returns the tokens the block gets. It may add to them (fusing another stream)
        or change N by concatenating prompt tokens (deep prompt tuning, VPT-deep); the
        added tokens then flow on through every later block and into the output, so
        the caller removes them: the hook of the next block replaces them (e.g. keep
        ``tokens[:, :1]`` and ``tokens[:, 1 + P:]`` around the new P prompts) and the
        caller slices them off the output after the last block.

        Args:
            x: (B, C, H, W) images of size ``image_size``.
            output_hidden_states: return a :class:`ViTOutput` with every layer's tokens.
            hook: optional ``hook(layer_index, tokens) -> tokens`` run before each block.

        Returns:
            (B, N, D) tokens after the final LayerNorm, CLS first when enabled; a
            :class:`ViTOutput` when ``output_hidden_states``.
        """
        out = run_blocks(self.embed(x), self.blocks, self.norm, hook)
        return out if output_hidden_states else out.last

    def encode_visible(
        self, x: Tensor, ratio: float, generator: torch.Generator | None = None
    ) -> MaskedOutput:
        """MAE encoder pass: drop a random ``ratio`` of patches, encode the rest.

        The same contract as :meth:`~polymodal.modules.vit3d.VolumeViT.encode_visible`,
        so an image MAE pre-trains exactly the encoder a classifier fine-tunes.

        Args:
            x: (B, C, H, W) images of size ``image_size``.
            ratio: fraction of patches dropped per sample.
            generator: source of randomness for the mask.

        Returns:
            :class:`~polymodal.modules.vit3d.MaskedOutput`; ``last`` is (B, K (+1), D).
        """
        tokens = self.embed(x)  # (B, N (+1), D), positions added
        cls = int(self.cls_token is not None)
        m = random_masking(tokens[:, cls:], ratio, generator)
        kept = torch.cat([tokens[:, :cls], m.kept], dim=1)
        return MaskedOutput(run_blocks(kept, self.blocks, self.norm).last, m.mask, m.ids_restore)


class SpectrogramEncoder(nn.Module):
    """Convolutions over time, with the mel bands as channels; one token per time step.

    Treating the F bands as input channels of 1-D convolutions (as TDNN and
    wav2letter-style speech models do) sees the whole spectrum at every step and
    costs a fraction of a 2-D CNN over the (F, T) image on a CPU.

    Args:
        n_mels: number of mel bands F the input must have.
        dim: token width D.
        depth: number of stride-2 conv stages (time halves at each).
        eps: floor of the per-utterance standard deviation.
    """

    def __init__(self, n_mels: int = 40, dim: int = 64, depth: int = 3, eps: float = 1e-5) -> None:
        super().__init__()
        self.n_mels = n_mels
        self.dim = dim
        self.depth = depth
        self.eps = eps
        layers: list[nn.Module] = []
        for i in range(depth):
            # bias=False: the BatchNorm that follows has its own shift.
            conv = nn.Conv1d(n_mels if i == 0 else dim, dim, 3, stride=2, padding=1, bias=False)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            layers += [conv, nn.BatchNorm1d(dim), nn.ReLU(inplace=True)]
        self.stages = nn.Sequential(*layers)

    def num_tokens(self, shape: Sequence[int]) -> int:
        """Number of time tokens T' for a per-sample input shape (F, T)."""
        return _halve(shape[-1], self.depth)

    def forward(self, x: Tensor) -> Tensor:
        """Encode log-mel spectrograms.

        Args:
            x: (B, F, T) log-mel spectrograms with F = ``n_mels``.

        Returns:
            (B, T', D) time tokens, T' = ceil(T / 2**depth).
        """
        _check_input("SpectrogramEncoder", x, (self.n_mels, None))
        # Per-utterance normalisation over (F, T): log-mel levels shift with recording
        # gain and loudness; removing each utterance's mean and scale makes the encoder
        # level-invariant and keeps activations well scaled without dataset statistics.
        mean = x.mean(dim=(1, 2), keepdim=True)
        std = x.std(dim=(1, 2), keepdim=True, unbiased=False)
        x = (x - mean) / (std + self.eps)
        return self.stages(x).transpose(1, 2)  # (B, D, T') -> (B, T', D)


class TabularMLP(nn.Module):
    """MLP over a feature vector (e.g. gene expression) that emits one or more tokens.

    Args:
        in_features: input features G.
        dim: token width D.
        hidden: widths of the hidden layers (Linear → ReLU → Dropout each).
        dropout: dropout after each hidden layer.
        tokens: number of output tokens k; the last Linear maps to k * D.
    """

    def __init__(
        self,
        in_features: int,
        dim: int = 64,
        hidden: Sequence[int] = (256,),
        dropout: float = 0.1,
        tokens: int = 1,
    ) -> None:
        super().__init__()
        if tokens < 1:
            raise ConfigError(f"tokens must be >= 1, got {tokens}")
        self.in_features = in_features
        self.dim = dim
        self.tokens = tokens
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, tokens * dim))
        self.net = nn.Sequential(*layers)

    def num_tokens(self, shape: Sequence[int] | None = None) -> int:
        """Number of output tokens k (independent of the input shape)."""
        return self.tokens

    def forward(self, x: Tensor) -> Tensor:
        """Encode feature vectors.

        Args:
            x: (B, G) features.

        Returns:
            (B, k, D) tokens.
        """
        _check_input("TabularMLP", x, (self.in_features,))
        return self.net(x).view(x.shape[0], self.tokens, self.dim)  # (B, k*D) -> (B, k, D)


__all__ = [
    "BlockHook",
    "ImageCNN",
    "SpectrogramEncoder",
    "TabularMLP",
    "ViTEncoder",
    "ViTOutput",
    "pool",
    "run_blocks",
]
