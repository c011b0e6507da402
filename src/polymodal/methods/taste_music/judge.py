"""The independent judge: audio features, a taste classifier on them, and the direct
correspondence features of a clip.

The classifier only ever hears audio. It is a logistic regression (scikit-learn)
on :func:`audio_features`, trained on pieces of the ``judge`` stream of the
composer (:func:`~polymodal.data.synth.taste_music.taste_pieces`), which no
generator trains on; its regularisation is chosen on a validation set and its
accuracy is measured on a held-out test set before it judges anything.

:func:`correspondences` measures, per clip, what the correspondences speak of:
mean pitch, tempo, dissonance, legato (sounding share of each note's slot), note
rate (rhythmic density) from the events, and brightness (spectral centroid) from
the audio. :data:`EXPECTED` says which way each taste should move them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from polymodal.data.synth.music_compose import TASTES
from polymodal.data.synth.music_events import Piece
from polymodal.data.synth.music_synth import SAMPLE_RATE, render
from polymodal.data.synth.taste_music import taste_pieces

N_FFT, HOP = 1024, 256
MEL_BANDS = 16
DISSONANT_INTERVALS = frozenset({1, 2, 6, 10, 11})
"""Interval classes (semitones mod 12) counted as dissonant: seconds, tritone, sevenths."""

FEATURES = ("mean pitch", "tempo", "dissonance", "legato", "note rate", "brightness")
EXPECTED: dict[str, dict[str, int]] = {
    "sweet": {"mean pitch": +1, "tempo": -1, "dissonance": -1, "legato": +1},
    "sour": {"mean pitch": +1, "tempo": +1, "dissonance": +1},
    "bitter": {"mean pitch": -1, "legato": +1, "brightness": -1},
    "salty": {"legato": -1, "note rate": +1},
}
"""Per taste, the direction (+1 up, -1 down) each correspondence feature should move
in a fine-tuned model's clips relative to the base model's."""


def _spectrogram(wave: np.ndarray) -> np.ndarray:
    """(T, N_FFT/2 + 1) magnitudes of Hann-windowed frames."""
    if wave.size < N_FFT:
        wave = np.pad(wave, (0, N_FFT - wave.size))
    frames = np.lib.stride_tricks.sliding_window_view(wave, N_FFT)[::HOP]  # (T, N_FFT)
    return np.abs(np.fft.rfft(frames * np.hanning(N_FFT), axis=-1))


def audio_features(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(8 + MEL_BANDS,) features of one clip's audio.

    Sounding share of frames, spectral centroid (log2 Hz, mean and std), dominant
    frequency (log2 Hz, mean and std), onsets per second (spectral-flux peaks),
    chroma roughness (energy at a semitone or tritone from other energy), log
    energy; then the mean log energy of ``MEL_BANDS`` log-spaced bands, minus their
    mean (timbre, independent of loudness). Computed on sounding frames only.
    """
    spec = _spectrogram(wave.astype(np.float64))
    freqs = np.fft.rfftfreq(N_FFT, 1 / sample_rate)
    energy = (spec**2).sum(axis=1)
    sounding = energy > 0.01 * energy.max() if energy.max() > 0 else np.ones_like(energy, bool)
    s = spec[sounding] + 1e-9
    centroid = np.log2((s * freqs).sum(1) / s.sum(1) + 1)
    audible = (freqs > 50) & (freqs < 4000)
    dominant = np.log2(freqs[audible][s[:, audible].argmax(1)])
    flux = np.maximum(np.diff(np.log(spec + 1e-6), axis=0), 0).sum(1)
    peaks = (flux[1:-1] > flux[:-2]) & (flux[1:-1] >= flux[2:])
    peaks &= flux[1:-1] > flux.mean() + flux.std()
    seconds = wave.size / sample_rate
    pitch_class = np.round(12 * np.log2(freqs[audible] / 440.0)).astype(int) % 12
    chroma = np.stack([s[:, audible][:, pitch_class == k].sum(1) for k in range(12)], 1)
    chroma /= chroma.sum(1, keepdims=True)
    rough = sum((chroma * np.roll(chroma, k, axis=1)).sum(1) for k in (1, 6))
    edges = np.geomspace(50, sample_rate / 2, MEL_BANDS + 1)
    bands = np.stack(
        [np.log((s[:, (freqs >= a) & (freqs < b)] ** 2).sum(1) + 1e-9).mean() for a, b in
         zip(edges[:-1], edges[1:], strict=True)]
    )  # fmt: skip
    head = [
        sounding.mean(),
        centroid.mean(),
        centroid.std(),
        dominant.mean(),
        dominant.std(),
        peaks.sum() / seconds,
        rough.mean(),
        np.log(energy[sounding].mean() + 1e-9),
    ]
    return np.concatenate([head, bands - bands.mean()]).astype(np.float64)


