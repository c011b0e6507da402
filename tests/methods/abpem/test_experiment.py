import pytest
import torch

from polymodal.bench.registry import all_checks
from polymodal.errors import ConfigError
from polymodal.methods.abpem.experiment import (
    AV_MNIST,
    corrupted_test_split,
    encode_stream,
    experiment,
    make_adapters,
    make_stream,
    run_stream,
)
from polymodal.train.config import load_config


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


def test_the_claim_check_is_registered_outside_the_default_run_with_its_cost():
    check = all_checks()["abpem"]
    assert not check.default and "--only abpem" in check.skip_reason
    assert check.paper == "arXiv 2503.02221"
    assert "ABPEM − READ > 0" in check.criterion and "95 % interval" in check.criterion


@pytest.mark.parametrize("quick", [False, True])
def test_the_av_mnist_source_model_differs_from_av_digits_only_in_its_data(
    quick, monkeypatch, tmp_path
):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path / "home"))
    digits = experiment(quick).to_dict()
    mnist = experiment(quick, AV_MNIST, tmp_path).to_dict()
    differ = {key for key in digits if digits[key] != mnist[key]}
    assert differ == {"name", "out_dir", "data"}
    assert mnist["data"]["options"] == {
        "mnist_folder": str(tmp_path / "mnist-t10k"),
        "fsdd_root": str(tmp_path / "fsdd" / "recordings"),
        "image_energy": 0.25,
    }
    assert "bench/abpem_av_mnist" in mnist["out_dir"]


def test_the_av_digits_source_model_is_its_yaml_with_the_bar_off(monkeypatch, tmp_path):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    recipe = load_config("abpem_av_digits", ["trainer.progress_bar=false"]).to_dict()
    bench = experiment(quick=False).to_dict()
    assert {key for key in bench if bench[key] != recipe[key]} == {"out_dir"}


def test_the_av_mnist_source_model_needs_a_data_folder():
    with pytest.raises(ConfigError, match="--data"):
        experiment(bench=AV_MNIST)


def test_av_mnist_streams_pair_each_test_recording_with_16_images(
    shared_data, monkeypatch, tmp_path
):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))  # nothing is trained
    config = experiment(bench=AV_MNIST, data_dir=shared_data)
    config.data.options.update(AV_MNIST.stream(4800))
    stream = make_stream(corrupted_test_split(config, None, seed=0), seed=0)
    audio = torch.cat([b["audio"] for b in stream.batches]).flatten(1)
    assert stream.size == 4800 and len(stream.batches) == 300
    assert len(torch.unique(audio, dim=0)) == 300  # every recording in 16 pairs
    gap = corrupted_test_split(experiment(bench=AV_MNIST, data_dir=shared_data), None, 0)
    digits = gap["label"][AV_MNIST.gap_indices(64)]
    assert sorted(set(digits.tolist())) == list(range(10))
