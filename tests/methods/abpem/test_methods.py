import math

import pytest
import torch
from torch.testing import assert_close

from polymodal.errors import ConfigError
from polymodal.methods.abpem.methods import (
    READ,
    balance,
    confidence_entropy,
    default_top_k,
    entropy,
    make_method,
    principal_entropy,
)
from polymodal.methods.abpem.model import AVFusionOutput

PROBS = torch.tensor([[0.5, 0.3, 0.2]], dtype=torch.float64)
LOGITS = PROBS.log()


def test_entropy_of_a_uniform_prediction_is_log_c():
    assert_close(entropy(torch.zeros(2, 4)), torch.full((2,), math.log(4)))


def test_principal_entropy_keeps_the_k_most_probable_classes():
    expected = -(0.5 * math.log(0.5) + 0.3 * math.log(0.3))
    assert_close(principal_entropy(LOGITS, 2), torch.tensor([expected], dtype=torch.float64))


def test_principal_entropy_over_all_classes_is_the_entropy():
    assert_close(principal_entropy(LOGITS, 3), entropy(LOGITS))


def test_confidence_entropy_is_minus_p_max_log_p_max():
    expected = -0.5 * math.log(0.5)
    assert_close(confidence_entropy(LOGITS), torch.tensor([expected], dtype=torch.float64))


def test_balance_is_the_entropy_of_the_mean_prediction():
    logits = torch.tensor([[0.0, -100.0], [-100.0, 0.0]])  # one-hot on each class
    assert_close(balance(logits), torch.tensor(math.log(2)))


@pytest.mark.parametrize(("classes", "k"), [(5, 2), (10, 2), (20, 3), (50, 8)])
def test_default_top_k_is_fifteen_percent_rounded_half_up_at_least_two(classes, k):
    assert default_top_k(classes) == k


def test_read_leaves_out_the_balance_term_for_a_single_sample():
    loss, terms = READ().objective(AVFusionOutput(logits=LOGITS.float()))
    assert terms["balance"] == 0.0
    assert float(loss) == pytest.approx(-0.5 * math.log(0.5))


def test_unknown_method_or_option_is_named():
    with pytest.raises(ConfigError, match="unknown adaptation method 'sar'"):
        make_method("sar")
    with pytest.raises(ConfigError, match="method 'abpem'"):
        make_method("abpem", top_n=3)
