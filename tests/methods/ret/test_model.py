import math

import pytest
import torch

from polymodal.errors import ConfigError, DataError
from polymodal.methods.ret.experiment import build_retriever, model_version
from polymodal.methods.ret.model import (
    BackboneTokens,
    PooledEncoder,
    ReTEncoder,
    contrastive_loss,
    late_interaction,
)


def features(b=3, k=6, length=5, has_text=None, has_image=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    padding = torch.zeros(b, length, dtype=torch.bool)
    padding[0, 3:] = True
    return BackboneTokens(
        torch.randn(b, k, length, 384, generator=g),
        padding,
        torch.randn(b, k, 17, 64, generator=g),
        torch.ones(b, dtype=torch.bool) if has_text is None else has_text,
        torch.ones(b, dtype=torch.bool) if has_image is None else has_image,
    )


def test_late_interaction_sums_each_query_tokens_best_match():
    query = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # (1, 2, 2)
    documents = torch.tensor(
        [
            [[1.0, 0.0], [0.6, 0.8]],  # token 1 matches 1.0, token 2 best 0.8
            [[0.0, -1.0], [-1.0, 0.0]],  # best matches 0.0 and 0.0... -> 0 + 0
        ]
    )
    torch.testing.assert_close(late_interaction(query, documents), torch.tensor([[1.8, 0.0]]))


def test_contrastive_loss_is_cross_entropy_over_in_batch_and_hard_negatives():
    q = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])  # (2, 1, 2)
    pos = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    hard = torch.tensor([[[0.0, 1.0]], [[1.0, 0.0]]])
    # query 0 scores: own 1, other positive 0, hard negatives 0 and 1 -> CE = log(e + 1 + 1 + e) - 1
    expected = math.log(2 * math.e + 2) - 1
    torch.testing.assert_close(contrastive_loss(q, pos, hard), torch.tensor(expected))


def test_ret_encoder_gives_32_unit_tokens_of_128_and_one_gate_set_per_layer():
    torch.manual_seed(0)
    encoder = ReTEncoder(384, 64, range(6))
    out = encoder(features())
    assert out.tokens.shape == (3, 32, 128)
    torch.testing.assert_close(out.tokens.norm(dim=-1), torch.ones(3, 32))
    assert len(out.gates) == 6


def test_ret_encoder_ignores_the_text_of_an_image_only_row():
    torch.manual_seed(0)
    encoder = ReTEncoder(384, 64, range(6)).eval()
    has_text = torch.tensor([True, False, True])
    a, b = features(has_text=has_text), features(has_text=has_text, seed=1)
    b = a._replace(text=torch.where(has_text[:, None, None, None], a.text, b.text))
    torch.testing.assert_close(encoder(a).tokens[1], encoder(b).tokens[1])
    assert not torch.allclose(
        encoder(a).tokens[1],
        encoder(a._replace(has_text=torch.ones(3, dtype=torch.bool))).tokens[1],
    )


def test_last_layer_encoder_reads_only_the_last_layer():
    torch.manual_seed(0)
    encoder = ReTEncoder(384, 64, [5]).eval()
    a = features()
    b = a._replace(text=a.text.clone(), visual=a.visual.clone())
    b.text[:, :5] = 0
    b.visual[:, :5] = 0
    torch.testing.assert_close(encoder(a).tokens, encoder(b).tokens)


def test_pooled_encoder_is_one_unit_vector():
    torch.manual_seed(0)
    out = PooledEncoder(384, 64)(features(has_image=torch.tensor([True, True, False])))
    assert out.tokens.shape == (3, 1, 128)
    torch.testing.assert_close(out.tokens.norm(dim=-1), torch.ones(3, 1))


def test_a_row_with_neither_modality_is_a_one_line_error():
    none = torch.tensor([True, False, True])
    with pytest.raises(DataError, match="neither text nor image"):
        ReTEncoder(384, 64, range(6))(features(has_text=none, has_image=none))


def test_unknown_variant_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown ReT variant"):
        build_retriever("colbert")


def test_model_version_changes_with_the_weights():
    a, b = build_retriever("pooled", seed=0), build_retriever("pooled", seed=0)
    assert model_version(a) == model_version(b)
    with torch.no_grad():
        next(b.parameters()).add_(1e-3)
    assert model_version(a) != model_version(b)
