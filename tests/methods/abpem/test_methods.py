import math

import pytest
import torch
from torch.testing import assert_close

from polymodal.errors import ConfigError
from polymodal.methods.abpem.methods import (
    ABPEM,
    READ,
    balance,
    confidence_entropy,
    default_top_k,
    entropy,
    make_method,
    principal_entropy,
    summed_balance,
)
from polymodal.methods.abpem.model import AVFusionOutput, FusionTokens

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


# A 2 x 3 example worked by hand: p_1 = (.5, .3, .2), p_2 = (.2, .2, .6).
PAIR = torch.tensor([[0.5, 0.3, 0.2], [0.2, 0.2, 0.6]], dtype=torch.float64).log()


def h(*p: float) -> float:
    """−Σ p log p of the given terms."""
    return -sum(x * math.log(x) for x in p)


def test_summed_balance_is_the_entropy_of_a_softmax_of_the_summed_probabilities():
    # Σ_b p_b = (.7, .5, .8); softmax -> (.3420, .2800, .3780); entropy 1.091124
    z = sum(math.exp(s) for s in (0.7, 0.5, 0.8))
    expected = h(*(math.exp(s) / z for s in (0.7, 0.5, 0.8)))
    assert_close(summed_balance(PAIR), torch.tensor(expected, dtype=torch.float64))
    assert expected == pytest.approx(1.091124, abs=1e-6)


def test_read_loss_on_a_hand_worked_batch():
    # mean(−.5 log .5, −.6 log .6) = .326535, minus H(softmax(.7, .5, .8)) = 1.091124
    loss, terms = READ().objective(AVFusionOutput(logits=PAIR))
    assert terms["confidence"] == pytest.approx((h(0.5) + h(0.6)) / 2)
    assert float(loss) == pytest.approx(0.326535 - 1.091124, abs=1e-5)


def test_abpem_loss_on_a_hand_worked_batch():
    # k = 2 of 3: PEM = mean(h(.5, .3), h(.6, .2)) = .668074; H(mean p) = h(.35, .25, .4) =
    # 1.080528; the attention blocks all match, so L_AB = 0.
    pattern = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64).repeat(2, 2)
    tokens = FusionTokens(
        torch.zeros(2, 4, 1),
        {"audio": slice(0, 2), "image": slice(2, 4)},
        torch.zeros(2, 4, dtype=torch.bool),
        {"audio": torch.ones(2, dtype=torch.bool), "image": torch.ones(2, dtype=torch.bool)},
    )
    out = AVFusionOutput(PAIR, pattern.expand(2, 1, 4, 4), tokens)
    loss, terms = ABPEM().objective(out)
    assert terms["pem"] == pytest.approx((h(0.5, 0.3) + h(0.6, 0.2)) / 2)
    assert terms["balance"] == pytest.approx(h(0.35, 0.25, 0.4))
    assert terms["bootstrap"] == pytest.approx(0.0, abs=1e-12)
    assert float(loss) == pytest.approx(0.668074 - 1.080528, abs=1e-5)


def test_read_leaves_out_the_balance_term_for_a_single_sample():
    loss, terms = READ().objective(AVFusionOutput(logits=LOGITS.float()))
    assert terms["balance"] == 0.0
    assert float(loss) == pytest.approx(-0.5 * math.log(0.5))


def test_unknown_method_or_option_is_named():
    with pytest.raises(ConfigError, match="unknown adaptation method 'sar'"):
        make_method("sar")
    with pytest.raises(ConfigError, match="method 'abpem'"):
        make_method("abpem", top_n=3)
