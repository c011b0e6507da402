import pytest
import torch
from torch.testing import assert_close

TINY = {"train": 30, "val": 20, "test": 20, "voices": 20, "image_noise": 0.0, "audio_snr_db": 10.0}


@pytest.fixture
def home(tmp_path, monkeypatch):
    pytest.importorskip("espeakng_loader", reason="AV-Digits needs espeakng-loader")
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    return tmp_path


def test_av_digits_waveforms_reproduce_the_stored_audio_features(home):
    from polymodal.data.synth.av_digits import (
        clip_features,
        load_av_digits,
        load_av_digits_waveforms,
    )

    stored = load_av_digits("test", **TINY).tensors
    waves = load_av_digits_waveforms("test", **TINY)
    assert waves["audio"].shape == (20, 16000)
    assert torch.equal(waves["label"], stored["label"])
    assert torch.equal(clip_features(waves["audio"].numpy()).half(), stored["audio"])


def test_av_digits_c_corrupts_only_the_named_modality(home):
    from polymodal.data.corrupt import av_digits_c

    clean = av_digits_c(None, **TINY).tensors
    audio = av_digits_c("audio:crowd:5", seed=0, indices=[0, 3], **TINY).tensors
    image = av_digits_c("image:fog:5", seed=0, **TINY).tensors
    assert torch.equal(audio["image"], clean["image"][[0, 3]])
    assert not torch.allclose(audio["audio"], clean["audio"][[0, 3]].float())
    assert torch.equal(image["audio"], clean["audio"])
    assert not torch.allclose(image["image"], clean["image"].float())


def test_av_mnist_c_corrupts_audio_on_the_waveform(shared_data):
    from polymodal.data.corrupt import av_mnist_c
    from polymodal.data.real.av_mnist import AVMNIST

    folders = (shared_data / "mnist-t10k", shared_data / "fsdd")
    clean = av_mnist_c(*folders, None)
    noisy = av_mnist_c(*folders, "audio:gaussian_noise:3", seed=0)
    reference = AVMNIST(*folders, split="test")
    assert len(clean) == len(reference)
    assert_close(clean[5]["audio"], reference[5]["audio"])
    assert torch.equal(noisy[5]["image"], clean[5]["image"])
    assert not torch.allclose(noisy[5]["audio"], clean[5]["audio"])


def test_av_mnist_c_pairs_share_a_recording_but_not_its_noise(shared_data):
    from polymodal.data.corrupt import av_mnist_c

    folders = (shared_data / "mnist-t10k", shared_data / "fsdd")
    clean = av_mnist_c(*folders, None, pairs_per_recording=2).tensors
    assert torch.equal(clean["audio"][0], clean["audio"][1])  # pairs in recording order
    assert not torch.equal(clean["image"][0], clean["image"][1])
    some = av_mnist_c(*folders, None, indices=[1, 4], pairs_per_recording=2).tensors
    assert torch.equal(some["image"], clean["image"][[1, 4]])
    assert torch.equal(some["audio"], clean["audio"][[1, 4]])
    noisy = av_mnist_c(*folders, "audio:gaussian_noise:3", pairs_per_recording=2).tensors
    assert not torch.allclose(noisy["audio"][0], noisy["audio"][1])
