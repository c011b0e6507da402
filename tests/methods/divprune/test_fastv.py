"""FastV inside the language model: every token before layer K, the top-k after it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

from polymodal.errors import ConfigError
from polymodal.hf.llava import image_features
from polymodal.methods.divprune.fastv import (
    fastv_generate,
    fastv_next_token_logits,
    fastv_prefill_flops,
)
from polymodal.methods.divprune.llava import (
    last_token_attention,
    next_token_logits,
    prefill_flops,
    prune_and_generate,
    prune_inputs,
)

M = 16  # the conftest model's visual tokens (its LM has 4 layers)


@pytest.mark.parametrize("layer", [1, 2, 3])
def test_kept_set_is_the_top_k_of_layer_k_minus_1_attention_and_earlier_layers_saw_all(
    model: Any, prompts: Any, layer: int
) -> None:
    input_ids, attention_mask, pixel_values = prompts
    features = image_features(model, pixel_values)
    out = fastv_next_token_logits(model, input_ids, attention_mask, features, keep=4, layer=layer)
    # The ranking is the unpruned model's attention from the last token in layer K − 1.
    reference = last_token_attention(model, input_ids, attention_mask, features, layer - 1)
    torch.testing.assert_close(out.scores, reference)
    expected = reference.topk(4, dim=-1).indices.sort(dim=-1).values
    assert torch.equal(out.kept, expected)
    # Layers 0..K−1 saw all T tokens; layers K.. the T − 16 + 4 left.
    T = input_ids.shape[1]
    assert out.lengths == [T] * layer + [T - M + 4] * (
        model.config.text_config.num_hidden_layers - layer
    )


def test_keeping_every_token_changes_nothing(model: Any, prompts: Any) -> None:
    input_ids, attention_mask, pixel_values = prompts
    features = image_features(model, pixel_values)
    out = fastv_next_token_logits(model, input_ids, attention_mask, features, keep=M, layer=2)
    everything = torch.arange(M).expand(3, M)
    full = prune_inputs(model, input_ids, attention_mask, features, everything)
    torch.testing.assert_close(out.logits, next_token_logits(model, full), atol=1e-5, rtol=1e-4)


def test_dropped_tokens_still_reach_the_answer_through_the_first_k_layers(
    model: Any, prompts: Any
) -> None:
    # FastV drops a token only after layer K: what layers 0..K−1 read from it stays.
    input_ids, attention_mask, pixel_values = prompts
    features = image_features(model, pixel_values)
    first = fastv_next_token_logits(model, input_ids, attention_mask, features, keep=4, layer=3)
    dropped = next(i for i in range(M) if i not in first.kept[0].tolist())
    changed = features.clone()
    changed[0, dropped] += 5.0
    again = fastv_next_token_logits(
        model, input_ids, attention_mask, changed, keep=4, layer=3, kept=first.kept
    )
    # Layers 0..2 read the dropped token, so row 0's logits move; the others are untouched.
    assert not torch.allclose(again.logits[0], first.logits[0])
    torch.testing.assert_close(again.logits[1:], first.logits[1:])


def test_generation_keeps_the_prompts_selection(model: Any, prompts: Any) -> None:
    input_ids, attention_mask, pixel_values = prompts
    out = prune_and_generate(
        model,
        input_ids,
        pixel_values,
        attention_mask,
        keep_ratio=0.25,
        method="fastv",
        max_new_tokens=3,
    )
    assert out.sequences.shape == (3, 3) and out.kept.shape == (3, 4)
    first = fastv_generate(model, input_ids, pixel_values, attention_mask, 0.25, max_new_tokens=1)
    assert torch.equal(out.sequences[:, :1], first.sequences)


def test_bad_layers_and_counts_are_named(model: Any, prompts: Any) -> None:
    input_ids, attention_mask, pixel_values = prompts
    features = image_features(model, pixel_values)
    with pytest.raises(ConfigError, match="FastV layer K=4 must be in 1..3"):
        fastv_next_token_logits(model, input_ids, attention_mask, features, keep=4, layer=4)
    with pytest.raises(ConfigError, match="FastV keeps 1..16 visual tokens, got 0"):
        fastv_next_token_logits(model, input_ids, attention_mask, features, keep=0)


def test_fastv_flops_count_k_full_layers_and_the_rest_pruned() -> None:
    config = SimpleNamespace(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32)
    fastv = fastv_prefill_flops(config, 40, 576, 56, layer=2)
    before_layer_0 = prefill_flops(config, 40, 576, 56)
    assert fastv.full == before_layer_0.full
    # 2 of 32 layers at full cost: the saving is 30/32 of the before-layer-0 saving.
    saved = before_layer_0.full - before_layer_0.pruned
    assert fastv.full - fastv.pruned == pytest.approx(saved * 30 / 32)
