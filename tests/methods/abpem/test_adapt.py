import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import torch

from polymodal.errors import ConfigError
from polymodal.methods.abpem.adapt import TestTimeAdapter, select_parameters
from polymodal.methods.abpem.methods import ABPEM, READ, NoAdaptation, Tent
from polymodal.methods.abpem.model import AVFusionOutput


def equal_states(a: Any, b: Any) -> bool:
    """Recursive equality of (optimizer) state dicts, tensors compared bit for bit."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(equal_states(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(equal_states(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def test_fusion_qkv_selects_the_fusion_query_key_value_projections(tiny_model):
    names = sorted(select_parameters(tiny_model(), "fusion_qkv"))
    assert names == [f"fusion.attn.{p}_proj.{w}" for p in "kqv" for w in ("bias", "weight")]


def test_fusion_norm_leaves_the_encoder_norms_out(tiny_model):
    model = tiny_model()
    fusion = set(select_parameters(model, "fusion_norm"))
    everything = set(select_parameters(model, "norm"))
    assert fusion == {f"fusion.norm{i}.{w}" for i in (1, 2) for w in ("weight", "bias")} | {
        "norm.weight",
        "norm.bias",
    }
    assert fusion < everything and any(n.startswith("encoders.") for n in everything - fusion)


def test_selection_patterns_must_match_something(tiny_model):
    assert set(select_parameters(tiny_model(), ["head.*"])) == {"head.weight", "head.bias"}
    with pytest.raises(ConfigError, match="match no parameter"):
        select_parameters(tiny_model(), ["nothing.*"])


def test_a_step_changes_only_the_selected_parameters(tiny_model, make_batch):
    model = tiny_model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    adapter = TestTimeAdapter(model, ABPEM(cache_size=0), lr=1e-2)
    adapter.step(make_batch(6))
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == set(adapter.params)


def test_predictions_are_read_after_the_update(tiny_model, make_batch):
    model, batch = tiny_model(), make_batch(6)
    with torch.no_grad():
        before = model(batch).logits
    out = TestTimeAdapter(model, READ(), lr=1e-2).step(batch)
    with torch.no_grad():
        after = model(batch).logits
    assert torch.equal(out.logits, after)
    assert not torch.allclose(out.logits, before)


def test_reset_restores_parameters_and_optimizer_state_bit_exactly(tiny_model, make_batch):
    model = tiny_model()
    adapter = TestTimeAdapter(model, ABPEM(), lr=1e-2)
    model_state = {k: v.clone() for k, v in model.state_dict().items()}
    first = adapter.step(make_batch(6, seed=1)).logits
    assert adapter.optimizer is not None
    optimizer_state = copy.deepcopy(adapter.optimizer.state_dict())
    for seed in (2, 3, 4):
        adapter.step(make_batch(6, seed=seed))
    adapter.reset()
    assert equal_states(model.state_dict(), model_state)
    fresh = TestTimeAdapter(tiny_model(), ABPEM(), lr=1e-2)
    assert fresh.optimizer is not None
    assert equal_states(adapter.optimizer.state_dict(), fresh.optimizer.state_dict())
    # After the reset the adapter retraces its first step exactly (cache emptied too).
    assert torch.equal(adapter.step(make_batch(6, seed=1)).logits, first)
    assert equal_states(adapter.optimizer.state_dict(), optimizer_state)


def test_a_batch_of_one_adapts_without_the_balance_term(tiny_model, make_batch):
    model = tiny_model()
    adapter = TestTimeAdapter(model, READ(), lr=1e-2)
    q = model.fusion_attention.q_proj.weight.detach().clone()
    out = adapter.step(make_batch(1))
    assert out.logits.shape == (1, 5) and out.terms["balance"] == 0.0
    assert not torch.equal(model.fusion_attention.q_proj.weight, q)


def test_nan_samples_are_skipped_and_the_rest_adapt_as_if_they_were_absent(tiny_model, make_batch):
    batch = make_batch(4)
    batch["audio"][2, 0, 0] = float("nan")
    adapter = TestTimeAdapter(tiny_model(), ABPEM(), lr=1e-2)
    out = adapter.step(batch)
    assert out.valid.tolist() == [True, True, False, True]
    assert torch.isnan(out.logits[2]).all() and torch.isfinite(out.logits[[0, 1, 3]]).all()
    clean = {k: v[[0, 1, 3]] for k, v in batch.items()}
    reference = TestTimeAdapter(tiny_model(), ABPEM(), lr=1e-2).step(clean)
    assert torch.equal(out.logits[[0, 1, 3]], reference.logits)


def test_a_batch_without_finite_samples_makes_no_update(tiny_model, make_batch):
    batch = make_batch(2)
    batch["image"][:] = float("inf")
    model = tiny_model()
    q = model.fusion_attention.q_proj.weight.detach().clone()
    out = TestTimeAdapter(model, ABPEM()).step(batch)
    assert out.loss is None and not out.valid.any() and out.logits.shape == (2, 5)
    assert torch.equal(model.fusion_attention.q_proj.weight, q)


@dataclass(frozen=True)
class CountingREAD(READ):
    """READ that records how many samples each adaptation forward holds."""

    name: ClassVar[str] = "counting"
    seen: list[int] | None = None

    def objective(self, out: AVFusionOutput) -> tuple[torch.Tensor, dict[str, float]]:
        assert self.seen is not None
        self.seen.append(out.logits.shape[0])
        return super().objective(out)


def test_the_cache_adds_recent_samples_to_the_adaptation_forward(tiny_model, make_batch):
    seen: list[int] = []
    adapter = TestTimeAdapter(tiny_model(), CountingREAD(seen=seen), cache_size=5)
    for seed in range(3):
        adapter.step(make_batch(3, seed=seed))
    assert seen == [3, 6, 8]  # nothing cached, then 3, then the 5 most recent
    adapter.reset()
    adapter.step(make_batch(3))
    assert seen[-1] == 3


def test_tent_adapts_every_norm_layer_by_default(tiny_model):
    model = tiny_model()
    chosen = TestTimeAdapter(model, Tent()).params
    assert set(chosen) == set(select_parameters(model, "norm"))
    assert any(n.startswith("encoders.audio.") for n in chosen)
    assert any(n.startswith("encoders.image.") for n in chosen)


def test_step_encoded_refuses_tent_whose_encoders_adapt(tiny_model, make_batch):
    adapter = TestTimeAdapter(tiny_model(), Tent())
    with torch.no_grad():
        tokens = adapter.model.encode(make_batch(2))  # type: ignore[operator]
    with pytest.raises(ConfigError, match="frozen encoders"):
        adapter.step_encoded(tokens)


def test_the_cache_refuses_adapted_encoders(tiny_model, make_batch):
    adapter = TestTimeAdapter(tiny_model(), Tent(), params="norm", cache_size=4)
    with pytest.raises(ConfigError, match="frozen encoders"):
        adapter.step(make_batch(2))


def test_tent_on_every_norm_adapts_the_encoders_too(tiny_model, make_batch):
    model = tiny_model()
    before = model.encoders["image"].norm.weight.detach().clone()
    TestTimeAdapter(model, Tent(), params="norm", lr=1e-2).step(make_batch(4))
    assert not torch.equal(model.encoders["image"].norm.weight, before)


@pytest.mark.parametrize("method", [ABPEM, READ])
def test_step_encoded_matches_step(tiny_model, make_batch, method):
    batch = make_batch(5)
    a = TestTimeAdapter(tiny_model(), method(), lr=1e-2)
    b = TestTimeAdapter(tiny_model(), method(), lr=1e-2)
    with torch.no_grad():
        tokens = b.model.encode(batch)  # type: ignore[operator]
    assert torch.equal(a.step(batch).logits, b.step_encoded(tokens).logits)


def test_no_adaptation_predicts_with_the_source_model(tiny_model, make_batch):
    model, batch = tiny_model(), make_batch(3)
    with torch.no_grad():
        expected = model(batch).logits
    out = TestTimeAdapter(model, NoAdaptation()).step(batch)
    assert torch.equal(out.logits, expected) and out.loss is None


def test_predict_marks_bad_samples_and_leaves_the_model_unchanged(tiny_model, make_batch):
    model, batch = tiny_model(), make_batch(3)
    batch["image"][1, 0, 0, 0] = float("nan")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    logits = TestTimeAdapter(model, ABPEM()).predict(batch)
    assert torch.isnan(logits[1]).all() and torch.isfinite(logits[[0, 2]]).all()
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
