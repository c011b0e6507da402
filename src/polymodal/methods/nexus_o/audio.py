"""The audio side of Nexus-O: a log-mel transformer encoder and an adapter into the LM.

The encoder turns (B, S) 16 kHz speech into (B, T', H) frame features: log-mel
(40 bands, 10 ms hop), two stride-2 convolutions (40 ms per frame), then a pre-norm
transformer with learned positions. The adapter maps them into the language
model's embedding space as a fixed number K of tokens: K learned queries attend
to the (unpadded) frames, then a two-layer GELU projection to the LM width (the
shape of LLaVA's projector), so every question fills the same K ``<audio>`` slots.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from polymodal.data.features import log_mel

SAMPLE_RATE = 16_000
HOP = 160  # 10 ms
N_MELS = 40
SUBSAMPLING = 4  # two stride-2 convolutions
MARGIN = 1600  # zeros after every clip: frames near its end never see the batch's padding


def frame_mask(lengths: Tensor, frames: int) -> Tensor:
    """(B, frames) True on encoder frames that hold speech, from (B,) sample counts."""
    valid = torch.div(lengths, HOP * SUBSAMPLING, rounding_mode="floor") + 1
    return torch.arange(frames, device=lengths.device)[None, :] < valid[:, None]


class AudioEncoder(nn.Module):
    """Log-mel -> conv subsampling -> transformer.

    Args:
        hidden: width H.
        layers: transformer layers.
        heads: attention heads.
        window_s: longest clip in seconds (sets the learned position table).
    """

    def __init__(self, hidden: int = 96, layers: int = 2, heads: int = 4, window_s: float = 6.0):
        super().__init__()
        self.window_s = window_s
        self.subsample = nn.Sequential(
            nn.Conv1d(N_MELS, hidden, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv1d(hidden, hidden, 3, stride=2, padding=1),
            nn.GELU(),
        )
        frames = (int(window_s * SAMPLE_RATE) + MARGIN) // (HOP * SUBSAMPLING) + 2
        self.positions = nn.Parameter(torch.zeros(1, frames, hidden))
        nn.init.normal_(self.positions, std=0.02)
        block = nn.TransformerEncoderLayer(
            hidden, heads, 4 * hidden, dropout=0.0, batch_first=True, norm_first=True
        )
        self.transformer = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, audio: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Encode a padded batch.

        Args:
            audio: (B, S) waveforms, zero-padded on the right.
            lengths: (B,) samples of speech per row.

        Returns:
            ``(features, mask)``: (B, T', H) and (B, T') True on speech frames.
        """
        audio = nn.functional.pad(audio, (0, MARGIN))  # the STFT reflects zeros, not speech
        mel = log_mel(audio, SAMPLE_RATE, n_mels=N_MELS)  # (B, F, T)
        mel = (mel + 5.0) / 5.0  # roughly zero-mean, unit-scale for speech at -20 dBFS
        x = self.subsample(mel).transpose(1, 2)  # (B, T', H)
        x = x + self.positions[:, : x.shape[1]]
        mask = frame_mask(lengths, x.shape[1])
        x = self.transformer(x, src_key_padding_mask=~mask)
        return self.norm(x), mask


class AudioAdapter(nn.Module):
    """K learned queries attend to the frames; a 2-layer MLP maps them to the LM width.

    Args:
        audio_hidden: encoder width H.
        text_hidden: language-model width D.
        tokens: K, the ``<audio>`` slots per question.
        heads: attention heads of the pooling.
    """

    def __init__(self, audio_hidden: int, text_hidden: int, tokens: int = 16, heads: int = 4):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(1, tokens, audio_hidden) * 0.02)
        self.attend = nn.MultiheadAttention(audio_hidden, heads, batch_first=True)
        self.project = nn.Sequential(
            nn.Linear(audio_hidden, text_hidden), nn.GELU(), nn.Linear(text_hidden, text_hidden)
        )

    @property
    def tokens(self) -> int:
        return int(self.queries.shape[1])

    def forward(self, features: Tensor, mask: Tensor) -> Tensor:
        """(B, T', H) frames and (B, T') mask -> (B, K, D) tokens for the LM."""
        queries = self.queries.expand(features.shape[0], -1, -1)
        pooled, _ = self.attend(queries, features, features, key_padding_mask=~mask)
        return self.project(pooled)


class WhisperAudioEncoder(nn.Module):
    """The encoder of a Hugging Face ``WhisperModel``, from a tiny config (random weights).

    For users with real Whisper weights: load them into :attr:`encoder` (same
    ``d_model``, 80 mel bins). Whisper reads a fixed window of ``2 * positions``
    10 ms frames of 80-band log-mel (log10, floored 8 decades below the clip's
    peak, scaled as Whisper's feature extractor does); a stride-2 convolution
    halves it, so a frame is 20 ms.

    Args:
        hidden: ``d_model``.
        layers: encoder layers.
        heads: attention heads.
        window_s: the window in seconds (``max_source_positions = 50 * window_s``).
    """

    MELS = 80

    def __init__(self, hidden: int = 96, layers: int = 2, heads: int = 4, window_s: float = 6.0):
        super().__init__()
        from transformers import WhisperConfig
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        self.positions = int(round(window_s * SAMPLE_RATE / HOP / 2))
        config = WhisperConfig(
            num_mel_bins=self.MELS,
            d_model=hidden,
            encoder_layers=layers,
            encoder_attention_heads=heads,
            encoder_ffn_dim=4 * hidden,
            max_source_positions=self.positions,
        )
        self.encoder = WhisperEncoder(config)

    def forward(self, audio: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """(B, S) padded speech and (B,) lengths -> (B, positions, H) and (B, positions) mask."""
        frames = 2 * self.positions
        mel = log_mel(audio, SAMPLE_RATE, n_mels=self.MELS)[..., :frames] / torch.log(
            torch.tensor(10.0)
        )
        mel = torch.maximum(mel, mel.amax(dim=(1, 2), keepdim=True) - 8.0)
        mel = nn.functional.pad((mel + 4.0) / 4.0, (0, frames - mel.shape[-1]))
        features = self.encoder(mel).last_hidden_state
        valid = torch.div(lengths, 2 * HOP, rounding_mode="floor") + 1
        mask = torch.arange(self.positions, device=audio.device)[None, :] < valid[:, None]
        return features, mask
