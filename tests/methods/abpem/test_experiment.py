import torch

from polymodal.bench.registry import all_checks
from polymodal.methods.abpem.experiment import (
    encode_stream,
    make_adapters,
    make_stream,
    run_stream,
)


def test_streams_are_seeded_batches_of_the_whole_set():
    tensors = {"image": torch.arange(10.0).view(10, 1, 1, 1), "label": torch.arange(10)}
    a, b = make_stream(tensors, seed=4, batch_size=4), make_stream(tensors, seed=4, batch_size=4)
    assert [len(y) for y in a.labels] == [4, 4, 2] and a.size == 10
    assert all(torch.equal(x, y) for x, y in zip(a.labels, b.labels, strict=True))
    assert sorted(torch.cat(a.labels).tolist()) == list(range(10))
    assert torch.equal(a.batches[0]["image"].flatten(), a.labels[0].float())


def test_each_run_starts_from_the_source_model(tiny_model, make_batch):
    model = tiny_model()
    data = {**make_batch(12), "label": torch.arange(12) % 5}
    stream = make_stream(data, seed=0, batch_size=4)
    adapters = make_adapters(model, ["none", "abpem"], lr=1e-2)
    encoded = encode_stream(model, stream)
    first = run_stream(adapters["abpem"], stream, encoded)
    again = run_stream(adapters["abpem"], stream)  # reset first; encodes itself
    assert first.correct == again.correct and first.sizes == [4, 4, 4]
    assert first.hits == again.hits and len(first.hits) == 12
    assert sum(first.hits) == sum(first.correct)
    with torch.no_grad():
        source = [model(b).logits.argmax(-1) for b in stream.batches]
    expected = [int((p == y).sum()) for p, y in zip(source, stream.labels, strict=True)]
    assert run_stream(adapters["none"], stream, encoded).correct == expected


def test_the_claim_check_is_registered_in_the_default_run():
    check = all_checks()["abpem"]
    assert check.default and check.paper == "arXiv 2503.02221"
    assert "ABPEM − READ > 0" in check.criterion and "95 % interval" in check.criterion
