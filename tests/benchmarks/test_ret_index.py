"""The index benchmark's own logic on synthetic token sets (the script is not a module)."""

import argparse
import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from polymodal.errors import DataError

pytest.importorskip("faiss")

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "ret_index.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("ret_index_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_encodings_of_another_model_version_are_refused(bench, tmp_path):
    path = tmp_path / "encoded.pt"
    made = bench.stamped(path, "aaaa", lambda: {"documents": torch.ones(2, 3)})
    assert made["model_version"] == "aaaa"
    again = bench.stamped(path, "aaaa", lambda: pytest.fail("encoded twice"))
    torch.testing.assert_close(again["documents"], torch.ones(2, 3))
    with pytest.raises(DataError, match="encoded by model version aaaa.*model is bbbb") as err:
        bench.stamped(path, "bbbb", lambda: {"documents": torch.zeros(2, 3)})
    assert "\n" not in str(err.value)


def test_lists_follow_four_times_the_root_of_the_token_count(bench):
    assert bench.lists_for(640_000) == 2048  # 4·800 = 3,200
    assert bench.lists_for(3_200_000) == 4096  # 4·1,789 = 7,155, capped
    assert bench.lists_for(1_600) == 128


def test_measure_compares_the_tuned_index_with_exact_scoring(bench):
    g = torch.Generator().manual_seed(0)
    documents = F.normalize(torch.randn(400, 4, 16, generator=g), dim=-1)
    target = torch.arange(0, 120, 3)  # 40 queries, each a noisy copy of its target
    noise = 0.1 * torch.randn(len(target), 4, 16, generator=g)
    enc = {"queries": F.normalize(documents[target] + noise, dim=-1), "target": target}
    args = argparse.Namespace(
        val_queries=10, timed_exact=5, pq=[4, 8], nprobe=[1, 16], probe=[8], rerank=[0, 4]
    )
    row = bench.measure(documents.half(), enc, "v1", args, mixed=300)
    assert row["test queries"] == 30
    assert row["recall@5 exact"] == 1.0
    assert len(row["settings tried (validation)"]) == 2 * 2 * 1 * 2
    tried = [bench.Trial(**t) for t in row["settings tried (validation)"]]
    assert row["chosen on validation"] == vars(bench.choose(tried, 0.98)) | {"lists": 41}
    # The exact top 5 beyond the target are near ties among random documents: the index
    # need not return them all, but it must find every target.
    assert row["recall@5 index"] == 1.0
    assert row["recall@5 index - exact (points, 95% interval)"] == [0.0, 0.0, 0.0]
    assert row["recall target met"]
    assert row["image-only documents in the exact top 5 (share)"] == pytest.approx(
        float((bench.exact_search(enc["queries"][10:], documents, 5)[1] >= 300).float().mean()),
        abs=1e-4,
    )
