"""The ``ret_features`` dataset: triples of cached frozen features that the platform's
collate batches and :class:`Retriever` reads."""

import pytest
import torch

from polymodal.data.contract import collate
from polymodal.errors import ConfigError
from polymodal.methods.ret.backbones import FeatureBank
from polymodal.methods.ret.data import SplitBanks, TripleDataset, source_of
from polymodal.methods.ret.experiment import build_retriever

K, TEXT, VISUAL = 6, 384, 64


def bank(n, lengths, has_image, seed):
    g = torch.Generator().manual_seed(seed)
    offsets = torch.zeros(n + 1, dtype=torch.int64)
    offsets[1:] = torch.tensor(lengths).cumsum(0)
    return FeatureBank(
        visual=torch.randn(n, K, 17, VISUAL, generator=g).half(),
        text=torch.randn(int(offsets[-1]), K, TEXT, generator=g).half(),
        offsets=offsets,
        has_text=torch.tensor([length > 0 for length in lengths]),
        has_image=torch.tensor(has_image),
    )


@pytest.fixture
def banks():
    documents = bank(4, [3, 0, 2, 4], [True, True, False, True], seed=0)
    queries = bank(3, [2, 5, 0], [True, False, True], seed=1)
    return SplitBanks(
        documents,
        queries,
        target=torch.tensor([0, 2, 3]),
        hard_negative=torch.tensor([1, 3, 2]),
        kind=torch.tensor([0, 1, 2]),
    )


def test_sample_holds_each_side_and_the_document_ids(banks):
    sample = TripleDataset(banks)[1]
    assert sample["query_text_layers"].shape == (K, 5, TEXT)
    assert sample["query_visual_layers_mask"].item() is False  # query 1 has no image
    assert sample["document_text_layers"].shape == (K, 2, TEXT)  # document 2
    assert sample["document_visual_layers_mask"].item() is False
    assert sample["negative_text_layers"].shape == (K, 4, TEXT)  # document 3
    assert "negative_visual_layers_mask" not in sample
    assert sample["document_id"].item() == 2 and sample["negative_id"].item() == 3
    torch.testing.assert_close(
        sample["query_text_layers"], banks.queries.text[2:7].transpose(0, 1).float()
    )


def test_a_row_without_text_is_one_masked_zero_token(banks):
    sample = TripleDataset(banks)[2]
    assert sample["query_text_layers"].shape == (K, 1, TEXT)
    assert sample["query_text_layers_mask"].tolist() == [False]


def test_retriever_on_a_collated_batch_equals_its_encoders_on_the_bank(banks):
    model = build_retriever("ret").eval()
    batch = collate([TripleDataset(banks)[i] for i in range(3)])
    assert batch["query_text_layers_mask"].tolist() == [
        [True, True, False, False, False],
        [True, True, True, True, True],
        [False] * 5,
    ]
    with torch.no_grad():
        out = model(batch)
        query = model.query(banks.queries.gather(torch.arange(3))).tokens
        negative = model.document(banks.documents.gather(banks.hard_negative)).tokens
    torch.testing.assert_close(out.query, query, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out.hard_negative, negative, atol=1e-5, rtol=1e-4)
    assert out.document.shape == (3, 32, 128)


def test_unknown_dataset_option_is_a_config_error():
    with pytest.raises(ConfigError, match="ret_features has no options \\['shape'\\]"):
        source_of({"shape": {}})
    with pytest.raises(ConfigError, match="vision must be one of"):
        source_of({"vision": "resnet"})
