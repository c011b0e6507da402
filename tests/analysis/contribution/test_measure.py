"""Modality contribution by occlusion on hand-built models with known answers."""

import pytest
import torch
from torch import Tensor, nn

from polymodal.analysis.contribution import (
    Chunks,
    Patches,
    Tiles,
    Whole,
    modality_contribution,
)
from polymodal.errors import DataError


class Linear(nn.Module):
    """logit = genes · w_g + audio · w_a (one output), or only one of the two terms."""

    def __init__(self, w_genes: list[float], w_audio: list[float]) -> None:
        super().__init__()
        self.w_genes = torch.tensor(w_genes)
        self.w_audio = torch.tensor(w_audio)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return (batch["genes"] @ self.w_genes + batch["audio"] @ self.w_audio)[:, None]


BATCH = {
    "genes": torch.tensor([[1.0, 2.0], [3.0, 0.0]]),
    "audio": torch.tensor([[1.0], [-3.0]]),
}
ENTRIES = {"genes": Chunks(size=1), "audio": Chunks(size=1)}


def test_a_model_that_reads_one_modality_gets_all_the_contribution():
    torch.manual_seed(0)
    batch = {"image": torch.randn(5, 1, 4, 4), "audio": torch.randn(5, 3, 8)}
    head = nn.Linear(16, 3)
    model = lambda b: head(b["image"].flatten(1))  # noqa: E731
    units = {"image": Patches(2), "audio": Chunks(count=4)}
    result = modality_contribution(model, batch, units, fill="mean")
    assert result.m == {"image": 1.0, "audio": 0.0}
    assert result.m_per_sample == {"image": 1.0, "audio": 0.0}
    assert result.scores["audio"].abs().sum() == 0


def test_linear_model_gives_the_hand_computed_split():
    # Zero fill, logits. d_genes = |1*1| + |-1*2| = 3 and |1*3| + 0 = 3 per sample;
    # d_audio = |2*1| = 2 and |2*-3| = 6. Pooled: 3 / (3 + 4) = 3/7. Per sample:
    # (3/5 + 3/9) / 2 = 7/15.
    model = Linear([1.0, -1.0], [2.0])
    result = modality_contribution(model, BATCH, ENTRIES, fill="zero", output="logits")
    assert result.m["genes"] == pytest.approx(3 / 7)
    assert result.m["audio"] == pytest.approx(4 / 7)
    assert result.m_per_sample["genes"] == pytest.approx(7 / 15)
    torch.testing.assert_close(result.scores["genes"], torch.tensor([[1.0, 2.0], [3.0, 0.0]]))
    torch.testing.assert_close(result.importance("genes"), torch.tensor([2.0, 1.0]))


def test_constant_fill_replaces_units_with_that_value():
    # Fill 1: d_genes = |1*0| + |-1*1| = 1 and |1*2| + |-1*-1| = 3 (mean 2);
    # d_audio = |2*0| = 0 and |2*-4| = 8 (mean 4). Pooled m_genes = 2 / 6.
    model = Linear([1.0, -1.0], [2.0])
    result = modality_contribution(model, BATCH, ENTRIES, fill=1.0, output="logits")
    assert result.m["genes"] == pytest.approx(1 / 3)


def test_mean_fill_uses_each_samples_own_mean():
    # Means 1.5 and 1.5: d_genes = 0.5 + 0.5 and 1.5 + 1.5; a one-entry modality
    # filled with its own mean never changes, so genes get everything.
    model = Linear([1.0, -1.0], [2.0])
    result = modality_contribution(model, BATCH, ENTRIES, fill="mean", output="logits")
    torch.testing.assert_close(result.scores["genes"], torch.tensor([[0.5, 0.5], [1.5, 1.5]]))
    assert result.m == {"genes": 1.0, "audio": 0.0}


def test_probabilities_are_compared_by_default():
    logits = {"genes": torch.tensor([[2.0, 0.0]]), "audio": torch.tensor([[0.0]])}
    model = lambda b: torch.cat([b["genes"][:, :1], b["genes"][:, 1:]], dim=1)  # noqa: E731
    result = modality_contribution(model, logits, {"genes": Whole(), "audio": Whole()}, "zero")
    p = torch.tensor([2.0, 0.0]).softmax(0)
    expected = (p - torch.tensor([0.5, 0.5])).abs().sum()  # zeros give a uniform softmax
    torch.testing.assert_close(result.scores["genes"], expected.view(1, 1))


