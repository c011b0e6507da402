from __future__ import annotations

from pathlib import Path

import pytest
import torch

from polymodal.data.contract import collate
from polymodal.data.real.av_mnist import AVMNIST, mnist_pools, pca_reduce
from polymodal.data.real.mnist import load_mnist, write_idx
from polymodal.data.real.wav import write_wav
from polymodal.errors import DataError


@pytest.fixture(scope="module")
def roots(shared_data: Path) -> tuple[Path, Path]:
    return shared_data / "mnist-t10k", shared_data / "fsdd" / "recordings"


@pytest.fixture(scope="module")
def train(roots: tuple[Path, Path]) -> AVMNIST:
    return AVMNIST(*roots, split="train", seed=0)


@pytest.fixture(scope="module")
def test(roots: tuple[Path, Path]) -> AVMNIST:
    return AVMNIST(*roots, split="test", pairs_per_recording=2, seed=0)


def _tiny_sources(folder: Path, image_labels: list[int], names: list[str]) -> tuple[Path, Path]:
    """A fake MNIST t10k pair (image value = its index) and FSDD folder."""
    mnist, fsdd = folder / "mnist", folder / "fsdd"
    mnist.mkdir()
    fsdd.mkdir()
    n = len(image_labels)
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1).expand(n, 28, 28).contiguous()
    write_idx(mnist / "t10k-images-idx3-ubyte", images)
    write_idx(mnist / "t10k-labels-idx1-ubyte", torch.tensor(image_labels, dtype=torch.uint8))
    for name in names:
        write_wav(fsdd / name, torch.zeros(800), 8000)
    return mnist, fsdd


def test_sizes_follow_recordings_times_pairs(train: AVMNIST, test: AVMNIST) -> None:
    assert len(train) == 2700
    assert len(test) == 600
    assert torch.bincount(test.recording_index).tolist() == [2] * 300


def test_image_and_audio_labels_always_agree(
    roots: tuple[Path, Path], train: AVMNIST, test: AVMNIST
) -> None:
    _, mnist_labels = load_mnist(roots[0])
    for dataset in (train, test):
        audio_labels = torch.tensor(dataset.audio.labels)[dataset.recording_index]
        assert torch.equal(mnist_labels[dataset.image_index], audio_labels)
        for index in (0, len(dataset) // 2, len(dataset) - 1):
            name = dataset.audio.files[int(dataset.recording_index[index])].name
            assert dataset[index]["label"].item() == int(name.split("_")[0])


def test_train_and_test_share_no_recording_and_no_image(train: AVMNIST, test: AVMNIST) -> None:
    assert set(train.audio.files).isdisjoint(test.audio.files)
    assert set(train.image_index.tolist()).isdisjoint(test.image_index.tolist())


def test_train_and_test_stay_disjoint_across_pairing_seeds(roots: tuple[Path, Path]) -> None:
    other = AVMNIST(*roots, split="test", seed=5)
    train = AVMNIST(*roots, split="train", seed=11)
    assert set(train.image_index.tolist()).isdisjoint(other.image_index.tolist())


def test_pairing_is_deterministic_in_the_seed(roots: tuple[Path, Path], test: AVMNIST) -> None:
    again = AVMNIST(*roots, split="test", pairs_per_recording=2, seed=0)
    other = AVMNIST(*roots, split="test", pairs_per_recording=2, seed=1)
    assert torch.equal(again.image_index, test.image_index)
    assert not torch.equal(other.image_index, test.image_index)


def test_each_recording_gets_distinct_images_while_the_pool_lasts(test: AVMNIST) -> None:
    # 60 test pairs per digit, about 200 test-pool images per digit: no repeats.
    assert test.image_index.unique().numel() == len(test)


def test_samples_follow_the_contract(test: AVMNIST) -> None:
    batch = collate([test[i] for i in range(3)])
    assert batch["image"].shape == (3, 1, 28, 28) and batch["image"].dtype == torch.float32
    assert batch["image"].min() >= 0.0 and batch["image"].max() <= 1.0
    assert batch["audio"].shape == (3, 40, 101)
    assert batch["label"].dtype == torch.int64


def test_mnist_pools_are_disjoint_stratified_80_20() -> None:
    labels = torch.arange(100) % 4  # 25 images per class
    pools = mnist_pools(labels, test_fraction=0.2, seed=0)
    assert set(pools["train"].tolist()).isdisjoint(pools["test"].tolist())
    assert len(pools["train"]) + len(pools["test"]) == 100
    assert torch.bincount(labels[pools["test"]]).tolist() == [5, 5, 5, 5]


def test_images_repeat_only_after_the_pool_is_used_up(tmp_path: Path) -> None:
    mnist, fsdd = _tiny_sources(tmp_path, [3, 3, 3], ["3_ann_5.wav", "3_ann_6.wav"])
    pairs = AVMNIST(mnist, fsdd, split="train", pairs_per_recording=2, mnist_split="t10k")
    counts = torch.bincount(pairs.image_index, minlength=3)
    assert sorted(counts.tolist()) == [1, 1, 2]
    # The stored image really is the indexed one (pixel value = MNIST index).
    for index in range(len(pairs)):
        pixel = pairs[index]["image"][0, 0, 0] * 255
        assert round(pixel.item()) == int(pairs.image_index[index])


def test_digit_without_pool_images_raises(tmp_path: Path) -> None:
    mnist, fsdd = _tiny_sources(tmp_path, [1, 1], ["1_ann_5.wav", "2_ann_5.wav"])
    with pytest.raises(DataError, match="no MNIST image of digit 2"):
        AVMNIST(mnist, fsdd, split="train", mnist_split="t10k")


def test_pca_reduce_keeps_the_fewest_components_reaching_the_energy():
    # Centred data on two orthogonal axes with variances 9 : 1 (energy 0.9 : 0.1).
    fit = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 1.0], [0.0, -1.0]]).view(4, 1, 2)
    images = torch.tensor([[2.0, 0.5]]).view(1, 1, 2)
    # 0.9 of the energy is on the first axis: one component, the second coordinate drops
    torch.testing.assert_close(pca_reduce(fit, images, 0.5), torch.tensor([[[2.0, 0.0]]]))
    # all of it needs both components: the image comes back unchanged
    torch.testing.assert_close(pca_reduce(fit, images, 1.0), images)
    with pytest.raises(DataError, match="image_energy"):
        pca_reduce(fit, images, 0.0)


def test_image_energy_blurs_images_with_a_basis_from_the_train_pool(roots):
    full = AVMNIST(*roots, split="test", seed=0)
    reduced = AVMNIST(*roots, split="test", seed=0, image_energy=0.25)
    assert torch.equal(full.labels, reduced.labels)
    error = (full.images - reduced.images).pow(2).mean() / full.images.var()
    assert 0.3 < float(error) < 0.9  # most of the per-image detail is gone
