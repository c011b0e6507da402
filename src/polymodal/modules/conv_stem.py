"""A convolutional stem for a vision transformer: the patch embedding of a hybrid ViT.

A plain ViT embeds each p × p patch on its own, so with small patches a token sees
only a sliver of an object: at 4-pixel patches, an inside corner of a circle and
of a square look the same. A hybrid ViT (and, after several layers, CLIP's deep
tower) gives each token a view of its surroundings. :class:`ConvStem` does it with
a few 3 × 3 convolutions: ``log2(p)`` of stride 2 bring the image to the patch
grid, ``context`` more at stride 1 (dilation 1, 2, 4, …) widen the view, and a
1 × 1 convolution maps to the transformer's width. The output grid is the plain
embedding's, so the number of tokens does not change.

Example::

    stem = ConvStem(3, 96, patch_size=4)       # replaces nn.Conv2d(3, 96, 4, stride=4)
    stem(torch.rand(2, 3, 96, 96)).shape       # (2, 96, 24, 24)
    stem.receptive_field                       # 31 pixels
"""

from __future__ import annotations

from torch import Tensor, nn

from polymodal.errors import ConfigError


class ChannelNorm(nn.LayerNorm):
    """LayerNorm over the channels of each position of a (B, C, H, W) map: no running
    statistics (a frozen tower stays fixed in train mode) and, unlike GroupNorm, no
    statistics over the image, so a token depends on its receptive field only."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _block(channels_in: int, channels_out: int, stride: int, dilation: int) -> nn.Sequential:
    """3 × 3 convolution, then :class:`ChannelNorm` and GELU."""
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 3, stride, padding=dilation, dilation=dilation),
        ChannelNorm(channels_out),
        nn.GELU(),
    )


class ConvStem(nn.Conv2d):
    """A drop-in for a ViT's patch embedding ``nn.Conv2d(C, D, p, stride=p)``.

    It is the final 1 × 1 projection itself (so code that reads the embedding's
    ``weight``, as ``transformers``' CLIP does for its dtype, keeps working), run
    after :attr:`body`, the strided and context convolutions.

    Args:
        in_channels: image channels C.
        out_channels: token width D.
        patch_size: p, a power of two ≥ 2: the grid is H/p × W/p as before.
        width: channels of the last convolutions (the first stride-2 one has half).
        context: stride-1 convolutions after the strided ones, dilation 1, 2, 4, ….
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        patch_size: int,
        width: int = 64,
        context: int = 2,
    ) -> None:
        halvings = patch_size.bit_length() - 1
        if patch_size < 2 or 2**halvings != patch_size:
            raise ConfigError(
                f"a convolutional stem needs a patch_size that is a power of two (2, 4, 8, …), "
                f"got {patch_size}; use vision_stem=patch for other sizes"
            )
        super().__init__(width, out_channels, kernel_size=1, bias=False)
        channels = [in_channels] + [
            max(width // 2 ** (halvings - 1 - i), 8) for i in range(halvings)
        ]
        strided = [_block(channels[i], channels[i + 1], 2, 1) for i in range(halvings)]
        wider = [_block(width, width, 1, 2**i) for i in range(context)]
        self.body = nn.Sequential(*strided, *wider)
        self.patch_size = patch_size

    @property
    def receptive_field(self) -> int:
        """Side in pixels of the input window one output token depends on."""
        field, step = 1, 1
        for block in self.body:
            conv = block[0]
            field += 2 * conv.dilation[0] * step  # a 3 x 3 kernel reaches one tap each way
            step *= conv.stride[0]
        return field

    def forward(self, pixels: Tensor) -> Tensor:
        """(B, C, H, W) images → (B, D, H/p, W/p) token grid."""
        return super().forward(self.body(pixels))
