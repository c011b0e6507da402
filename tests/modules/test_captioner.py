"""Tests of the captioner: causal teacher forcing, its memory, greedy decoding."""

import pytest
import torch
from torch import Tensor
from torch.testing import assert_close

from polymodal.errors import ConfigError
from polymodal.modules.captioner import Captioner, build_captioner

BOS, EOS = 1, 2


def _model(**options: int) -> Captioner:
    torch.manual_seed(0)
    modalities = {
        "image": {"encoder": "mlp", "shape": [4], "hidden": [8]},
        "audio": {"encoder": "mlp", "shape": [3], "hidden": [8]},
    }
    return build_captioner(
        "none", modalities, vocab_size=10, dim=16, depth=2, num_heads=2, max_length=8, **options
    ).eval()


def _inputs(batch: int = 1) -> dict[str, Tensor]:
    torch.manual_seed(1)
    return {"image": torch.randn(batch, 4), "audio": torch.randn(batch, 3)}


@pytest.mark.parametrize("t", [1, 3, 5])
def test_changing_token_t_leaves_the_logits_before_t_unchanged(t: int) -> None:
    model, tokens = _model(), torch.tensor([[BOS, 4, 5, 6, 7, 8, EOS]])
    before = model({**_inputs(), "tokens": tokens}).logits
    changed = tokens.clone()
    changed[0, t] = 9
    after = model({**_inputs(), "tokens": changed}).logits
    assert before.shape == (1, 6, 10)  # scores of tokens 1..6
    assert_close(after[:, :t], before[:, :t])
    assert not torch.allclose(after[:, t], before[:, t])  # logits[t] predicts token t + 1


def test_padding_target_is_read_as_the_pad_id() -> None:
    model = _model()
    padded = model({**_inputs(), "tokens": torch.tensor([[BOS, 4, EOS, -100, -100]])}).logits
    zeros = model({**_inputs(), "tokens": torch.tensor([[BOS, 4, EOS, 0, 0]])}).logits
    assert_close(padded, zeros)


def test_a_missing_modality_is_masked_out_of_the_memory() -> None:
    model, tokens = _model(), torch.tensor([[BOS, 4, 5, EOS]] * 2)
    batch = {**_inputs(2), "tokens": tokens, "image_mask": torch.tensor([True, False])}
    batch["image"][1] = 1e3
    logits = model(batch).logits
    audio_only = model({"audio": batch["audio"][1:], "tokens": tokens[1:]}).logits
    assert_close(logits[1:], audio_only, atol=1e-5, rtol=1e-5)


def test_generate_starts_with_bos_writes_minus_100_after_eos_and_stops_early() -> None:
    model = _model()
    script = {0: [EOS, 7, 7, 7], 1: [5, 6, EOS, 7]}  # the next id each sample's decoder picks
    seen: list[Tensor] = []

    def decode(inputs: Tensor, memory: Tensor, padding: Tensor) -> Tensor:
        seen.append(inputs.clone())
        logits = torch.zeros(inputs.shape[0], inputs.shape[1], 10)
        for b in range(inputs.shape[0]):
            logits[b, -1, script[b][inputs.shape[1] - 1]] = 1.0
        return logits

    model._decode = decode  # type: ignore[method-assign]
    out = model.generate(_inputs(2))
    assert out.tolist() == [[BOS, EOS, -100, -100], [BOS, 5, 6, EOS]]
    assert len(seen) == 3  # stopped once both samples ended, before max_length 8
    assert seen[-1].tolist() == [[BOS, EOS, 0], [BOS, 5, 6]]  # -100 fed back as the pad id


def test_generate_with_a_real_decoder_ends_at_eos_or_max_length() -> None:
    model = _model()
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
        model.head.bias[EOS] = 5.0
    assert model.generate(_inputs(2)).tolist() == [[BOS, EOS]] * 2
    with torch.no_grad():
        model.head.bias[EOS] = 0.0
        model.head.bias[7] = 5.0
    assert model.generate(_inputs(1), max_length=4).tolist() == [[BOS, 7, 7, 7]]


def test_build_captioner_needs_a_modality() -> None:
    with pytest.raises(ConfigError, match="at least one modality"):
        build_captioner("none", {}, vocab_size=10)
