import pytest
import torch

from polymodal.data.specs import KeySpec, batched_layout, dtype_ok


@pytest.mark.parametrize(
    ("layout", "batched"),
    [
        ("()", "(B,)"),
        ("(L,)", "(B, L)"),
        ("(C, H, W)", "(B, C, H, W)"),
        ("(S,) waveform or (F, T) log-mel", "(B, S) waveform or (B, F, T) log-mel"),
    ],
)
def test_batched_layout_puts_b_first_in_every_alternative(layout: str, batched: str):
    assert batched_layout(layout) == batched


@pytest.mark.parametrize(
    ("rule", "accepted", "refused"),
    [
        ("float", torch.float16, torch.int64),
        ("integer", torch.int32, torch.bool),
        ("int64", torch.int64, torch.int32),
        ("bool", torch.bool, torch.uint8),
        ("float_or_bool", torch.bool, torch.int64),
    ],
)
def test_dtype_rules(rule: str, accepted: torch.dtype, refused: torch.dtype):
    assert dtype_ok(rule, accepted)  # type: ignore[arg-type]
    assert not dtype_ok(rule, refused)  # type: ignore[arg-type]


def test_a_variable_spec_needs_a_length_axis_within_its_ranks():
    with pytest.raises(ValueError, match="needs a length_axis"):
        KeySpec("(L,)", (1,), variable=True)
    with pytest.raises(ValueError, match="within every rank"):
        KeySpec("(S,) or (F, T)", (1, 2), length_axis=-2)
