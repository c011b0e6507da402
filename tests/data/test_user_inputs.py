import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from polymodal.data.real.wav import write_wav
from polymodal.data.user_inputs import read_inputs
from polymodal.errors import DataError

SHAPES = {"image": (1, 8, 8), "audio": (40, 11)}


def test_files_are_grouped_by_name_and_a_missing_modality_stays_missing(tmp_path):
    Image.fromarray(np.full((16, 4), 255, dtype=np.uint8)).save(tmp_path / "a.png")
    write_wav(tmp_path / "a.wav", torch.zeros(800), 16_000)
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / "b.png")
    (tmp_path / "readme.txt").write_text("ignored")

    names, samples, _ = read_inputs(tmp_path, SHAPES)

    assert names == ["a", "b"]
    assert set(samples[0]) == {"image", "audio"} and set(samples[1]) == {"image"}
    # resized to the model's 8 x 8 grey input, scaled to [0, 1]
    assert samples[0]["image"].shape == (1, 8, 8)
    torch.testing.assert_close(samples[0]["image"], torch.ones(1, 8, 8))
    torch.testing.assert_close(samples[1]["image"], torch.zeros(1, 8, 8))
    # 11 frames of a 160-sample hop = a 1,600-sample clip, zero-padded from 800
    assert samples[0]["audio"].shape == (40, 11)


def test_a_named_npy_array_feeds_any_modality(tmp_path):
    np.save(tmp_path / "case1.ct.npy", np.ones((4, 6, 6), dtype=np.float32))
    names, samples, _ = read_inputs(tmp_path, {"ct": (4, 6, 6)})
    assert names == ["case1"] and samples[0]["ct"].sum() == 144


def test_a_safetensors_file_gives_numbered_samples(tmp_path):
    save_file(
        {"image": torch.rand(3, 1, 8, 8), "other": torch.zeros(3)}, str(tmp_path / "x.safetensors")
    )
    names, samples, _ = read_inputs(tmp_path / "x.safetensors", SHAPES)
    assert names == ["0", "1", "2"] and set(samples[2]) == {"image"}


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda d: None, "no input for this model's modalities"),
        (lambda d: (d / "bad.png").write_bytes(b"not a png"), "bad.png is not a readable image"),
        (lambda d: np.save(d / "x.image.npy", np.zeros((1, 4, 4))), r"image has shape \(1, 4, 4\)"),
        (lambda d: np.save(d / "x.depth.npy", np.zeros((1, 8, 8))), "no modality 'depth'"),
        (lambda d: np.save(d / "x.image.npy", np.full((1, 8, 8), np.nan)), "NaN"),
    ],
)
def test_unusable_input_names_the_file_and_the_problem(tmp_path, write, message):
    write(tmp_path)
    with pytest.raises(DataError, match=message):
        read_inputs(tmp_path, SHAPES)


def test_a_missing_input_path_is_named(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_inputs(tmp_path / "nowhere", SHAPES)
