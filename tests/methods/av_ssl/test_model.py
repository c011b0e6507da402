"""AV-SSL model tests: outputs, localisation, its own unlabelled terms, bad configs."""

import math

import pytest
import torch

from polymodal.errors import ConfigError, DataError
from polymodal.methods.av_ssl.model import AVOutput, audio_video_nce, build_av_ssl
from polymodal.train.tasks.semi_supervised import UnlabelledStep

VIDEO = {"shape": [4, 1, 16, 16], "tubelet": 2, "patch_size": 8, "depth": 1, "num_heads": 2}
AUDIO = {"shape": [8, 21], "depth": 2}


def _batch(size: int = 3) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "video": torch.rand(size, 4, 1, 16, 16, generator=generator),
        "audio": torch.randn(size, 8, 21, generator=generator),
    }


def _model(modalities: dict, **options):
    torch.manual_seed(0)
    return build_av_ssl("concat", modalities, dim=12, num_classes=5, **options).eval()


def test_audio_visual_model_returns_logits_and_a_map_over_the_tube_grid() -> None:
    out = _model({"video": VIDEO, "audio": AUDIO})(_batch())
    assert out.logits.shape == (3, 5)
    assert out.patches is not None and out.patches.shape == (3, 2 * 2 * 2, 32)
    assert out.localisation is not None and out.localisation.shape == (3, 2, 2, 2)
    assert out.localisation.abs().max() <= 1 + 1e-6  # cosine similarities
    assert out.audio is not None and out.audio.shape == (3, 2, 32)  # one per time slice


def test_single_modality_models_have_no_map() -> None:
    assert _model({"video": VIDEO})(_batch()).localisation is None
    out = _model({"audio": AUDIO})(_batch())
    assert out.localisation is None and out.logits.shape == (3, 5)


def test_a_missing_audio_sample_gives_the_video_only_features() -> None:
    model = _model({"video": VIDEO, "audio": AUDIO})
    batch = _batch()
    batch["audio_mask"] = torch.tensor([True, False, True])
    changed = dict(batch, audio=batch["audio"] * 0 + 3.0)  # other sound, still flagged missing
    logits, other = model(batch).logits, model(changed).logits
    torch.testing.assert_close(logits[1], other[1])
    assert not torch.allclose(logits[0], other[0])


def test_a_batch_without_a_modality_the_model_encodes_is_a_one_line_error() -> None:
    with pytest.raises(DataError, match="encodes 'audio'"):
        _model({"video": VIDEO, "audio": AUDIO})({"video": _batch()["video"]})


@pytest.mark.parametrize(
    ("modalities", "options", "message"),
    [
        ({"video": VIDEO}, {"mix": "guided"}, "need video and audio"),
        ({"audio": AUDIO}, {"contrastive_weight": 0.5}, "need video and audio"),
        ({"audio": AUDIO}, {"mix": "box"}, "no video encoder"),
        ({"video": VIDEO}, {"mix": "cutout"}, "mix must be one of"),
        ({"video": VIDEO}, {"box_side": 17}, "box_side"),
    ],
)
def test_impossible_settings_are_config_errors(modalities, options, message) -> None:
    with pytest.raises(ConfigError, match=message):
        _model(modalities, **options)


def test_nce_is_log_batch_for_identical_similarities_and_small_for_matched_pairs() -> None:
    audio = torch.eye(3)
    same = torch.ones(3, 2, 3)
    torch.testing.assert_close(audio_video_nce(audio, same, 0.1), torch.tensor(math.log(3)))
    # Each clip has one patch equal to its own audio and one unrelated (zero-ish) one.
    patches = torch.stack([torch.eye(3), torch.full((3, 3), -1.0)], dim=1)
    matched = audio_video_nce(audio, patches, 0.1)
    want = -torch.log_softmax(torch.tensor([10.0, 0.0, 0.0]), dim=0)[0]
    torch.testing.assert_close(matched, want)


