import pytest
import torch
from torch import nn

from polymodal.errors import DataError
from polymodal.methods.ret.cell import RecurrentCell

B, Q, L, N, D = 3, 4, 5, 6, 8


def cell():
    torch.manual_seed(0)
    return RecurrentCell(D, num_heads=2).eval()


def inputs(seed=1):
    g = torch.Generator().manual_seed(seed)
    state = torch.randn(B, Q, D, generator=g)
    text = torch.randn(B, L, D, generator=g)
    visual = torch.randn(B, N, D, generator=g)
    padding = torch.zeros(B, L, dtype=torch.bool)
    padding[0, 3:] = True
    return state, text, padding, visual


def test_missing_text_has_zero_gates_and_its_tokens_never_change_the_output():
    c, (state, text, padding, visual) = cell(), inputs()
    has_text = torch.tensor([True, False, True])
    has_image = torch.ones(B, dtype=torch.bool)
    out_a, gates = c(state, text, padding, visual, has_text, has_image)
    other = text.clone()
    other[1] = torch.randn(L, D) * 100
    other[1, 0] = float("nan")  # whatever a missing modality's slot holds
    out_b, _ = c(
        state,
        other,
        padding | torch.tensor([False, True, False])[:, None],
        visual,
        has_text,
        has_image,
    )
    assert torch.equal(gates.text[1], torch.zeros(Q, D))
    assert bool((gates.text[0] > 0).all())
    torch.testing.assert_close(out_a, out_b)


def test_missing_image_has_zero_gates_and_its_tokens_never_change_the_output():
    c, (state, text, padding, visual) = cell(), inputs()
    has_text = torch.ones(B, dtype=torch.bool)
    has_image = torch.tensor([False, True, True])
    out_a, gates = c(state, text, padding, visual, has_text, has_image)
    other = visual.clone()
    other[0] = float("inf")
    out_b, _ = c(state, text, padding, other, has_text, has_image)
    assert torch.equal(gates.visual[0], torch.zeros(Q, D))
    torch.testing.assert_close(out_a, out_b)


def test_step_matches_the_formulas_with_hand_set_gates():
    # Zero gate weights and biases: every gate is sigmoid(0) = 1/2, so
    # c = (r + t + v) / 2 with both modalities and (r + v) / 2 without text.
    c, (state, text, padding, visual) = cell(), inputs()
    for gate in (c.text_gate, c.visual_gate, c.forget_text, c.forget_visual):
        nn.init.zeros_(gate.weight)
        if gate.bias is not None:
            nn.init.zeros_(gate.bias)
    has_text = torch.tensor([True, False, True])
    has_image = torch.ones(B, dtype=torch.bool)
    out, gates = c(state, text, padding, visual, has_text, has_image)

    x = c.norm_self(state)
    r = state + c.self_attn(x, x, x)[0]
    x = c.norm_cross(r)
    t = c.text_attn(x, text, text, key_padding_mask=padding)[0] * has_text[:, None, None]
    v = c.visual_attn(x, visual, visual)[0]
    expected_c = (r + t + v) / 2
    expected = expected_c + c.mlp(c.norm_mlp(expected_c))
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(gates.forget, torch.full((B, Q, D), 0.5))
    torch.testing.assert_close(gates.text[1], torch.zeros(Q, D))
    torch.testing.assert_close(gates.text[0], torch.full((Q, D), 0.5))


def test_a_sample_with_neither_modality_is_a_one_line_error():
    c, (state, text, padding, visual) = cell(), inputs()
    with pytest.raises(DataError, match="neither text nor image"):
        c(
            state,
            text,
            padding,
            visual,
            torch.tensor([True, False, True]),
            torch.tensor([True, False, True]),
        )
