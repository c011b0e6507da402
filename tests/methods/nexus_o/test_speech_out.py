"""Tests of speech output: Griffin-Lim, mel inversion, units, the unit decoder."""

from __future__ import annotations

import torch

from polymodal.methods.nexus_o.speech_out import (
    HOP,
    N_FFT,
    SpeechDecoder,
    answer_frames,
    fit_units,
    griffin_lim,
    mel_to_magnitude,
)

SR = 16_000


def tone(hz: float, seconds: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(SR * seconds)) / SR
    return 0.5 * torch.sin(2 * torch.pi * hz * t)


def peak_hz(wave: torch.Tensor) -> float:
    spectrum = torch.fft.rfft(wave).abs()
    return float(spectrum.argmax()) * SR / wave.numel()


def test_griffin_lim_recovers_a_tone_from_its_magnitude():
    window = torch.hann_window(N_FFT)
    magnitude = torch.stft(tone(1000), N_FFT, HOP, window=window, return_complex=True).abs()
    wave = griffin_lim(magnitude, iterations=32)
    assert abs(peak_hz(wave) - 1000) < 40
    assert wave.abs().max() == torch.tensor(0.9)


def test_mel_inversion_keeps_the_pitch_region():
    mel_power = answer_frames(tone(600)).T.exp()  # (64, T)
    wave = griffin_lim(mel_to_magnitude(mel_power), iterations=32)
    assert abs(peak_hz(wave) - 600) < 120  # mel bands near 600 Hz are ~ 60-100 Hz wide


def test_units_cluster_frames_and_label_every_frame():
    frames = [answer_frames(tone(300)), answer_frames(tone(2000))]
    centroids, sequences = fit_units(frames, units=2)
    assert centroids.shape == (2, 64)
    assert [len(s) for s in sequences] == [len(f) for f in frames]
    # Each tone's middle frames fall in one cluster, and not the other tone's.
    assert int(sequences[0][5:-5].unique().numel()) == 1
    assert int(sequences[0][10]) != int(sequences[1][10])


def test_decoder_learns_to_say_two_sequences_from_two_states():
    torch.manual_seed(0)
    decoder = SpeechDecoder(text_hidden=8, units=4, hidden=32)
    states = torch.eye(8)[:2]
    targets = [torch.tensor([0, 1, 1, 2]), torch.tensor([3, 3, 0])]
    optimizer = torch.optim.Adam(decoder.parameters(), lr=0.05)
    for _ in range(150):
        optimizer.zero_grad()
        decoder.loss(states, targets).backward()
        optimizer.step()
    said = decoder.generate(states)
    assert [s.tolist() for s in said] == [t.tolist() for t in targets]
    decoder.centroids.copy_(torch.randn(4, 64))
    assert decoder.to_wave(said[0]).ndim == 1
