import pytest
import torch

from polymodal.errors import ConfigError
from polymodal.methods.ret.backbones import FeatureBank
from polymodal.methods.ret.experiment import retrieval_metrics, target_ranks, without
from polymodal.methods.ret.model import BackboneTokens


def test_retrieval_metrics_match_hand_worked_ranks():
    # Targets rank 1, 3 and 7 among 8 documents.
    scores = torch.tensor(
        [
            [9.0, 1, 1, 1, 1, 1, 1, 1],
            [5.0, 4, 3, 2, 1, 0, -1, -2],
            [7.0, 6, 5, 4, 3, 2, 1, 0],
        ]
    )
    target = torch.tensor([0, 2, 6])
    assert target_ranks(scores, target).tolist() == [1, 3, 7]
    out = retrieval_metrics(scores, target)
    assert out["recall@1"] == pytest.approx(1 / 3)
    assert out["recall@5"] == pytest.approx(2 / 3)
    assert out["recall@10"] == pytest.approx(1.0)
    assert out["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 7) / 3)


def test_ties_count_against_the_target():
    assert target_ranks(torch.tensor([[1.0, 1.0, 0.0]]), torch.tensor([1])).tolist() == [2]


def features():
    return BackboneTokens(
        torch.zeros(3, 1, 2, 4),
        torch.zeros(3, 2, dtype=torch.bool),
        torch.zeros(3, 1, 5, 4),
        torch.tensor([True, True, False]),
        torch.tensor([True, False, True]),
    )


def test_dropping_the_image_keeps_image_only_rows():
    out = without(features(), "image")
    assert out.has_image.tolist() == [False, False, True]
    assert out.has_text.tolist() == [True, True, False]


def test_dropping_the_text_keeps_text_only_rows():
    out = without(features(), "text")
    assert out.has_text.tolist() == [False, True, False]


def test_unknown_drop_is_a_config_error():
    with pytest.raises(ConfigError, match="drop must be"):
        without(features(), "audio")


def test_feature_bank_gathers_ragged_texts_with_padding():
    k, width = 2, 3
    text = torch.arange(5 * k * width, dtype=torch.float16).reshape(5, k, width)
    bank = FeatureBank(
        visual=torch.zeros(3, k, 4, 2, dtype=torch.float16),
        text=text,
        offsets=torch.tensor([0, 2, 2, 5]),  # rows of 2, 0 and 3 tokens
        has_text=torch.tensor([True, False, True]),
        has_image=torch.tensor([True, True, False]),
    )
    out = bank.gather(torch.tensor([2, 0, 1]))
    assert out.text.shape == (3, k, 3, width)
    torch.testing.assert_close(out.text[0], text[2:5].transpose(0, 1).float())
    torch.testing.assert_close(out.text[1, :, :2], text[0:2].transpose(0, 1).float())
    assert out.text_padding.tolist() == [[False] * 3, [False, False, True], [False, True, True]]
    assert out.has_text.tolist() == [True, True, False]