def test_patch_heatmap_lights_up_only_the_patch_the_model_reads():
    image = torch.arange(16.0).view(1, 1, 4, 4) + 1
    model = lambda b: b["image"][:, :, :2, :2].sum(dim=(1, 2, 3))[:, None]  # noqa: E731
    result = modality_contribution(
        model, {"image": image}, {"image": Patches(2)}, fill="zero", output="logits"
    )
    # Top-left patch holds 1, 2, 5, 6.
    torch.testing.assert_close(result.importance_map("image"), torch.tensor([[14.0, 0], [0, 0]]))
    assert result.grids["image"] == (2, 2)


def test_decision_flips_count_units_that_change_the_prediction():
    batch = {"genes": torch.tensor([[3.0, 1.0], [1.0, 3.0]])}
    model = lambda b: b["genes"]  # class = argmax of the two entries  # noqa: E731
    result = modality_contribution(model, batch, {"genes": Chunks(size=1)}, fill="zero")
    assert result.flips["genes"].tolist() == [[True, False], [False, True]]
    assert result.flip_counts() == {"genes": 1.0}
    assert result.summary()["flips_total"] == {"genes": 2}


def test_padding_tiles_are_never_occluded_and_mean_skips_them():
    tiles = torch.ones(2, 3, 1, 2, 2)
    tiles[0, 1] = 3.0
    tiles[1, 2] = 0.0  # padding
    model = lambda b: b["tiles"].flatten(1).sum(dim=1, keepdim=True)  # noqa: E731
    result = modality_contribution(
        model, {"tiles": tiles}, {"tiles": Tiles()}, fill="mean", output="logits"
    )
    assert result.valid["tiles"].tolist() == [[True, True, True], [True, True, False]]
    # Sample 0: mean over real tiles 5/3; tile 1 moves the sum by 4 * (3 - 5/3).
    torch.testing.assert_close(result.scores["tiles"][0, 1], torch.tensor(16 / 3))
    assert result.scores["tiles"][1].tolist() == [0.0, 0.0, 0.0]  # all real tiles equal the mean


def test_batch_size_and_data_chunking_do_not_change_the_result():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(1 * 6 * 6 + 4 * 5, 4), nn.Tanh(), nn.Linear(4, 3))
    model = lambda b: net(torch.cat([b["image"].flatten(1), b["audio"].flatten(1)], 1))  # noqa: E731
    batch = {"image": torch.randn(7, 1, 6, 6), "audio": torch.randn(7, 4, 5)}
    units = {"image": Patches(3), "audio": Chunks(count=5)}
    whole = modality_contribution(model, batch, units, batch_size=1000)
    small = modality_contribution(model, batch, units, batch_size=3)
    pieces = [{k: v[:4] for k, v in batch.items()}, {k: v[4:] for k, v in batch.items()}]
    split = modality_contribution(model, pieces, units, batch_size=5)
    for other in (small, split):
        for name in units:
            torch.testing.assert_close(other.scores[name], whole.scores[name])
    assert sum(whole.m.values()) == pytest.approx(1.0)


def test_models_returning_an_output_object_are_read_through_logits():
    class Out:
        def __init__(self, logits: Tensor) -> None:
            self.logits = logits

    model = lambda b: Out(b["genes"])  # noqa: E731
    result = modality_contribution(model, {"genes": torch.tensor([[1.0, 0.0]])}, {"genes": Whole()})
    assert result.scores["genes"].item() > 0


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="modality 'text' is not in the data"):
        modality_contribution(lambda b: b["genes"], BATCH, {"text": Whole()})
    with pytest.raises(ValueError, match="needs a floating-point"):
        modality_contribution(
            lambda b: b["text_ids"].float(),
            {"text_ids": torch.ones(1, 3, dtype=torch.long)},
            {"text_ids": Chunks(size=1)},
        )


def test_nan_in_a_modality_is_named_instead_of_giving_m_zero():
    # One NaN made every occlusion difference of its sample NaN and pooled m silently 0.
    batch = {k: v.clone() for k, v in BATCH.items()}
    batch["audio"][1, 0] = float("nan")
    model = Linear([1.0, -1.0], [2.0])
    with pytest.raises(
        DataError, match=r"modality 'audio' contains NaN or Inf values \(first in sample 1"
    ):
        modality_contribution(model, batch, ENTRIES, fill="zero")
    loader = [BATCH, batch]  # the sample index counts across batches
    with pytest.raises(DataError, match="first in sample 3"):
        modality_contribution(model, loader, ENTRIES, fill="zero")
