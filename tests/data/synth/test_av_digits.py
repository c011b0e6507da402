import pytest
import torch
from safetensors.torch import load_file

pytest.importorskip("espeakng_loader", reason="AV-Digits needs espeakng-loader (polymodal[speech])")

from polymodal.data.cache import read_manifest  # noqa: E402
from polymodal.data.synth.av_digits import build_av_digits, load_av_digits  # noqa: E402
from polymodal.errors import ConfigError  # noqa: E402

TINY = {"train": 60, "val": 20, "test": 20, "voices": 20}


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    return tmp_path


def test_samples_follow_the_contract_with_balanced_labels(home):
    train = load_av_digits("train", **TINY)
    sample = train[0]
    assert sample["image"].shape == (1, 28, 28) and sample["image"].dtype == torch.float32
    assert sample["audio"].shape == (40, 101)
    assert train.num_classes == 10 and len(train) == 60
    assert torch.bincount(train.tensors["label"]).tolist() == [6] * 10


def test_splits_share_no_source_image_and_no_voice(home):
    folder = build_av_digits(**TINY)
    provenance = load_file(str(folder / "provenance.safetensors"))
    for kind in ("image_source", "voice"):
        used = {s: set(provenance[f"{s}.{kind}"].tolist()) for s in ("train", "val", "test")}
        assert not used["train"] & used["val"]
        assert not used["train"] & used["test"]
        assert not used["val"] & used["test"]


def test_same_seed_builds_identical_files_and_another_seed_differs(home, tmp_path, monkeypatch):
    first = read_manifest(build_av_digits(**TINY))["files"]
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path / "elsewhere"))
    again = read_manifest(build_av_digits(**TINY))["files"]
    other = read_manifest(build_av_digits(**TINY, seed=1))["files"]
    assert first == again
    assert other["train.safetensors"] != first["train.safetensors"]


def test_noise_knobs_change_the_data(home):
    quiet = load_av_digits("test", **TINY, image_noise=0.0, image_occlusion=0, audio_snr_db=30.0)
    noisy = load_av_digits("test", **TINY, image_noise=0.8, image_occlusion=0, audio_snr_db=-15.0)
    # Same pairs and layout; only the degradation differs.
    assert torch.equal(quiet.tensors["label"], noisy.tensors["label"])
    assert noisy.tensors["image"].float().std() > 2 * quiet.tensors["image"].float().std()
    # Noise fills the silent frames, flattening the log-mel dynamic range over time.
    spread = lambda d: d.tensors["audio"].float().mean(1).std(1).mean()  # noqa: E731
    assert spread(noisy) < spread(quiet)


def test_bad_options_are_named(home):
    with pytest.raises(ConfigError, match="unexpected keyword argument 'snr'"):
        load_av_digits("train", snr=3)
    with pytest.raises(ConfigError, match="splits"):
        load_av_digits("validation", **TINY)
