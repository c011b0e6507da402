"""Tests of stage training: an interrupted stage resumes exactly; transcripts stop at "?"."""

from __future__ import annotations

import pytest
import torch

from polymodal.errors import ConfigError
from polymodal.methods.nexus_o.recipe import StageConfig, train_stage
from polymodal.methods.nexus_o.stages import StageModule, stage_collator, transcribe


class Interrupted(Exception):
    """Stands in for a killed process."""


@pytest.mark.slow
def test_an_interrupted_stage_resumes_to_the_same_weights(
    omni_factory, samples, tmp_path, monkeypatch
):
    make_omni = omni_factory

    def stage(folder: str) -> StageConfig:
        return StageConfig(stage=1, epochs=2, batch_size=2, out_dir=str(tmp_path / folder))

    straight = make_omni()
    train_stage(straight, samples, stage("straight"))

    start = StageModule.on_train_epoch_start

    def stop_at_second_epoch(self: StageModule) -> None:
        if self.current_epoch == 1:
            raise Interrupted
        start(self)

    resumed = make_omni()
    monkeypatch.setattr(StageModule, "on_train_epoch_start", stop_at_second_epoch)
    with pytest.raises(Interrupted):
        train_stage(resumed, samples, stage("resumed"))
    monkeypatch.setattr(StageModule, "on_train_epoch_start", start)
    with pytest.raises(ConfigError, match="pass --resume to continue it"):
        train_stage(make_omni(), samples, stage("resumed"))
    resumed = make_omni()  # a new process: the weights come from the checkpoint
    train_stage(resumed, samples, stage("resumed"), resume=True)

    expected = straight.model.state_dict()
    assert any(not torch.equal(v, make_omni().model.state_dict()[k]) for k, v in expected.items())
    for name, value in resumed.model.state_dict().items():
        torch.testing.assert_close(value, expected[name], rtol=0, atol=0)


def test_transcripts_end_at_the_question_mark(omni, samples, monkeypatch):
    model = omni.model
    batch = stage_collator(model, 1)(samples)
    vocab = model.vlm.get_output_embeddings().weight.shape[0]
    question_mark, red = omni.tokenizer.token_to_id("?"), omni.tokenizer.token_to_id("red")
    forward = model.vlm.forward

    def script(tokens):
        """The LM says ``tokens`` in turn, whatever it is shown."""
        calls = iter(tokens)

        def scripted(*args, **kwargs):
            out = forward(*args, **kwargs)
            out.logits = torch.zeros(len(samples), 1, vocab)
            out.logits[:, -1, next(calls)] = 1.0
            return out

        monkeypatch.setattr(model.vlm, "forward", scripted)

    script([red, red, question_mark, red])
    assert transcribe(model, batch, question_mark, max_words=8) == [[red, red, question_mark]] * 3
    script([red, red, red])
    assert transcribe(model, batch, question_mark, max_words=2) == [[red, red]] * 3
