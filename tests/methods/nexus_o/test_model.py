"""Tests of the omni model: the <audio> token, the rows, the audio slots, the frozen parts."""

from __future__ import annotations

from dataclasses import replace

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from polymodal.data.synth.shapes_vocab import ANSWERS
from polymodal.errors import ConfigError
from polymodal.methods.nexus_o.batches import OmniCollator
from polymodal.methods.nexus_o.model import NexusO, NexusOConfig
from polymodal.methods.nexus_o.recipe import grow_vlm
from polymodal.methods.nexus_o.stages import STAGE_ROWS, StageModule, stage_collator
from polymodal.methods.nexus_o.tokens import AUDIO, add_audio_token


def test_adding_audio_keeps_every_old_id_and_its_embedding(tiny_vlm):
    model, tokenizer, _ = tiny_vlm
    old_vocab = tokenizer.get_vocab()
    embeddings = model.get_input_embeddings().weight.detach().clone()
    head = model.get_output_embeddings().weight.detach().clone()
    audio_id = add_audio_token(model, tokenizer)
    assert audio_id == len(old_vocab) == embeddings.shape[0]
    assert {w: tokenizer.token_to_id(w) for w in old_vocab} == old_vocab
    grown = model.get_input_embeddings().weight
    assert grown.shape == (embeddings.shape[0] + 1, embeddings.shape[1])
    assert torch.equal(grown[:-1], embeddings)  # old ids keep their rows, bit for bit
    assert torch.equal(model.get_output_embeddings().weight[:-1], head)
    torch.testing.assert_close(grown[-1], embeddings.mean(0))
    assert model.config.text_config.vocab_size == embeddings.shape[0] + 1
    assert add_audio_token(model, tokenizer) == audio_id  # idempotent
    assert tokenizer.encode(f"{AUDIO} circle").ids[0] == audio_id


def test_rows_by_hand(omni, samples):
    fmt, k = omni.model.fmt, omni.model.config.audio_tokens
    words = samples[0]["text_ids"][samples[0]["text_ids"] != fmt.pad].tolist()
    answer = int(fmt.answer_ids[0])
    batch = OmniCollator(fmt, omni.model.audio_id, k, ("asr", "spoken", "typed"))(samples[:1])
    asr, spoken, typed = (
        row[mask.bool()].tolist()
        for row, mask in zip(batch.input_ids, batch.attention_mask, strict=True)
    )
    audio, image = [omni.model.audio_id] * k, [fmt.image] * fmt.num_visual_tokens
    assert words[-1] == omni.tokenizer.token_to_id("?")
    assert asr == [fmt.bos, *audio, *words]  # the transcript ends at its question mark
    assert spoken == [fmt.bos, *image, *audio, answer, fmt.eos]
    assert typed == [fmt.bos, *image, *words, answer, fmt.eos]
    labelled = batch.labels[0][batch.labels[0] != -100].tolist()
    assert labelled == words
    assert batch.labels[1][batch.labels[1] != -100].tolist() == [answer, fmt.eos]
    assert batch.audio.shape == (2, samples[0]["audio"].numel())  # asr and spoken hear it
    assert batch.pixel_values.shape[0] == 2  # spoken and typed see it
    assert ANSWERS[0] == omni.tokenizer.id_to_token(answer)


def test_audio_slots_hold_the_adapter_tokens(omni, samples):
    model = omni.model.eval()
    batch = stage_collator(model, 1)(samples)
    embeds = model.embed(batch)
    features, mask = model.audio_encoder(batch.audio, batch.audio_lengths)
    tokens = model.adapter(features, mask)
    slots = batch.input_ids == model.audio_id
    torch.testing.assert_close(embeds[slots].view_as(tokens), tokens)
    plain = model.vlm.get_input_embeddings()(batch.input_ids)
    assert torch.equal(embeds[~slots], plain[~slots])
    # Padding after a clip does not change its tokens.
    longer = torch.nn.functional.pad(batch.audio, (0, 1600))
    again = model.adapter(*model.audio_encoder(longer, batch.audio_lengths))
    torch.testing.assert_close(again, tokens, atol=1e-5, rtol=1e-5)


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(before: dict[str, torch.Tensor], module: torch.nn.Module) -> bool:
    return all(torch.equal(before[k], v) for k, v in module.state_dict().items())


@pytest.mark.slow
@pytest.mark.parametrize("stage", [1, 2, 3])
def test_each_stage_trains_its_parts_and_nothing_else(omni, samples, stage):
    model = omni.model
    parts = ("audio_encoder", "adapter", "language_model", "vision", "speech_decoder")
    before = {name: _snapshot(model.part(name)) for name in parts}
    units = {int(a): torch.tensor([0, 1, 2, 1]) for a in model.fmt.answer_ids}
    loader = DataLoader(samples, batch_size=3, collate_fn=stage_collator(model, stage))
    module = StageModule(model, stage, lr=1e-2, total_steps=3, answer_units=units)
    trainer = L.Trainer(
        max_epochs=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(module, loader)
    trains = {
        1: {"audio_encoder", "adapter"},
        2: {"adapter", "language_model"},
        3: {"speech_decoder"},
    }
    for name in parts:
        assert _same(before[name], model.part(name)) == (name not in trains[stage]), name
    assert STAGE_ROWS[stage]


def test_unknown_stage_and_row_kind_are_named(omni):
    with pytest.raises(ConfigError, match=r"stage must be one of \[1, 2, 3\], got 4"):
        omni.model.set_stage(4)
    with pytest.raises(ConfigError, match="row kinds must be some of"):
        OmniCollator(omni.model.fmt, omni.model.audio_id, 4, ("image",))


def test_the_whisper_encoder_fills_the_same_slots(tiny_vlm, samples):
    vlm, tokenizer, llava = tiny_vlm
    sizes = NexusOConfig(audio_hidden=16, audio_layers=1, audio_heads=2, audio_tokens=4)
    run = grow_vlm(vlm, tokenizer, llava, replace(sizes, encoder="whisper"))
    batch = stage_collator(run.model, 1)(samples)
    features, mask = run.model.audio_encoder(batch.audio, batch.audio_lengths)
    assert features.shape == (3, 300, 16)  # 6 s window, 20 ms frames
    assert mask.sum(1).tolist() == [n // 320 + 1 for n in batch.audio_lengths.tolist()]
    run.model.set_stage(1)
    run.model(batch).loss.backward()
    assert run.model.audio_encoder.encoder.layers[0].fc1.weight.grad is not None
    with pytest.raises(ConfigError, match="encoder must be one of"):
        NexusO(vlm, run.model.fmt, run.model.audio_id, replace(sizes, encoder="wav2vec"))