def test_nce_with_per_slice_audio_averages_each_slice_best_patch() -> None:
    # Two clips, two slices of one patch each. Clip 0's audio matches its own patches
    # in both slices; clip 1's matches its own in slice 0 only (slice 1 is orthogonal).
    audio = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]]])
    patches = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]])
    # Pair similarities, mean over slices: s(0,0)=1, s(0,1)=0, s(1,0)=1/2, s(1,1)=1/2.
    logits = torch.tensor([[1.0, 0.0], [0.5, 0.5]]) / 0.1
    targets = torch.arange(2)
    want = (
        torch.nn.functional.cross_entropy(logits, targets)
        + torch.nn.functional.cross_entropy(logits.T, targets)
    ) / 2
    torch.testing.assert_close(audio_video_nce(audio, patches, 0.1), want)


@pytest.mark.parametrize("mix", ["guided", "box", "none"])
def test_unlabelled_terms_weight_mix_and_contrast(mix: str) -> None:
    model = _model(
        {"video": VIDEO, "audio": AUDIO},
        mix=mix,
        mix_weight=2.0,
        contrastive_weight=0.5,
        box_side=8,
    )
    batch = _batch(4)
    out = model(batch)
    step = UnlabelledStep(batch, batch, out, out, torch.tensor([0, 1, 2, 3]), torch.ones(4))
    torch.manual_seed(0)
    terms = model.unlabelled_terms(step)
    torch.testing.assert_close(
        terms["contrastive"], 0.5 * audio_video_nce(out.audio, out.patches, 0.1)
    )
    assert ("mix" in terms) == (mix != "none")
    if mix != "none":
        assert terms["mix"] > 0
        assert step.metrics["mix_share"] == 1 and step.metrics["mix_hard_share"] == 1


def test_confident_mix_targets_drop_every_clip_of_an_unsure_teacher() -> None:
    model = _model({"video": VIDEO, "audio": AUDIO}, mix="box", mix_targets="confident")
    batch = _batch(4)
    out = model(batch)
    step = UnlabelledStep(batch, batch, out, out, torch.tensor([0, 1, 2, 3]), torch.zeros(4))
    assert model.unlabelled_terms(step)["mix"] == 0
    assert step.metrics["mix_share"] == 0


def _unsure_step(model, batch, peak: tuple[int, int]) -> UnlabelledStep:
    """A step whose teacher is unsure (uniform logits, no clip kept) and whose
    localisation map peaks at patch ``peak`` (row, column) in every clip and slice."""
    out = model(batch)
    maps = torch.zeros(4, 2, 2, 2)
    maps[:, :, peak[0], peak[1]] = 1.0
    teacher = AVOutput(logits=torch.zeros(4, 5), localisation=maps)
    return UnlabelledStep(
        batch, batch, teacher, out, torch.zeros(4, dtype=torch.long), torch.zeros(4)
    )


def test_an_unsure_teacher_still_gives_a_mix_term_that_depends_on_the_region() -> None:
    model = _model({"video": VIDEO, "audio": AUDIO}, mix="guided", box_side=8)
    batch = _batch(4)
    losses = []
    for peak in [(0, 0), (1, 1)]:  # the top-left or the bottom-right 8 × 8 box is pasted
        torch.manual_seed(0)  # the same partners both times
        step = _unsure_step(model, batch, peak)
        losses.append(model.mix_loss(step))
        assert step.metrics["mix_share"] == 1 and step.metrics["mix_hard_share"] == 0
    # Uniform targets: the loss is the mean cross-entropy to uniform, ≥ ln 5.
    assert all(loss >= math.log(5) - 1e-6 for loss in losses)
    assert abs(losses[0] - losses[1]) > 1e-4


def test_tube_mix_trains_a_video_only_model() -> None:
    model = _model({"video": VIDEO}, mix="tube")
    batch = {"video": _batch(4)["video"]}
    out = model(batch)
    step = UnlabelledStep(batch, batch, out, out, torch.tensor([0, 1, 2, 3]), torch.ones(4))
    terms = model.unlabelled_terms(step)
    assert set(terms) == {"mix"} and terms["mix"].requires_grad
