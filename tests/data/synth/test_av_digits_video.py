"""AV-Digits-Video: rendering, envelopes, boxes, labelled subsets and held-out sources."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from polymodal.data.synth.av_digits_video import (
    build_av_digits_video,
    digit_boxes,
    envelope,
    labelled_mask,
    load_av_digits_video,
    render_clips,
)
from polymodal.errors import ConfigError

TINY = {"train": 30, "val": 10, "test": 10, "voices": 20, "size": 24}


def test_envelope_is_the_windowed_rms_over_its_peak() -> None:
    clip = np.concatenate([np.zeros(4), np.full(4, 0.5), np.full(4, -1.0)]).astype(np.float32)
    np.testing.assert_allclose(envelope(clip, 3), [0.0, 0.5, 1.0])
    assert envelope(np.zeros(6, np.float32), 2).tolist() == [0.0, 0.0]


def test_render_puts_a_digit_of_the_asked_side_at_its_centre() -> None:
    scans = torch.ones(1, 1, 8, 8)  # a full square "digit"
    centres = torch.tensor([[[[8.0, 20.0], [16.0, 16.0]]]])  # (1, K=1, T=2, 2)
    scales = torch.tensor([[[8.0, 12.0]]])
    frames = render_clips(scans, centres, scales, 32)[0, :, 0]  # (T, 32, 32)
    for t, ((cy, cx), side) in enumerate(
        zip(centres[0, 0].tolist(), scales[0, 0].tolist(), strict=True)
    ):
        lit = torch.nonzero(frames[t] > 0.5)
        assert lit[:, 0].min() >= cy - side / 2 - 1 and lit[:, 0].max() <= cy + side / 2
        assert lit[:, 1].min() >= cx - side / 2 - 1 and lit[:, 1].max() <= cx + side / 2
        assert abs(len(lit) - side**2) <= 2 * side + 1
    box = digit_boxes(centres[0, 0], scales[0, 0], 32)
    torch.testing.assert_close(
        box, torch.tensor([[4.0, 16.0, 12.0, 24.0], [10.0, 10.0, 22.0, 22.0]])
    )


def test_labelled_mask_marks_the_first_clips_of_each_class() -> None:
    labels = torch.tensor([2, 0, 2, 1, 0, 2])
    assert labelled_mask(labels, 1).tolist() == [True, True, False, True, False, False]
    assert labelled_mask(labels, 2).tolist() == [True, True, True, True, True, False]


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="distractors"):
        build_av_digits_video(distractors=5)
    with pytest.raises(ConfigError, match="valid options"):
        build_av_digits_video(colour=1)
    with pytest.raises(ConfigError, match="splits"):
        load_av_digits_video("dev")


@pytest.mark.slow
def test_a_tiny_build_has_its_shapes_boxes_subsets_and_held_out_sources(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    train = load_av_digits_video("train", labelled_per_class=1, **TINY)
    sample = train[0]
    assert sample["video"].shape == (8, 1, 24, 24) and sample["audio"].shape == (40, 101)
    assert sample["boxes"].shape == (8, 4)
    assert train.tensors["label_mask"].sum() == 10  # one per class, 30 clips of 10 classes
    assert "label_mask" not in load_av_digits_video("val", **TINY).tensors
    # The sounding digit is drawn inside its box: the box holds bright pixels.
    video, boxes = train.tensors["video"].float(), train.tensors["boxes"].long()
    y0, x0, y1, x1 = boxes[0, 0].tolist()
    assert video[0, 0, 0, y0:y1, x0:x1].max() > 0.5
    # Train, val and test share no scan and no voice.
    provenance = load_file(str(build_av_digits_video(**TINY) / "provenance.safetensors"))
    for kind in ("scans", "voices"):
        used = {
            s: set(provenance[f"{s}.{kind}"].flatten().tolist()) for s in ("train", "val", "test")
        }
        assert not used["train"] & used["val"] and not used["train"] & used["test"]
        assert not used["val"] & used["test"]
