"""Speech output: discrete speech units, an autoregressive unit decoder, Griffin-Lim.

Units are k-means clusters of log-mel frames (64 bands, 16 ms hop) of every
answer word as espeak-ng speaks it in one fixed output voice; an answer's unit
sequence is its frames' cluster ids. The decoder is a GRU whose initial state is a
projection of the language model's hidden state at the answer position; it
predicts the next unit (or the end unit) from the previous one. Units become
sound vocoder-free: each unit's centroid is a log-mel frame, mel power goes back
to a linear spectrogram through the filter bank's pseudo-inverse, and Griffin-Lim
finds a phase.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from polymodal.data.features import log_mel, mel_filters

SAMPLE_RATE = 16_000
N_FFT = 512
HOP = 256  # 16 ms
N_MELS = 64
MAX_UNITS = 120  # 1.9 s of speech


def answer_frames(wave: Tensor) -> Tensor:
    """(S,) speech -> (T, 64) log-mel frames, the space units are clustered in."""
    return log_mel(wave, SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS).T


def fit_units(frames: list[Tensor], units: int, seed: int = 0) -> tuple[Tensor, list[Tensor]]:
    """k-means over all frames.

    Args:
        frames: one (T_i, 64) log-mel matrix per answer recording.
        units: k.
        seed: k-means initialisation seed.

    Returns:
        ``(centroids, sequences)``: (k, 64) and one (T_i,) unit sequence per recording.
    """
    from sklearn.cluster import KMeans

    stacked = torch.cat(frames).numpy()
    kmeans = KMeans(units, n_init=4, random_state=seed).fit(stacked)
    centroids = torch.from_numpy(kmeans.cluster_centers_).float()
    labels = torch.from_numpy(kmeans.labels_).long()
    return centroids, list(labels.split([len(f) for f in frames]))


class SpeechDecoder(nn.Module):
    """GRU over units, started from the LM's answer state.

    Args:
        text_hidden: LM width D.
        units: k (the end unit is id k; the start input is id k + 1).
        hidden: GRU width.
    """

    def __init__(self, text_hidden: int, units: int, hidden: int = 128) -> None:
        super().__init__()
        self.units = units
        self.start = nn.Sequential(nn.Linear(text_hidden, hidden), nn.Tanh())
        self.embed = nn.Embedding(units + 2, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, units + 1)
        self.register_buffer("centroids", torch.zeros(units, N_MELS))

    @property
    def end(self) -> int:
        return self.units

    def loss(self, state: Tensor, sequences: list[Tensor]) -> Tensor:
        """Teacher-forced cross-entropy of each (T_i,) unit sequence + end, given (B, D) states."""
        length = max(len(s) for s in sequences) + 1
        targets = torch.full((len(sequences), length), -100, dtype=torch.long, device=state.device)
        inputs = torch.full_like(targets, self.units + 1)
        for i, seq in enumerate(sequences):
            seq = seq.to(state.device)
            targets[i, : len(seq) + 1] = torch.cat([seq, seq.new_tensor([self.end])])
            inputs[i, 1 : len(seq) + 1] = seq
        hidden, _ = self.gru(self.embed(inputs), self.start(state)[None])
        logits = self.out(hidden)
        return nn.functional.cross_entropy(logits.transpose(1, 2), targets)

    @torch.no_grad()
    def generate(self, state: Tensor, max_units: int = MAX_UNITS) -> list[Tensor]:
        """Greedy unit sequences (end unit dropped) for (B, D) states."""
        h = self.start(state)[None]
        token = torch.full((state.shape[0], 1), self.units + 1, device=state.device)
        steps, done = [], torch.zeros(state.shape[0], dtype=torch.bool, device=state.device)
        for _ in range(max_units):
            out, h = self.gru(self.embed(token), h)
            token = self.out(out).argmax(-1)
            steps.append(token[:, 0])
            done |= token[:, 0] == self.end
            if bool(done.all()):
                break
        seqs = torch.stack(steps, 1)
        result = []
        for row in seqs:
            stop = (row == self.end).nonzero()
            result.append(row[: int(stop[0])] if len(stop) else row)
        return result

    def to_wave(self, units: Tensor, iterations: int = 48) -> Tensor:
        """(T,) units -> (S,) waveform: centroid log-mels, pseudo-inverse mel, Griffin-Lim."""
        if units.numel() == 0:
            return torch.zeros(HOP)
        mel = self.centroids[units].exp().T  # (64, T) mel power
        return griffin_lim(mel_to_magnitude(mel), iterations)


def mel_to_magnitude(mel_power: Tensor) -> Tensor:
    """(64, T) mel power -> (N_FFT // 2 + 1, T) linear magnitude (least squares, clamped >= 0)."""
    bank = mel_filters(N_FFT, N_MELS, SAMPLE_RATE, 20.0, SAMPLE_RATE / 2)  # (F, 64)
    power = torch.linalg.pinv(bank.T.double()) @ mel_power.double()
    return power.clamp_min(0).sqrt().float()


def griffin_lim(magnitude: Tensor, iterations: int = 48, seed: int = 0) -> Tensor:
    """Griffin-Lim phase recovery (with the 0.99 momentum of the fast variant): (S,) wave."""
    window = torch.hann_window(N_FFT)
    generator = torch.Generator().manual_seed(seed)
    angles = torch.exp(2j * torch.pi * torch.rand(magnitude.shape, generator=generator))
    previous = torch.zeros_like(angles)
    for _ in range(iterations):
        wave = torch.istft(magnitude * angles, N_FFT, HOP, window=window)
        rebuilt = torch.stft(wave, N_FFT, HOP, window=window, return_complex=True)
        rebuilt = rebuilt[..., : magnitude.shape[-1]]
        update = rebuilt - 0.99 * previous
        previous = rebuilt
        angles = update / update.abs().clamp_min(1e-8)
    wave = torch.istft(magnitude * angles, N_FFT, HOP, window=window)
    return wave / wave.abs().max().clamp_min(1e-8) * 0.9
