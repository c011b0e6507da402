import numpy as np
import pytest
import torch

from polymodal.train.predictions import Predictions, interleave_ranks


def test_correct_marks_argmax_hits():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.5]])
    predictions = Predictions(logits, torch.tensor([0, 0, 0]))
    np.testing.assert_array_equal(predictions.correct(), [1.0, 0.0, 1.0])


def test_save_load_round_trip_keeps_ids_and_index(tmp_path):
    original = Predictions(torch.randn(4, 3), torch.tensor([0, 2, 1, 0]), torch.arange(4) + 10)
    original.save(tmp_path / "p.safetensors")
    loaded = Predictions.load(tmp_path / "p.safetensors")
    torch.testing.assert_close(loaded.logits, original.logits)
    assert loaded.ids.tolist() == [10, 11, 12, 13] and loaded.index is None


def test_concat_then_sort_restores_pooled_order():
    a = Predictions(torch.eye(2), torch.tensor([0, 1]), torch.tensor([7, 9]), torch.tensor([3, 0]))
    b = Predictions(torch.eye(2), torch.tensor([1, 0]), torch.tensor([8, 6]), torch.tensor([1, 2]))
    pooled = Predictions.concat([a, b]).sorted_by_index()
    assert pooled.index.tolist() == [0, 1, 2, 3]
    assert pooled.ids.tolist() == [9, 8, 6, 7]
    assert pooled.labels.tolist() == [1, 1, 0, 0]


def test_shapes_are_checked():
    with pytest.raises(ValueError, match=r"labels \(N,\)"):
        Predictions(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))


def test_interleave_ranks_undoes_a_distributed_sampler_split():
    # 5 items over 2 ranks, padded to 6 with item 0: rank 0 saw 0, 2, 4; rank 1 saw 1, 3, 0.
    gathered = torch.tensor([[0, 2, 4], [1, 3, 0]])
    assert interleave_ranks(gathered, 5).tolist() == [0, 1, 2, 3, 4]
