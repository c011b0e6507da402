"""AV-SSL: semi-supervised audio-visual classification with localisation-guided mixup
(arXiv 2503.02284): pseudo-labels from an EMA teacher, an audio–video contrastive
term, and mixing clips along the region the audio localises."""

from polymodal.methods.av_ssl.model import AVOutput, AVSSLModel, audio_video_nce, build_av_ssl

__all__ = ["AVOutput", "AVSSLModel", "audio_video_nce", "build_av_ssl"]
