"""Generic building blocks: attention, encoders, fusion heads and a classifier."""

from polymodal.modules.attention import (
    AttentionOutput,
    CrossAttentionBlock,
    FeedForward,
    MultiHeadAttention,
    TransformerBlock,
)
from polymodal.modules.classifier import (
    ClassifierOutput,
    MultimodalClassifier,
    build_classifier,
    build_encoder,
)
from polymodal.modules.encoders import (
    BlockHook,
    ImageCNN,
    SpectrogramEncoder,
    TabularMLP,
    ViTEncoder,
    ViTOutput,
    pool,
)
from polymodal.modules.fusion import CrossAttentionFusion, EarlyFusion, FusionOutput, LateFusion
from polymodal.modules.text_encoder import SmallTextEncoder, TextEncoderOutput, masked_mean
from polymodal.modules.vit3d import VideoViT, VolumeViT, random_masking, unshuffle

__all__ = [
    "AttentionOutput",
    "BlockHook",
    "ClassifierOutput",
    "CrossAttentionBlock",
    "CrossAttentionFusion",
    "EarlyFusion",
    "FeedForward",
    "FusionOutput",
    "ImageCNN",
    "LateFusion",
    "MultiHeadAttention",
    "MultimodalClassifier",
    "SmallTextEncoder",
    "SpectrogramEncoder",
    "TabularMLP",
    "TextEncoderOutput",
    "TransformerBlock",
    "VideoViT",
    "ViTEncoder",
    "ViTOutput",
    "VolumeViT",
    "build_classifier",
    "build_encoder",
    "masked_mean",
    "pool",
    "random_masking",
    "unshuffle",
]
