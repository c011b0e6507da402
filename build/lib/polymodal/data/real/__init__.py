"""Loaders for real data formats: WAV audio, MNIST IDX files, FSDD and AV-MNIST."""

from polymodal.data.real.av_mnist import AVMNIST, mnist_pools
from polymodal.data.real.fsdd import FSDD, fit_length, parse_fsdd_name
from polymodal.data.real.mnist import load_mnist, read_idx, write_idx
from polymodal.data.real.wav import read_wav, read_wav_native, resample, write_wav

__all__ = [
    "AVMNIST",
    "FSDD",
    "fit_length",
    "load_mnist",
    "mnist_pools",
    "parse_fsdd_name",
    "read_idx",
    "read_wav",
    "read_wav_native",
    "resample",
    "write_idx",
    "write_wav",
]
