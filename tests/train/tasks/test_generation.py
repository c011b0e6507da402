"""Tests of sequence generation: exact match and the teacher-forced loss alignment."""

import math

import pytest
import torch
from torch import Tensor, nn

from polymodal.modules.captioner import GenerationOutput
from polymodal.train.tasks.generation import SequenceGenerationModule, exact_match


def test_exact_match_ignores_padding_of_either_length() -> None:
    generated = torch.tensor([[1, 5, 2, -100], [1, 6, 2, -100], [1, 5, 7, 2], [1, 5, -100, -100]])
    tokens = torch.tensor([[1, 5, 2], [1, 5, 2], [1, 5, 2], [1, 5, 2]])
    # equal; wrong word; one word too many; stopped before EOS
    assert exact_match(generated, tokens).tolist() == [1.0, 0.0, 0.0, 0.0]
    short = torch.tensor([[1, 2]])
    assert exact_match(short, torch.tensor([[1, 2, -100, -100]])).tolist() == [1.0]
    assert exact_match(short, torch.tensor([[1, 2, 2]])).tolist() == [0.0]


class _Half(nn.Module):
    """Gives the right next token logit ln 9 and 9 others 0 (probability 1/2); garbage
    where the target is padding."""

    def forward(self, batch: dict[str, Tensor]) -> GenerationOutput:
        tokens = batch["tokens"]
        logits = torch.zeros(tokens.shape[0], tokens.shape[1] - 1, 10)
        for b in range(tokens.shape[0]):
            for i in range(tokens.shape[1] - 1):
                following = int(tokens[b, i + 1])
                if following == -100:
                    logits[b, i, 3] = 50.0
                else:
                    logits[b, i, following] = math.log(9)
        return GenerationOutput(logits)


def test_training_loss_scores_token_i_plus_one_and_skips_padding() -> None:
    module = SequenceGenerationModule(_Half(), vocab_size=10)
    module.log = lambda *args, **kwargs: None  # type: ignore[method-assign]
    batch = {"tokens": torch.tensor([[1, 4, 5, 2], [1, 6, 2, -100]])}
    assert module.training_step(batch, 0).item() == pytest.approx(math.log(2))
    assert (module.monitor, module.mode) == ("val_token_acc", "max")
