from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from polymodal.data.real.agd20k import load_agd20k, load_agd20k_split
from polymodal.errors import ConfigError, DataError


def _image(path: Path, value: int, size=(8, 12)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), value, dtype=np.uint8)).save(path)


def _map16(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint16)).save(path)


@pytest.fixture
def agd(tmp_path: Path) -> Path:
    """2 affordances; 3 ego + 2 exo training images; 4 test images with GT and depth."""
    root = tmp_path / "Seen"
    for i, (aff, obj) in enumerate([("cut", "knife"), ("hold", "cup"), ("hold", "knife")]):
        _image(root / f"trainset/egocentric/{aff}/{obj}/e{i}.jpg", 10 * i)
        _map16(root / f"trainset/depth/{aff}/{obj}/e{i}.png", np.full((8, 12), 1000 * i))
    for i, aff in enumerate(["cut", "hold"]):
        _image(root / f"trainset/exocentric/{aff}/knife/x{i}.jpg", 200 + i)
        np.save(_mkdir(root / f"trainset/exo_depth/{aff}/knife") / f"x{i}.npy", np.ones((8, 12)))
    for i in range(4):
        aff = ("cut", "hold")[i % 2]
        _image(root / f"testset/egocentric/{aff}/knife/t{i}.jpg", 50)
        gt = np.zeros((8, 12), dtype=np.uint8)
        gt[2:4, 3:6] = 255
        _mkdir(root / f"testset/GT/{aff}/knife")
        Image.fromarray(gt).save(root / f"testset/GT/{aff}/knife/t{i}.png")
        _map16(root / f"testset/depth/{aff}/knife/t{i}.png", np.full((8, 12), 65535))
    return root


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_training_pairs_each_egocentric_image_with_an_exocentric_one(agd):
    train = load_agd20k_split(agd, "train", size=16)
    assert train.affordances == ("cut", "hold")
    assert len(train) == 3
    sample = train[2]  # hold/knife: the second "hold" image cycles back to the one exo image
    assert sample["image"].shape == (3, 16, 16) and sample["exo_depth"].shape == (1, 16, 16)
    assert sample["label"].item() == 1
    torch.testing.assert_close(train.tensors["label"], torch.tensor([0, 1, 1]))
    torch.testing.assert_close(train[1]["exo_image"], train[2]["exo_image"])
    assert "heatmap" not in sample
    # 16-bit PNG depth is scaled by 65535
    assert train[2]["depth"].mean().item() == pytest.approx(2000 / 65535, rel=1e-4)


def test_validation_and_test_split_the_test_images_without_overlap(agd):
    val = load_agd20k_split(agd, "val", size=16, val_every=2)
    test = load_agd20k_split(agd, "test", size=16, val_every=2)
    assert len(val) == 2 and len(test) == 2
    heat = test[0]["heatmap"]
    assert heat.shape == (16, 16) and heat.max() == pytest.approx(1.0) and heat.min() == 0
    assert test[0]["depth"].mean().item() == pytest.approx(1.0)


def test_without_depth_only_images_are_read(agd):
    sample = load_agd20k_split(agd, "test", size=16, depth=False, val_every=2)[0]
    assert set(sample) == {"image", "heatmap", "label"}


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: np.save(_depth_npy(r), np.full((8, 12), np.nan)), "NaN"),
        (
            lambda r: np.save(_depth_npy(r), np.ones((4, 4))),
            r"has shape \(4, 4\), but its image is \(8, 12\)",
        ),
        (
            lambda r: Image.fromarray(np.zeros((8, 12), np.uint8)).save(
                r / "testset/GT/cut/knife/t0.png"
            ),
            "sums to 0",
        ),
        (lambda r: (r / "testset/GT/cut/knife/t0.png").unlink(), "no ground-truth map"),
    ],
)
def test_bad_files_are_one_line_data_errors(agd, damage, message):
    damage(agd)
    with pytest.raises(DataError, match=message) as info:
        load_agd20k_split(agd, "test", size=16, val_every=2)
    assert "\n" not in str(info.value)


def _depth_npy(root: Path) -> Path:
    (root / "testset/depth/cut/knife/t0.png").unlink()
    return root / "testset/depth/cut/knife/t0.npy"


def test_missing_folders_and_options_are_named(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_agd20k_split(tmp_path, "train")
    with pytest.raises(ConfigError, match="needs data.options.root"):
        load_agd20k("train")
    with pytest.raises(ConfigError, match="splits are"):
        load_agd20k_split(tmp_path, "dev")
