import pytest
import torch
import torch.nn.functional as F

from polymodal.errors import DataError
from polymodal.methods.ret.index import IndexSettings, TokenIndex, exact_search
from polymodal.methods.ret.shards import ShardedIndex

pytest.importorskip("faiss")

# Every list visited and every token fetched: each shard returns its exact top k.
EXHAUSTIVE = IndexSettings(lists=4, subquantizers=4, nprobe=4, probe=600, train_size=2000)


def test_merged_shards_return_the_exact_top_k_of_the_whole_collection():
    g = torch.Generator().manual_seed(0)
    documents = F.normalize(torch.randn(300, 4, 16, generator=g), dim=-1)
    queries = F.normalize(torch.randn(6, 4, 16, generator=g), dim=-1)
    parts = documents[:120], documents[120:200], documents[200:]
    sharded = ShardedIndex([TokenIndex.build(part, "v1", EXHAUSTIVE) for part in parts])
    assert len(sharded) == 300
    scores, rows = sharded.search(queries, k=7)
    exact_scores, exact_rows = exact_search(queries, documents, k=7)
    assert rows.tolist() == exact_rows.tolist()
    torch.testing.assert_close(scores, exact_scores, atol=3e-3, rtol=0)  # float16 tokens


def test_shards_of_different_model_versions_are_refused():
    documents = F.normalize(torch.randn(200, 4, 16), dim=-1)
    shards = [TokenIndex.build(documents, v, EXHAUSTIVE) for v in ("v1", "v2")]
    with pytest.raises(DataError, match=r"one model version, got \['v1', 'v2'\]"):
        ShardedIndex(shards)
