import math

import torch

from polymodal.data.features import log_mel


def test_log_mel_shape_and_tone_lands_in_the_right_band():
    t = torch.arange(16_000) / 16_000
    tone = torch.sin(2 * math.pi * 1_000 * t)
    mel = log_mel(tone)  # (40, 101)
    assert mel.shape == (40, 101)
    band = mel.mean(dim=1).argmax().item()
    # Slaney mel: 20 Hz -> 0.3, 1 kHz -> 15, 8 kHz -> 45.245; 42 edges 1.0962 apart.
    # Band k peaks at 0.3 + (k + 1) * 1.0962: band 12 at 14.55 is nearest to 15.
    assert band == 12


def test_log_mel_keeps_leading_dimensions_and_floors_silence():
    mel = log_mel(torch.zeros(2, 3, 1600))
    assert mel.shape == (2, 3, 40, 11)
    assert torch.allclose(mel, torch.full_like(mel, math.log(1e-10)))
