import pytest
import torch
import torch.nn.functional as F

from polymodal.errors import DataError
from polymodal.methods.ret.index import IndexSettings, TokenIndex, exact_search, load_index

pytest.importorskip("faiss")

N, P, E = 400, 4, 16
SETTINGS = IndexSettings(lists=8, subquantizers=4, nprobe=8, probe=32, train_size=2000)


def collection():
    g = torch.Generator().manual_seed(0)
    documents = F.normalize(torch.randn(N, P, E, generator=g), dim=-1)
    # Each query is a noisy copy of document 3 i's tokens: its answer is known.
    rows = torch.arange(0, 60, 3)
    noise = 0.1 * torch.randn(len(rows), P, E, generator=g)
    queries = F.normalize(documents[rows] + noise, dim=-1)
    return documents, queries, rows


def test_exact_search_ranks_by_late_interaction():
    documents = torch.tensor([[[1.0, 0.0]], [[0.6, 0.8]], [[0.0, 1.0]]])
    query = torch.tensor([[[0.0, 1.0]]])
    scores, rows = exact_search(query, documents, k=2)
    assert rows.tolist() == [[2, 1]]
    torch.testing.assert_close(scores, torch.tensor([[1.0, 0.8]]))


def test_index_finds_what_the_exact_scorer_finds():
    documents, queries, rows = collection()
    index = TokenIndex.build(documents, "v1", SETTINGS)
    scores, found = index.search(queries, k=5)
    _, exact = exact_search(queries, documents, k=5)
    assert found[:, 0].tolist() == rows.tolist()
    assert exact[:, 0].tolist() == rows.tolist()
    # Candidates are re-scored exactly: the scores are the exact late-interaction ones.
    own = torch.einsum("bie,bje->bij", queries, documents[rows]).amax(-1).sum(-1)
    torch.testing.assert_close(scores[:, 0], own, atol=3e-3, rtol=0)  # float16 tokens


def test_saved_index_loads_and_answers_the_same(tmp_path):
    documents, queries, _ = collection()
    index = TokenIndex.build(documents, "v1", SETTINGS)
    index.save(tmp_path / "idx")
    again = load_index(tmp_path / "idx", model_version="v1")
    assert len(again) == N
    for a, b in zip(index.search(queries, 5), again.search(queries, 5), strict=True):
        torch.testing.assert_close(a, b, atol=1e-2, rtol=0)  # tokens stored in float16


def test_index_of_another_model_version_is_a_one_line_error(tmp_path):
    documents, _, _ = collection()
    TokenIndex.build(documents, "v1", SETTINGS).save(tmp_path / "idx")
    with pytest.raises(DataError, match="built by model version v1.*rebuild the index") as err:
        load_index(tmp_path / "idx", model_version="v2")
    assert "\n" not in str(err.value)


def test_corrupt_index_file_is_a_one_line_error(tmp_path):
    documents, _, _ = collection()
    folder = TokenIndex.build(documents, "v1", SETTINGS).save(tmp_path / "idx")
    data = bytearray((folder / "tokens.faiss").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "tokens.faiss").write_bytes(bytes(data))
    with pytest.raises(DataError, match="tokens.faiss is missing or corrupt") as err:
        load_index(folder)
    assert "\n" not in str(err.value)


def test_folder_without_index_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not a ReT index"):
        load_index(tmp_path)


def test_query_of_the_wrong_width_is_a_data_error():
    documents, queries, _ = collection()
    index = TokenIndex.build(documents, "v1", SETTINGS)
    with pytest.raises(DataError, match="query tokens must be"):
        index.search(queries[..., :8])


def test_every_token_knows_its_inverted_list():
    documents, _, _ = collection()
    index = TokenIndex.build(documents, "v1", SETTINGS)
    _, assigned = index.faiss_index.quantizer.search(documents.reshape(N * P, E).numpy(), 1)
    assert index.token_cells.shape == (N, P)
    assert index.token_cells.reshape(-1).tolist() == assigned[:, 0].tolist()
    assert index.bytes_per_document()["centroid ids"] == P * 2  # int16 list numbers


def test_centroid_interaction_sums_each_query_tokens_best_centroid():
    documents, queries, _ = collection()
    index = TokenIndex.build(documents, "v1", SETTINGS)
    # Two lists, at e0 and e1; document 0's tokens all sit in list 0, document 1's in
    # lists 1, 0, 1, 1.
    index.centroids = torch.eye(2, E)
    index.token_cells[:2] = torch.tensor([[0, 0, 0, 0], [1, 0, 1, 1]], dtype=torch.int16)
    query = torch.zeros(3, E)
    query[0, 0], query[1, 1], query[2, :2] = 1.0, 1.0, torch.tensor([0.6, -0.8])
    # Document 0: max over {e0} for each token = 1 + 0 + 0.6; document 1: max over
    # {e0, e1} = 1 + 1 + 0.6.
    scores = index.token_maxima(query, torch.tensor([0, 1])).sum(dim=0)
    torch.testing.assert_close(scores, torch.tensor([1.6, 2.6]))


