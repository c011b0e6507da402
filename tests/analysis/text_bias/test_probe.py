"""The text-bias probe: its wiring (a scripted model), our small VLM and a Hugging Face LLaVA."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from polymodal.analysis.text_bias.metrics import FollowCounts
from polymodal.analysis.text_bias.probe import (
    LlavaAdapter,
    ProbeItem,
    Query,
    SmallVLMAdapter,
    probe_items,
    run_probe,
    word_level_processor,
)
from polymodal.data.synth.shapes_text import ShapesTexts
from polymodal.data.synth.shapes_text_vqa import PROBE_CONDITIONS
from polymodal.data.synth.shapes_vqa import load_shapes_vqa
from polymodal.errors import DataError
from polymodal.hf.llava import build_small_llava
from polymodal.train.vlm import TrainedVLM, VLMConfig, predict_answers, small_llava_config
from polymodal.train.vqa_batches import PromptFormat, VQACollator

TINY_MODEL = {"patch_size": 16, "vision_hidden": 16, "text_hidden": 16, "text_layers": 1}


@pytest.fixture(scope="module")
def test_split(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POLYMODAL_HOME", str(tmp_path_factory.mktemp("home")))
        return load_shapes_vqa("test", train=8, val=8, test=16)


@pytest.fixture(scope="module")
def items(test_split) -> list[ProbeItem]:
    return probe_items(test_split, ShapesTexts(test_split, seed=0))


@pytest.fixture(scope="module")
def vlm(test_split) -> TrainedVLM:
    config = VLMConfig()
    for key, value in TINY_MODEL.items():
        setattr(config.model, key, value)
    tokenizer = test_split.tokenizer
    spec = small_llava_config(config.model, tokenizer, image_size=64)
    model = build_small_llava(spec, seed=0).eval()
    # Weights of unit gain, so that the random model's answers vary with the input
    # (at the usual 0.02 init, a model this small says the same word to everything).
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() >= 2:
                weight.copy_(
                    torch.randn(weight.shape, generator=generator) / weight.shape[-1] ** 0.5
                )
    fmt = PromptFormat.from_tokenizer(tokenizer, spec.num_visual_tokens)
    return TrainedVLM(model, tokenizer, fmt, config, {}, Path("unused"))


class TextBeliever:
    """A scripted VLM: says what the text implies, else what the image shows, else nothing."""

    vocabulary = None

    def __init__(self, items: Sequence[ProbeItem]) -> None:
        self.truth = {id(item.image): item.answer for item in items}
        self.said = {item.texts[v]: item.text_answers[v] for item in items for v in item.texts}

    def answer(self, queries: Sequence[Query], position: str) -> list[str]:
        answers = []
        for query in queries:
            said = self.said.get(query.context or "")
            seen = None if query.image is None else self.truth[id(query.image)]
            answers.append(said or seen or "")
        return answers


def test_the_probe_measures_a_model_that_believes_text(items: list[ProbeItem]) -> None:
    result = run_probe(TextBeliever(items), items)
    n = len(items)
    assert list(result.answers) == [c.name for c in PROBE_CONDITIONS]
    assert result.accuracy("image_only") == 1.0
    assert result.accuracy("text_only_matching") == 1.0
    assert result.accuracy("text_only_corrupted") == 0.0
    assert result.accuracy("image_corrupted") == 0.0
    assert result.counts("corrupted") == FollowCounts(text=n, image=0, same=0, neither=0)
    assert result.counts("matching") == FollowCounts(text=0, image=0, same=n, neither=0)
    # An irrelevant text says nothing: text-only answers are empty, image+text follow the image.
    assert result.counts("irrelevant") == FollowCounts(text=0, image=n, same=0, neither=0)
    assert result.tpr("corrupted") == 1.0 and result.tpr("irrelevant") == 0.0


def test_the_small_vlm_adapter_asks_as_the_training_batches_do(
    vlm: TrainedVLM, test_split, items: list[ProbeItem]
) -> None:
    adapter = SmallVLMAdapter(vlm, batch_size=5)
    queries = [Query(item.image, item.question, None) for item in items]
    answers = adapter.answer(queries, "before")
    batch = VQACollator(vlm.fmt)([test_split[i] for i in range(len(test_split))])
    tokens = [vlm.tokenizer.id_to_token(i) for i in predict_answers(vlm.model, batch).tolist()]
    assert answers == ["" if t.startswith("<") else t for t in tokens]
    assert len(set(answers)) > 3  # the model's answers do vary


def test_the_small_vlm_runs_every_condition_end_to_end(
    vlm: TrainedVLM, items: list[ProbeItem]
) -> None:
    result = run_probe(SmallVLMAdapter(vlm), items, position="after")
    assert result.position == "after"
    assert {len(a) for a in result.answers.values()} == {len(items)}
    rows = result.rows()
    assert [r.condition for r in rows] == [c.name for c in PROBE_CONDITIONS]
    for row in rows[4:]:  # image + text: every item is counted once
        assert row.text + row.image + row.same + row.neither == len(items)


def test_a_tokenizer_without_the_text_words_is_reported(
    vlm: TrainedVLM, items: list[ProbeItem]
) -> None:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    vocabulary = {w: i for w, i in vlm.tokenizer.get_vocab().items() if w != "wrong"}
    old = Tokenizer(WordLevel(vocabulary, unk_token="<unk>"))
    old.pre_tokenizer = Whitespace()
    adapter = SmallVLMAdapter(vlm._replace(tokenizer=old))
    with pytest.raises(DataError, match="predates the text variations"):
        adapter.answer([Query(None, items[0].question, items[0].texts["matching"])], "before")


# --------------------------------------------------------------------------- Hugging Face


def test_llava_prompts_place_the_text_and_the_image(vlm: TrainedVLM) -> None:
    adapter = LlavaAdapter(vlm.model, word_level_processor(vlm.tokenizer, 64, 16), instruction="")
    query = Query(torch.zeros(3, 64, 64), "what color is the circle ?", "the circle is red .")
    before = adapter.prompt(query, "before")
    assert before == "user : <image> the circle is red . what color is the circle ? answer :"
    after = adapter.prompt(query._replace(image=None), "after")
    assert after == "user : what color is the circle ? the circle is red . answer :"


def test_a_hugging_face_llava_runs_the_probe_end_to_end(
    vlm: TrainedVLM, items: list[ProbeItem]
) -> None:
    processor = word_level_processor(vlm.tokenizer, 64, 16)
    adapter = LlavaAdapter(vlm.model, processor, batch_size=8, max_new_tokens=2, instruction="")
    result = run_probe(adapter, items[:6], position="before")
    vocabulary = set(vlm.tokenizer.get_vocab())
    for answers in result.answers.values():
        assert len(answers) == 6
        assert all(set(a.split()) <= vocabulary for a in answers)
    # Left padding: a query answers the same in a mixed batch as alone.
    queries = [Query(None, items[0].question, items[0].texts["corrupted"])]
    queries += [Query(item.image, item.question, None) for item in items[1:4]]
    alone = [a for q in queries for a in adapter.answer([q], "before")]
    assert adapter.answer(queries, "before") == alone


def test_the_hugging_face_path_agrees_with_ours_on_the_small_vlm(
    vlm: TrainedVLM, items: list[ProbeItem]
) -> None:
    # A chat template that writes our training prompt: <bos> <image>×M text.
    template = (
        "<bos>{% for message in messages %}{% for part in message['content'] %}"
        "{% if part['type'] == 'image' %}<image>{% else %} {{ part['text'] }}{% endif %}"
        "{% endfor %}{% endfor %}"
    )
    processor = word_level_processor(vlm.tokenizer, 64, 16, chat_template=template)
    hf = LlavaAdapter(vlm.model, processor, max_new_tokens=1, instruction="")
    queries = [Query(item.image, item.question, item.texts["corrupted"]) for item in items]
    queries += [Query(None, item.question, item.texts["matching"]) for item in items]
    for position in ("before", "after"):
        ours = SmallVLMAdapter(vlm).answer(queries, position)
        assert len(set(ours)) > 3 and hf.answer(queries, position) == ours
