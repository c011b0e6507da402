import torch

from polymodal.methods.bit_align.prompts import BypassPrompt, BypassPrompts


def _set(linear: torch.nn.Linear, weight: list[list[float]], bias: list[float]) -> None:
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(weight))
        linear.bias.copy_(torch.tensor(bias))


def test_bypass_prompt_follows_the_gated_mixing_formula():
    # D = 2, r = 1, N = 2 tokens; gate γ = [0, ln 3] -> g = [.5, .75].
    module = BypassPrompt(dim=2, num_tokens=2, rank=1)
    _set(module.down_depth, [[1.0, 0.0]], [0.0])  # P = p_x
    _set(module.down_rgb, [[0.0, 1.0]], [0.0])  # Z = z_y
    _set(module.up, [[1.0], [2.0]], [0.0, 0.0])  # p' = (m, 2m)
    with torch.no_grad():
        module.gate.copy_(torch.tensor([[0.0], [torch.log(torch.tensor(3.0))]]))
    depth = torch.tensor([[[2.0, 9.0], [4.0, 9.0]]])  # P = [2, 4]
    rgb = torch.tensor([[[9.0, 6.0], [9.0, 8.0]]])  # Z = [6, 8]
    # m = .5(P + Z) + .5(gP + (1 - g)Z): token 0: 4 + .5(1 + 3) = 6; token 1: 6 + .5(3 + 2) = 8.5
    expected = torch.tensor([[[6.0, 12.0], [8.5, 17.0]]])
    torch.testing.assert_close(module(rgb, depth), expected)


def test_untrained_prompts_leave_the_tokens_unchanged():
    prompts = BypassPrompts(depth=3, dim=8, num_tokens=5, rank=4)
    tokens, depth = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    hook = prompts.hook(depth)
    for i in range(3):
        torch.testing.assert_close(hook(i, tokens), tokens)


def test_each_block_has_its_own_module_and_rank():
    prompts = BypassPrompts(depth=4, dim=8, num_tokens=5, rank=3)
    assert len(prompts.blocks) == 4
    per_block = 2 * (8 * 3 + 3) + (3 * 8 + 8) + 5
    assert sum(p.numel() for p in prompts.parameters()) == 4 * per_block
