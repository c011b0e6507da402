import torch
from torch import nn

from polymodal.modules.fusion import FusionOutput
from polymodal.train.tasks.classification import ClassificationModule


class Recorder(nn.Module):
    """Returns zero logits and keeps the batches it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict[str, torch.Tensor]] = []
        self.bias = nn.Parameter(torch.zeros(3))

    def forward(self, batch: dict[str, torch.Tensor]) -> FusionOutput:
        self.seen.append(batch)
        return FusionOutput(logits=self.bias.expand(batch["label"].shape[0], -1))


def batch() -> dict[str, torch.Tensor]:
    return {
        "image": torch.zeros(64, 2),
        "audio": torch.zeros(64, 2),
        "label": torch.zeros(64).long(),
    }


def step(module: ClassificationModule, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    module.log = lambda *args, **kwargs: None  # type: ignore[method-assign]
    module.training_step(b, 5)
    return module.model.seen[-1]  # type: ignore[operator, return-value]


def test_training_step_drops_modalities_by_mask_only_when_asked():
    rates = {"image": 0.5, "audio": 0.5}
    plain = step(ClassificationModule(Recorder(), 3, seed=1), batch())
    assert "image_mask" not in plain and "audio_mask" not in plain
    seen = step(ClassificationModule(Recorder(), 3, seed=1, modality_dropout=rates), batch())
    masks = torch.stack([seen["image_mask"], seen["audio_mask"]], dim=1)
    assert masks.any(dim=1).all() and not masks.all()
    again = step(ClassificationModule(Recorder(), 3, seed=1, modality_dropout=rates), batch())
    assert torch.equal(again["image_mask"], seen["image_mask"])  # seeded by (seed, step)
    other = step(ClassificationModule(Recorder(), 3, seed=2, modality_dropout=rates), batch())
    assert not torch.equal(other["image_mask"], seen["image_mask"])


def test_validation_never_drops():
    module = ClassificationModule(Recorder(), 3, modality_dropout={"image": 0.9, "audio": 0.9})
    module.log = lambda *args, **kwargs: None  # type: ignore[method-assign]
    module.validation_step(batch(), 0)
    assert "image_mask" not in module.model.seen[-1]  # type: ignore[operator]
