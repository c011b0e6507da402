from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from polymodal.data.contract import collate
from polymodal.data.real.fsdd import FSDD, fit_length, parse_fsdd_name
from polymodal.data.real.wav import write_wav
from polymodal.errors import DataError


def _recordings(folder: Path, names: list[str], seconds: float = 0.25, rate: int = 8000) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    for name in names:
        wave = 0.1 * torch.randn(round(seconds * rate), generator=generator)
        write_wav(folder / name, wave, rate)


@pytest.fixture(scope="module")
def real_root(shared_data: Path) -> Path:
    return shared_data / "fsdd" / "recordings"


def test_parse_fsdd_name() -> None:
    assert parse_fsdd_name("3_jackson_7.wav") == (3, "jackson", 7)
    assert parse_fsdd_name("0_yweweler_49.wav") == (0, "yweweler", 49)
    assert parse_fsdd_name("12_jackson_7.wav") is None
    assert parse_fsdd_name("3_jackson.wav") is None
    assert parse_fsdd_name("3_jackson_7.flac") is None


def test_fit_length_centre_pads_with_zeros() -> None:
    padded = fit_length(torch.ones(4), 9)
    assert padded.tolist() == [0, 0, 1, 1, 1, 1, 0, 0, 0]


def test_fit_length_centre_crops() -> None:
    assert fit_length(torch.arange(10.0), 4).tolist() == [3, 4, 5, 6]


def test_real_fsdd_standard_split_sizes(real_root: Path) -> None:
    everything = FSDD(real_root, split="all")
    train = FSDD(real_root, split="train")
    test = FSDD(real_root, split="test")
    assert (len(everything), len(train), len(test)) == (3000, 2700, 300)
    assert set(test.takes) == set(range(5))
    assert min(train.takes) == 5
    assert set(train.files).isdisjoint(test.files)
    speakers = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
    assert sorted(set(test.speakers)) == speakers


def test_real_fsdd_labels_come_from_file_names(real_root: Path) -> None:
    test = FSDD(real_root, split="test")
    for index in (0, 137, 299):
        assert test[index]["label"].item() == int(test.files[index].name.split("_")[0])
    assert test[0]["label"].dtype == torch.int64
    assert torch.bincount(torch.tensor(test.labels)).tolist() == [30] * 10


def test_real_fsdd_log_mel_samples_collate(real_root: Path) -> None:
    test = FSDD(real_root, split="test")
    batch = collate([test[i] for i in (0, 1, 250)])
    assert batch["audio"].shape == (3, 40, 101)
    assert batch["audio"].dtype == torch.float32
    assert batch["label"].shape == (3,)


def test_real_fsdd_waveform_has_fixed_length(real_root: Path) -> None:
    test = FSDD(real_root, split="test", features="waveform", sample_rate=8000, duration=0.5)
    loader = DataLoader(test, batch_size=4)
    batch = next(iter(loader))
    assert batch["audio"].shape == (4, 4000)


def test_parent_folder_with_recordings_and_speakers_json(shared_data: Path) -> None:
    test = FSDD(shared_data / "fsdd", split="test")
    assert len(test) == 300
    assert test.speaker_info["jackson"]["accent"] == "USA/neutral"


def test_short_recording_is_centred_in_zero_padding(tmp_path: Path) -> None:
    write_wav(tmp_path / "4_ann_9.wav", torch.full((400,), 0.25), 8000)
    dataset = FSDD(tmp_path, split="train", features="waveform", sample_rate=8000, duration=0.1)
    wave = dataset[0]["audio"]
    assert wave.shape == (800,)
    assert wave[:200].abs().max() == 0 and wave[600:].abs().max() == 0
    torch.testing.assert_close(wave[200:600], torch.full((400,), 0.25), atol=1 / 32768, rtol=0)


def test_empty_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=rf"no FSDD recordings .* found in {tmp_path}"):
        FSDD(tmp_path)


def test_folder_without_matching_names_raises(tmp_path: Path) -> None:
    _recordings(tmp_path, ["hello.wav", "x_y_z.wav"])
    with pytest.raises(DataError, match="no FSDD recordings"):
        FSDD(tmp_path)


def test_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        FSDD(tmp_path / "nope")


def test_misnamed_wavs_are_skipped_with_a_counted_warning(tmp_path: Path) -> None:
    _recordings(tmp_path, ["1_ann_0.wav", "2_ann_7.wav", "bad.wav", "1-ann-3.wav"])
    (tmp_path / "README.md").write_text("not audio")
    with pytest.warns(UserWarning, match="skipped 2 .wav file"):
        dataset = FSDD(tmp_path, split="all")
    assert dataset.labels == [1, 2]
    assert dataset.skipped == ["1-ann-3.wav", "bad.wav"]


def test_split_without_recordings_raises(tmp_path: Path) -> None:
    _recordings(tmp_path, ["1_ann_7.wav"])
    with pytest.raises(DataError, match="no recordings in the 'test' split"):
        FSDD(tmp_path, split="test")


def test_corrupt_recording_raises_naming_it_on_access(tmp_path: Path) -> None:
    _recordings(tmp_path, ["1_ann_5.wav"])
    (tmp_path / "2_ann_6.wav").write_text("oops")
    dataset = FSDD(tmp_path, split="train")
    with pytest.raises(DataError, match=r"2_ann_6\.wav is not a readable WAV file"):
        dataset[1]


def test_preload_matches_lazy_reads(tmp_path: Path) -> None:
    _recordings(tmp_path, ["1_ann_5.wav", "7_bob_8.wav"])
    lazy = FSDD(tmp_path, split="train")
    eager = FSDD(tmp_path, split="train").preload(progress=False)
    for index in range(2):
        torch.testing.assert_close(eager[index]["audio"], lazy[index]["audio"])
    (tmp_path / "1_ann_5.wav").unlink()  # preloaded data no longer needs the file
    assert eager[0]["audio"].shape == (40, 101)


def test_speakers_json_is_read(tmp_path: Path) -> None:
    _recordings(tmp_path, ["1_ann_5.wav"])
    (tmp_path / "speakers.json").write_text(json.dumps({"ann": {"gender": "female"}}))
    assert FSDD(tmp_path).speaker_info == {"ann": {"gender": "female"}}


def test_bad_split_name_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="split must be"):
        FSDD(tmp_path, split="val")  # type: ignore[arg-type]


def test_recordings_of_their_own_length_collate_padded_along_time(tmp_path: Path) -> None:
    _recordings(tmp_path, ["1_a_0.wav"], seconds=0.25)
    _recordings(tmp_path, ["2_a_0.wav"], seconds=0.5)
    data = FSDD(tmp_path, "all", sample_rate=8000, features="waveform", duration=None)
    batch = collate([data[0], data[1]], variable=("audio",))
    assert batch["audio"].shape == (2, 4000)
    assert batch["audio_mask"].sum(dim=1).tolist() == [2000, 4000]
    assert batch["audio"][0, 2000:].abs().sum() == 0
    assert batch["label"].tolist() == [1, 2]
