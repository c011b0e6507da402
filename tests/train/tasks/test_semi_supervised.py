"""Tests of semi-supervised training: input noise, pseudo-labels and the EMA teacher."""

import math

import pytest
import torch
from torch import Tensor, nn

from polymodal.modules.fusion import FusionOutput
from polymodal.train.tasks.semi_supervised import SemiSupervisedModule, with_noise


def test_with_noise_adds_seeded_gaussian_noise_to_float_modalities_only() -> None:
    batch = {
        "image": torch.zeros(2, 3),
        "text_ids": torch.tensor([[4, 5]] * 2),
        "heatmap": torch.zeros(2, 2),  # a float target, not a modality
        "image_mask": torch.tensor([True, False]),
        "label": torch.tensor([1, 0]),
    }
    torch.manual_seed(0)
    noisy = with_noise(batch, 0.5)
    torch.manual_seed(0)
    assert torch.equal(noisy["image"], 0.5 * torch.randn(2, 3))
    for key in ("text_ids", "heatmap", "image_mask", "label"):
        assert noisy[key] is batch[key]
    assert batch["image"].abs().sum() == 0  # the input batch is not changed
    assert with_noise(batch, 0.0) is batch


class _Linear(nn.Module):
    """logits = W x + b on a one-feature image; a buffer to follow the teacher copy."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 3)
        self.register_buffer("seen", torch.tensor(0.0))
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor([[1.0], [0.0], [0.0]]))
            self.linear.bias.zero_()

    def forward(self, batch: dict[str, Tensor]) -> FusionOutput:
        return FusionOutput(logits=self.linear(batch["image"]))


def _module(**options: float) -> tuple[SemiSupervisedModule, dict[str, Tensor]]:
    module = SemiSupervisedModule(_Linear(), 3, **options)  # type: ignore[arg-type]
    logged: dict[str, Tensor] = {}
    module.log = lambda name, value, **kwargs: logged.__setitem__(name, value)  # type: ignore[method-assign]
    return module, logged


def test_one_ema_step_gives_decay_times_teacher_plus_rest_times_student() -> None:
    module, _ = _module(ema_decay=0.75)
    assert module.teacher is not None and module.eval_model is module.teacher
    with torch.no_grad():
        module.teacher.linear.weight.fill_(1.0)
        module.model.linear.weight.fill_(3.0)
        module.model.seen.fill_(5.0)
    module.on_train_batch_end(None, None, 0)
    assert torch.equal(module.teacher.linear.weight, torch.full((3, 1), 1.5))  # .75 * 1 + .25 * 3
    assert module.teacher.seen.item() == 5.0  # buffers are copied
    assert torch.equal(module.model.linear.weight, torch.full((3, 1), 3.0))
    assert not any(p.requires_grad for p in module.teacher.parameters())


def test_without_decay_there_is_no_teacher_copy() -> None:
    module, _ = _module(ema_decay=0.0)
    assert module.teacher is None and module.eval_model is module.model
    module.on_train_batch_end(None, None, 0)


def test_pseudo_labels_count_only_where_the_teacher_is_confident() -> None:
    module, logged = _module(threshold=0.9, noise=0.0, unlabelled_weight=2.0)
    labelled = {"image": torch.tensor([[0.0]]), "label": torch.tensor([2])}  # uniform: ln 3
    # teacher confidence 8/10 (dropped) and 98/100 (kept, pseudo-label 0)
    unlabelled = {"image": torch.tensor([[math.log(8)], [math.log(98)]])}
    loss = module.training_step({"labelled": labelled, "unlabelled": unlabelled}, 0)
    want = math.log(3) + 2.0 * math.log(100 / 98) / 2
    assert loss.item() == pytest.approx(want, rel=1e-5)
    assert logged["train_pseudo_share"].item() == 0.5


class _WithOwnTerm(_Linear):
    """A model that adds 10 × the mean teacher confidence-mask of the step and reports 7."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list = []

    def unlabelled_terms(self, step) -> dict[str, Tensor]:
        self.steps.append(step)
        step.metrics["reported"] = torch.tensor(7.0)  # logged, never added to the loss
        return {"extra": 10.0 * step.keep.mean()}


def test_a_model_adds_its_own_unlabelled_terms_to_the_loss() -> None:
    model = _WithOwnTerm()
    module = SemiSupervisedModule(model, 3, threshold=0.9, noise=0.0, unlabelled_weight=2.0)
    logged: dict[str, Tensor] = {}
    module.log = lambda name, value, **kwargs: logged.__setitem__(name, value)  # type: ignore[method-assign]
    labelled = {"image": torch.tensor([[0.0]]), "label": torch.tensor([2])}
    unlabelled = {"image": torch.tensor([[math.log(8)], [math.log(98)]])}
    loss = module.training_step({"labelled": labelled, "unlabelled": unlabelled}, 0)
    want = math.log(3) + 2.0 * math.log(100 / 98) / 2 + 10.0 * 0.5
    assert loss.item() == pytest.approx(want, rel=1e-5)
    assert logged["train_extra"].item() == 5.0
    assert logged["train_reported"].item() == 7.0
    (step,) = model.steps
    assert step.pseudo.tolist() == [0, 0] and step.keep.tolist() == [0.0, 1.0]
    assert step.weak is unlabelled and step.teacher.logits.shape == (2, 3)


def test_without_unlabelled_weight_or_own_terms_only_labelled_batches_train() -> None:
    module, logged = _module(unlabelled_weight=0.0, noise=0.0)
    labelled = {"image": torch.tensor([[0.0]]), "label": torch.tensor([2])}
    broken = {"image": torch.tensor([[float("nan")]])}  # would poison any loss it reached
    loss = module.training_step({"labelled": labelled, "unlabelled": broken}, 0)
    assert loss.item() == pytest.approx(math.log(3), rel=1e-6)
    assert "train_pseudo_share" not in logged
