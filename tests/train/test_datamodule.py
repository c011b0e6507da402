"""Tests of the data module's labelled/unlabelled split and its two training streams."""

import pytest
import torch

from polymodal.data.dataset import TensorDictDataset
from polymodal.errors import DataError
from polymodal.train.config import DataConfig
from polymodal.train.datamodule import MultimodalDataModule, labelled_indices

FLAGS = torch.tensor([True, False, True, False, False, False, False])


def _data(flags: torch.Tensor | None = FLAGS) -> TensorDictDataset:
    n = 7
    tensors = {"image": torch.arange(float(n)).view(n, 1, 1, 1), "label": torch.zeros(n).long()}
    if flags is not None:
        tensors["label_mask"] = flags
    return TensorDictDataset(tensors)


def test_labelled_indices_follow_label_mask() -> None:
    assert labelled_indices(_data()) == ([0, 2], [1, 3, 4, 5, 6])


def test_samples_without_label_mask_count_as_labelled() -> None:
    samples = [{"label_mask": torch.tensor(False)}, {}, {"label_mask": torch.tensor(True)}]
    assert labelled_indices(samples) == ([1, 2], [0])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("flags", "counts"),
    [(None, "has 7 and 0"), (torch.zeros(7, dtype=torch.bool), "has 0 and 7")],
)
def test_one_empty_side_is_a_data_error(flags: torch.Tensor | None, counts: str) -> None:
    with pytest.raises(DataError, match=counts):
        labelled_indices(_data(flags))


def test_streams_pair_a_labelled_and_an_unlabelled_batch_until_the_longer_ends() -> None:
    module = MultimodalDataModule(DataConfig(name="unused", batch_size=2), seed=0, streams=True)
    module.datasets["train"] = _data()
    loader = module.train_dataloader()
    iter(loader)
    steps = [batch for batch, _, _ in loader]
    assert len(steps) == 3  # 5 unlabelled samples in batches of 2; the labelled 2 cycle
    labelled = {int(v) for step in steps for v in step["labelled"]["image"].flatten()}
    unlabelled = [int(v) for step in steps for v in step["unlabelled"]["image"].flatten()]
    assert labelled == {0, 2}
    assert sorted(unlabelled) == [1, 3, 4, 5, 6]
