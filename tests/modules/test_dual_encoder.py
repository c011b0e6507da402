"""Tests of the dual encoder: towers over present modalities, unit embeddings, config checks."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from polymodal.errors import ConfigError, DataError
from polymodal.modules.dual_encoder import DualEncoder, build_dual_encoder

MODALITIES = {
    "image": {"encoder": "mlp", "shape": [4], "hidden": [6]},
    "audio": {"encoder": "mlp", "shape": [3], "hidden": [6]},
    "text_ids": {"encoder": "text", "shape": [6], "depth": 1, "num_heads": 2},
}


def _model() -> DualEncoder:
    torch.manual_seed(0)
    return build_dual_encoder(
        "none", MODALITIES, query=["image", "audio"], document=["text_ids"], dim=8, embed_dim=5
    ).eval()


def _batch() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return {
        "image": torch.randn(2, 4),
        "audio": torch.randn(2, 3),
        "text_ids": torch.tensor([[5, 6, 7, 0], [9, 3, 0, 0]]),
    }


def test_sample_missing_a_modality_is_embedded_from_the_others() -> None:
    model, batch = _model(), _batch()
    batch["image_mask"] = torch.tensor([True, False])
    batch["image"][1] = 1e3  # the content of a missing modality is never read
    query = model(batch).query
    audio_only = model.query({"audio": batch["audio"][1:]})
    assert_close(query[1:], audio_only)
    # the present sample averages both pooled modalities before the projection
    tower = model.query
    pooled = [tower.encoders[m](batch[m][:1]).mean(dim=1) for m in ("image", "audio")]
    assert_close(query[:1], F.normalize(tower.project((pooled[0] + pooled[1]) / 2), dim=-1))


def test_text_padding_does_not_change_the_document_embedding() -> None:
    model = _model()
    padded = model.document({"text_ids": torch.tensor([[5, 6, 7, 0, 0, 0]])})
    plain = model.document({"text_ids": torch.tensor([[5, 6, 7]])})
    assert_close(padded, plain, atol=1e-6, rtol=1e-5)


def test_embeddings_are_unit_length_and_scale_starts_at_one_over_temperature() -> None:
    out = _model()(_batch())
    assert out.query.shape == out.document.shape == (2, 5)
    assert_close(out.query.norm(dim=-1), torch.ones(2))
    assert_close(out.document.norm(dim=-1), torch.ones(2))
    assert_close(out.logit_scale, torch.tensor(1 / 0.07))


def test_logit_scale_is_capped_at_one_hundred() -> None:
    model = _model()
    with torch.no_grad():
        model.log_scale.fill_(math.log(1000.0))
    assert_close(model(_batch()).logit_scale, torch.tensor(100.0), atol=0, rtol=1e-4)


def test_sample_with_none_of_its_side_present_is_a_data_error() -> None:
    batch = _batch()
    batch["image_mask"] = torch.tensor([True, False])
    batch["audio_mask"] = torch.tensor([True, False])
    with pytest.raises(DataError, match="a sample has none of"):
        _model()(batch)


@pytest.mark.parametrize(
    ("query", "document", "message"),
    [
        ([], ["text_ids"], "needs model.options.query and model.options.document"),
        (["image"], [], "needs model.options.query and model.options.document"),
        (["image", "audio"], ["audio", "text_ids"], r"\['audio'\] are on both"),
        (["image"], ["speech"], r"has no \['speech'\]"),
    ],
)
def test_build_rejects_missing_overlapping_or_unknown_sides(
    query: list[str], document: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build_dual_encoder("none", MODALITIES, query=query, document=document)
