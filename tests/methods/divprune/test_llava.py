"""DivPrune on Hugging Face LLaVA: pruning, generation and the FLOP model on a tiny random model."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

from polymodal.errors import DataError
from polymodal.hf.llava import image_features
from polymodal.methods.divprune.llava import (
    last_token_attention,
    layer_flops,
    next_token_logits,
    prefill_flops,
    prune_and_generate,
    prune_inputs,
)

IMAGE, M = 4, 16  # the conftest model's <image> id and visual tokens


def test_ratio_one_generates_exactly_what_the_unpruned_model_does(model: Any, prompts: Any) -> None:
    input_ids, attention_mask, pixel_values = prompts
    with torch.no_grad():
        full = model.generate(
            input_ids=input_ids,
            pixel_values=pixel_values,
            attention_mask=attention_mask,
            max_new_tokens=6,
            do_sample=False,
        )
    pruned = prune_and_generate(
        model, input_ids, pixel_values, attention_mask, keep_ratio=1.0, max_new_tokens=6
    )
    assert pruned.kept.tolist() == [list(range(M))] * 3
    torch.testing.assert_close(pruned.sequences, full[:, input_ids.shape[1] :])


def test_pruned_logits_match_the_model_forward_at_ratio_one(model: Any, prompts: Any) -> None:
    input_ids, attention_mask, pixel_values = prompts
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        direct = model(
            input_ids=input_ids,
            pixel_values=pixel_values,
            attention_mask=attention_mask,
            position_ids=positions,
        ).logits[:, -1]
    features = image_features(model, pixel_values)
    everything = torch.arange(M).expand(3, M)
    pruned = prune_inputs(model, input_ids, attention_mask, features, everything)
    torch.testing.assert_close(next_token_logits(model, pruned), direct, atol=1e-5, rtol=1e-5)


def test_prune_inputs_keeps_text_and_the_chosen_tokens_in_order(model: Any, prompts: Any) -> None:
    input_ids, attention_mask, pixel_values = prompts
    features = image_features(model, pixel_values)
    assert features.shape == (3, M, model.config.text_config.hidden_size)
    kept = torch.tensor([[1, 5, 9], [0, 2, 15], [3, 4, 7]])
    pruned = prune_inputs(model, input_ids, attention_mask, features, kept)
    length = input_ids.shape[1] - M + 3
    assert pruned.inputs_embeds.shape == (3, length, model.config.text_config.hidden_size)
    torch.testing.assert_close(pruned.attention_mask.sum(-1), attention_mask.sum(-1) - M + 3)
    # Row 1 is unpadded: <bos>, then the three kept tokens, then its six words.
    torch.testing.assert_close(pruned.inputs_embeds[1, 1:4], features[1, [0, 2, 15]])
    words = model.get_input_embeddings()(input_ids[1, -6:])
    torch.testing.assert_close(pruned.inputs_embeds[1, 4:], words)
    # Positions restart at 0 on the first real token and run on contiguously.
    first = int(pruned.attention_mask[0].argmax())
    assert pruned.position_ids[0, first:].tolist() == list(range(length - first))


def test_every_selector_runs_through_generate(model: Any, prompts: Any) -> None:
    input_ids, attention_mask, pixel_values = prompts
    for method in ("divprune", "random", "attention", "uniform"):
        out = prune_and_generate(
            model,
            input_ids,
            pixel_values,
            attention_mask,
            keep_ratio=0.25,
            method=method,
            generator=torch.Generator().manual_seed(0),
            max_new_tokens=2,
        )
        assert out.kept.shape == (3, 4) and out.sequences.shape == (3, 2), method
        assert all(row == sorted(set(row)) for row in out.kept.tolist()), method


def test_last_token_attention_scores_the_visual_tokens(model: Any, prompts: Any) -> None:
    input_ids, attention_mask, pixel_values = prompts
    features = image_features(model, pixel_values)
    before = model.config.text_config._attn_implementation
    scores = last_token_attention(model, input_ids, attention_mask, features, layer=2)
    assert scores.shape == (3, M)
    assert bool((scores >= 0).all()) and bool((scores.sum(-1) < 1).all())
    # Scores come from eager attention; the model's own implementation is restored.
    assert model.config.text_config._attn_implementation == before


def test_prompts_without_one_placeholder_per_token_are_rejected(model: Any, prompts: Any) -> None:
    input_ids, attention_mask, pixel_values = prompts
    features = image_features(model, pixel_values)
    broken = input_ids.clone()
    broken[0, -1] = IMAGE
    with pytest.raises(DataError, match="exactly 16 <image> placeholders"):
        prune_inputs(model, broken, attention_mask, features, torch.zeros(3, 2, dtype=torch.long))


def test_flop_model_follows_the_formula() -> None:
    # One layer, n = 10 tokens, d = 4, m = 8: 4·10·16 + 2·100·4 + 2·10·4·8 = 640 + 800 + 640.
    assert layer_flops(10, 4, 8) == 2080.0
    config = SimpleNamespace(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32)
    flops = prefill_flops(config, text_tokens=40, visual_tokens=576, kept=56)
    assert flops.full == 32 * layer_flops(616, 4096, 11008)
    assert flops.pruned == 32 * layer_flops(96, 4096, 11008)
    assert 0.84 < flops.reduction < 0.85