def test_rerank_keeps_the_best_candidates_by_centroid_interaction():
    documents, queries, rows = collection()
    index = TokenIndex.build(documents, "v1", SETTINGS)
    every = index.search(queries, k=5)
    index.set_search(SETTINGS.nprobe, SETTINGS.probe, rerank=N)  # more than any candidate set
    torch.testing.assert_close(index.search(queries, k=5), every)
    index.set_search(SETTINGS.nprobe, SETTINGS.probe, rerank=3)
    assert index.search(queries, k=1)[1][:, 0].tolist() == rows.tolist()
    index.set_search(SETTINGS.nprobe, SETTINGS.probe, rerank=1)
    assert (index.search(queries, k=5)[1][:, 1:] == -1).all()  # one candidate re-scored


def test_shortlist_raises_centroid_terms_to_the_similarities_faiss_returned():
    documents, _, _ = collection()
    index = TokenIndex.build(documents, "v1", SETTINGS)
    index.centroids = torch.eye(2, E)
    index.token_cells[:3] = torch.tensor(
        [[0, 0, 0, 0], [1, 0, 1, 1], [1, 1, 1, 1]], dtype=torch.int16
    )
    query = torch.eye(2, E)  # e0, e1
    # faiss returned, for token 0: document 2 (0.9) and 0 (0.5); for token 1: 2 (0.3).
    sims = torch.tensor([[0.9, 0.5], [0.3, 0.0]])
    owners = torch.tensor([[2, 0], [2, -1]])
    # Candidates 0 and 2 (1 was not returned). Centroid terms: document 0 (1, 0),
    # document 2 (0, 1) — a tie; raised: document 0 (1, 0) = 1, document 2 (0.9, 1) = 1.9.
    index.set_search(1, 2, rerank=0)
    assert index.shortlist(query, sims, owners).tolist() == [0, 2]
    index.set_search(1, 2, rerank=1)
    assert index.shortlist(query, sims, owners).tolist() == [2]


def test_batched_exact_search_equals_one_query_at_a_time():
    documents, queries, _ = collection()
    together = exact_search(queries, documents, k=7, chunk=64, batch=3)
    alone = [exact_search(q[None], documents, k=7) for q in queries]
    torch.testing.assert_close(together[0], torch.cat([s for s, _ in alone]))
    assert together[1].tolist() == torch.cat([r for _, r in alone]).tolist()


def test_first_cut_keeps_prune_times_rerank_candidates_by_returned_similarities(monkeypatch):
    from polymodal.methods.ret import index as index_module

    documents, _, _ = collection()
    index = TokenIndex.build(documents, "v1", SETTINGS)
    index.centroids = torch.zeros(2, E)
    index.centroids[1, 0] = 5.0  # document 3's tokens sit here: it wins any centroid stage
    index.token_cells[:6] = 0
    index.token_cells[3] = 1
    query = torch.eye(2, E)
    owners = torch.tensor([[0, 1, 2, 3, 4, 5], [5, 4, -1, -1, -1, -1]])
    sims = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [0.95, 0.3, 0, 0, 0, 0]])
    # Returned-similarity scores, token 1 imputing its weakest (0.3) where it returned
    # nothing: 0: 1.2, 1: 1.1, 2: 1.0, 3: 0.9, 4: 0.8, 5: 1.35. Four (PRUNE · 1) go on —
    # 5, 0, 1, 2 — and document 3 is cut before its centroid could count.
    index.set_search(1, 6, rerank=1)
    assert index.shortlist(query, sims, owners).tolist() == [5]
    monkeypatch.setattr(index_module, "PRUNE", 6)
    assert index.shortlist(query, sims, owners).tolist() == [3]


def test_a_search_looks_further_when_its_tokens_name_too_few_documents():
    documents, queries, rows = collection()
    index = TokenIndex.build(documents, "v1", SETTINGS)
    index.set_search(SETTINGS.nprobe, probe=1, rerank=0)  # 4 query tokens: ≤ 4 documents
    scores, found = index.search(queries, k=8)
    assert (found >= 0).all() and found[:, 0].tolist() == rows.tolist()
    assert (scores[:, :-1] >= scores[:, 1:]).all()