def spectral_centroid(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Energy-weighted mean frequency in Hz over the clip's sounding frames."""
    spec = _spectrogram(wave.astype(np.float64)) ** 2
    freqs = np.fft.rfftfreq(N_FFT, 1 / sample_rate)
    return float((spec * freqs).sum() / max(spec.sum(), 1e-12))


def correspondences(piece: Piece, wave: np.ndarray) -> dict[str, float]:
    """The :data:`FEATURES` of one clip (module doc).

    ``dissonance`` is the share of note pairs starting together whose interval class
    is in :data:`DISSONANT_INTERVALS` (0 without such pairs); ``legato`` the mean of
    each note's length over the time to the next onset (capped at 1.5); ``note rate``
    onsets per second. An empty piece gives NaN for the event features.
    """
    notes = piece.notes
    onsets = sorted({n.start for n in notes})
    pairs = dissonant = 0
    for start in onsets:
        chord = [n.pitch for n in notes if n.start == start]
        for i, a in enumerate(chord):
            for b in chord[i + 1 :]:
                pairs += 1
                dissonant += abs(a - b) % 12 in DISSONANT_INTERVALS
    following = {a: b for a, b in zip(onsets, onsets[1:], strict=False)}
    shares = [
        min(1.5, n.duration / (following[n.start] - n.start)) for n in notes if n.start in following
    ]
    seconds = max(piece.seconds, 1e-9)
    nan = float("nan")
    return {
        "mean pitch": float(np.mean([n.pitch for n in notes])) if notes else nan,
        "tempo": float(piece.tempo),
        "dissonance": dissonant / pairs if pairs else 0.0,
        "legato": float(np.mean(shares)) if shares else nan,
        "note rate": len(onsets) / seconds if notes else nan,
        "brightness": spectral_centroid(wave),
    }


@dataclass
class TasteJudge:
    """A fitted taste classifier on :func:`audio_features` and its own scores.

    Attributes:
        model: the scikit-learn pipeline (standardise, logistic regression).
        val_accuracy: accuracy on the validation pieces it chose its setting on.
        test_accuracy: accuracy on held-out test pieces (its quality as a judge).
        confusion: (4, 4) test counts, rows = true taste, columns = predicted.
        regularisation: the chosen inverse regularisation ``C``.
    """

    model: Any
    val_accuracy: float
    test_accuracy: float
    confusion: np.ndarray
    regularisation: float

    def predict(self, features: np.ndarray) -> np.ndarray:
        """(N,) taste indices of (N, F) feature rows."""
        return np.asarray(self.model.predict(features))


def features_of(pieces: Sequence[Piece]) -> np.ndarray:
    """(N, F) audio features of pieces rendered by the built-in synthesiser."""
    return np.stack([audio_features(render(p)) for p in pieces])


def train_judge(per_taste: tuple[int, int, int], seed: int = 1000) -> TasteJudge:
    """Fit the judge on the ``judge`` stream (never a generator's pieces).

    Args:
        per_taste: pieces per taste for train, validation and test.
        seed: seed of the judge's pieces; train, validation and test use
            ``seed``, ``seed + 1`` and ``seed + 2``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import confusion_matrix
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    sets = []
    for offset, count in enumerate(per_taste):
        pieces, labels, _ = taste_pieces(count, seed + offset, stream="judge")
        sets.append((features_of(pieces), np.asarray(labels)))
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = sets
    best = None
    for c in (0.01, 0.1, 1.0, 10.0):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
        model.fit(x_train, y_train)
        accuracy = float((model.predict(x_val) == y_val).mean())
        if best is None or accuracy > best[0]:
            best = (accuracy, c, model)
    assert best is not None
    val_accuracy, c, model = best
    predicted = model.predict(x_test)
    return TasteJudge(
        model,
        val_accuracy,
        float((predicted == y_test).mean()),
        confusion_matrix(y_test, predicted, labels=range(len(TASTES))),
        c,
    )
