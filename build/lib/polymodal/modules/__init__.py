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
from polymodal.modules.encoders import ImageCNN, SpectrogramEncoder, TabularMLP, ViTEncoder, pool
from polymodal.modules.fusion import CrossAttentionFusion, EarlyFusion, FusionOutput, LateFusion

__all__ = [
    "AttentionOutput",
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
    "SpectrogramEncoder",
    "TabularMLP",
    "TransformerBlock",
    "ViTEncoder",
    "build_classifier",
    "build_encoder",
    "pool",
]
