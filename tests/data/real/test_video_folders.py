"""Clip folders decoded with PyAV: tiny videos written by the test itself."""

from pathlib import Path

import pytest
import torch

from polymodal.data.real.video_folders import load_video_folders, read_clip
from polymodal.errors import DataError

pytest.importorskip("av")


def test_read_clip_samples_frames_evenly_and_reads_the_audio_track(tmp_path, write_clip) -> None:
    write_clip(tmp_path / "a.mp4", frames=10)
    clip = read_clip(tmp_path / "a.mp4", frames=4, size=8)
    assert clip["video"].shape == (4, 1, 8, 8) and clip["audio"].shape == (40, 101)
    # Frames 0, 3, 6, 9 of 10: the bright column moves right at 3 px a frame (1.5 at 8 px).
    columns = clip["video"][:, 0].mean(dim=1).argmax(dim=1)
    assert columns.tolist() == sorted(columns.tolist()) and columns[-1] >= 4
    # A 440 Hz tone: away from the clip's edges the loudest mel band is one low band.
    loudest = clip["audio"][:, 5:-5].argmax(dim=0)
    assert (loudest == loudest[0]).all() and loudest[0] < 20


def test_a_wav_beside_the_clip_replaces_its_track(tmp_path, write_clip) -> None:
    from polymodal.data.real.wav import write_wav

    write_clip(tmp_path / "b.mp4", sound=False)
    write_wav(tmp_path / "b.wav", torch.zeros(8000), 16000)
    clip = read_clip(tmp_path / "b.mp4", frames=4, size=8)
    assert clip["audio"].max() < -20  # silence, floored log-mel


def test_a_clip_without_sound_is_a_one_line_error(tmp_path, write_clip) -> None:
    write_clip(tmp_path / "mute.mp4", sound=False)
    with pytest.raises(DataError, match=r"^mute.mp4 has no audio track and no mute.wav") as error:
        read_clip(tmp_path / "mute.mp4")
    assert "\n" not in str(error.value)


def test_a_clip_shorter_than_t_frames_is_a_one_line_error(tmp_path, write_clip) -> None:
    write_clip(tmp_path / "short.mp4", frames=3)
    with pytest.raises(DataError, match=r"^short.mp4 has 3 frames, fewer than the 8") as error:
        read_clip(tmp_path / "short.mp4", frames=8)
    assert "\n" not in str(error.value)


def _folder(write_clip, root: Path, names: dict[str, str], extra: str = "") -> Path:
    root.mkdir()
    for name in names:
        write_clip(root / name)
    rows = "".join(f"{n},{c}\n" for n, c in names.items())
    (root / "labels.csv").write_text("clip,label\n" + rows + extra)
    return root


def test_a_label_file_naming_a_missing_clip_is_a_one_line_error(tmp_path, write_clip) -> None:
    folder = _folder(write_clip, tmp_path / "lab", {"a.mp4": "dog"}, extra="gone.mp4,cat\n")
    with pytest.raises(DataError, match=r"names 'gone.mp4', which is not in") as error:
        load_video_folders("train", labelled=str(folder))
    assert "\n" not in str(error.value)


def test_labelled_and_unlabelled_folders_make_one_training_split(tmp_path, write_clip) -> None:
    labelled = _folder(write_clip, tmp_path / "lab", {"a.mp4": "dog", "b.mp4": "cat"})
    unlabelled = tmp_path / "unlab"
    unlabelled.mkdir()
    write_clip(unlabelled / "c.mp4")
    train = load_video_folders(
        "train", labelled=str(labelled), unlabelled=str(unlabelled), frames=4, size=8
    )
    assert train.classes == ["cat", "dog"] and train.num_classes == 2
    assert train.tensors["label"][:2].tolist() == [1, 0]  # a.mp4 dog, b.mp4 cat
    assert train.tensors["label_mask"].tolist() == [True, True, False]
    assert train.tensors["video"].shape == (3, 4, 1, 8, 8)
