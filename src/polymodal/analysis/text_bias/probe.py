"""Running the text-bias probe on a VLM: image-only, text-only and image+text.

The probe asks every item under :data:`PROBE_CONDITIONS` — image only, and for
each text variant (matching, corrupted, irrelevant) text only and image+text —
through an adapter, and returns a :class:`TextBiasResult`. Adapters turn
:class:`Query` objects (an image or None, a question, a context text or None) into
answer strings:

- :class:`SmallVLMAdapter` for the small VLM of :mod:`polymodal.train.vlm`
  (greedy answer token, our own forward);
- :class:`LlavaAdapter` for any ``transformers.LlavaForConditionalGeneration``
  with a processor that has a chat template (greedy ``generate``).

Example::

    data = load_shapes_vqa("test")
    items = probe_items(data, ShapesTexts(data, seed=0), range(500))
    result = run_probe(SmallVLMAdapter(load_vlm("runs/shapes_vlm")), items, "before")
    result.counts("corrupted").tpr
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol

import torch
from torch import Tensor
from tqdm.auto import tqdm

from polymodal.analysis.text_bias.metrics import TextBiasResult
from polymodal.data.synth.shapes_text import CONTEXT_LENGTH, VARIANTS, ShapesTexts
from polymodal.data.synth.shapes_text_vqa import PROBE_CONDITIONS, Condition
from polymodal.data.synth.shapes_vocab import ANSWERS, QUESTION_TYPES, SPECIAL_TOKENS
from polymodal.data.synth.shapes_vqa import TEXT_LENGTH, ShapesVQA, encode
from polymodal.errors import ConfigError, DataError

POSITIONS = ("before", "after")


class Query(NamedTuple):
    """One question to a VLM.

    Attributes:
        image: (3, H, W) float image in [0, 1], or None (text-only).
        question: the question's words.
        context: a text to place beside the question, or None.
    """

    image: Tensor | None
    question: str
    context: str | None


class VQAAdapter(Protocol):
    """Answers queries; ``position`` says where a context goes relative to the question.

    ``vocabulary`` lists the answers the model can give (a word outside it is no
    answer); None for free-text models.
    """

    vocabulary: tuple[str, ...] | None

    def answer(self, queries: Sequence[Query], position: str) -> list[str]: ...


class ProbeItem(NamedTuple):
    """A VQA item with its texts.

    Attributes:
        image: (3, H, W) float image in [0, 1].
        question: the question's words.
        answer: the true answer.
        question_type: the question type's name.
        texts: text variant -> the text (caution included).
        text_answers: text variant -> the answer the text implies, or None.
    """

    image: Tensor
    question: str
    answer: str
    question_type: str
    texts: dict[str, str]
    text_answers: dict[str, str | None]


def probe_items(
    dataset: ShapesVQA, texts: ShapesTexts, indices: Iterable[int] | None = None
) -> list[ProbeItem]:
    """The items of a Shapes-VQA split (all, or ``indices``) with their texts."""
    chosen = range(len(dataset)) if indices is None else indices
    items = []
    for i in chosen:
        sample = dataset[i]
        variants = texts[i]
        items.append(
            ProbeItem(
                image=sample["image"],
                question=dataset.question(i),
                answer=ANSWERS[int(sample["label"])],
                question_type=QUESTION_TYPES[int(sample["question_type"])],
                texts={v: variants[v].text for v in VARIANTS},
                text_answers={v: variants[v].answer for v in VARIANTS},
            )
        )
    return items


def _query(item: ProbeItem, condition: Condition) -> Query:
    context = None if condition.text is None else item.texts[condition.text]
    return Query(item.image if condition.image else None, item.question, context)


def run_probe(
    adapter: VQAAdapter,
    items: Sequence[ProbeItem],
    position: str = "before",
    conditions: Sequence[Condition] = PROBE_CONDITIONS,
    progress: bool = False,
) -> TextBiasResult:
    """Ask every item under every condition.

    Args:
        adapter: the model behind a :class:`VQAAdapter`.
        items: the items, e.g. from :func:`probe_items`.
        position: texts ``"before"`` or ``"after"`` the question.
        conditions: which conditions to run (TPR needs image-only, and text-only
            and image+text of a variant).
        progress: show a progress bar over the conditions.

    Returns:
        The :class:`TextBiasResult`.
    """
    if position not in POSITIONS:
        raise ConfigError(f"text position must be one of {POSITIONS}, got {position!r}")
    if not items:
        raise DataError("the text-bias probe needs at least one item")
    answers = {}
    for condition in tqdm(conditions, desc="text-bias probe", disable=not progress):
        queries = [_query(item, condition) for item in items]
        answers[condition.name] = adapter.answer(queries, position)
    return TextBiasResult(
        truth=[item.answer for item in items],
        question_types=[item.question_type for item in items],
        answers=answers,
        text_answers={v: [item.text_answers[v] for item in items] for v in VARIANTS},
        position=position,
        vocabulary=adapter.vocabulary,
    )


def _batches(queries: Sequence[Query], size: int) -> Iterable[Sequence[Query]]:
    for start in range(0, len(queries), size):
        yield queries[start : start + size]


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


# --------------------------------------------------------------------------- adapters


class SmallVLMAdapter:
    """The small VLM of :mod:`polymodal.train.vlm`: prompts as in training, greedy answer token.

    A special token as the answer (``<pad>``, ``<eos>``, ...) is returned as ``""``,
    as Hugging Face decoding with ``skip_special_tokens`` gives it.

    Args:
        vlm: a ``TrainedVLM`` (from ``fit_vlm``, ``load_vlm`` or ``cached_vlm``).
        batch_size: queries per forward pass.
    """

    vocabulary: tuple[str, ...] | None = ANSWERS

    def __init__(self, vlm: Any, batch_size: int = 64) -> None:
        self.vlm = vlm
        self.batch_size = batch_size

    def _encode(self, texts: list[str], length: int) -> Tensor:
        try:
            return encode(self.vlm.tokenizer, texts, length)
        except DataError as error:
            raise DataError(
                f"{error} (a model whose tokenizer predates the text variations lacks their "
                "words: train it on the current Shapes-VQA)"
            ) from None

    def _samples(self, queries: Sequence[Query]) -> list[dict[str, Tensor]]:
        questions = self._encode([q.question for q in queries], TEXT_LENGTH)
        contexts = self._encode([q.context or "" for q in queries], CONTEXT_LENGTH)
        samples = []
        for query, question, context in zip(queries, questions, contexts, strict=True):
            sample = {
                "text_ids": question,
                "context_ids": context,
                "label": torch.tensor(0),  # unused: only the prompt is run
                "question_type": torch.tensor(0),
            }
            if query.image is not None:
                sample["image"] = query.image
            samples.append(sample)
        return samples

    @torch.no_grad()
    def answer(self, queries: Sequence[Query], position: str) -> list[str]:
        from lightning.fabric.utilities import move_data_to_device

        from polymodal.train.vlm import predict_answers
        from polymodal.train.vqa_batches import VQACollator

        collator = VQACollator(self.vlm.fmt, context_position=position)
        device = _device(self.vlm.model)
        answers: list[str] = []
        for chunk in _batches(queries, self.batch_size):
            batch = move_data_to_device(collator(self._samples(chunk)), device)
            tokens = [
                self.vlm.tokenizer.id_to_token(i)
                for i in predict_answers(self.vlm.model, batch, self.vlm.config.attention)
            ]
            answers += ["" if t in SPECIAL_TOKENS else t for t in tokens]  # as decoding skips them
        return answers


def _pil(image: Tensor) -> Any:
    """(3, H, W) float image in [0, 1] -> an RGB PIL image."""
    from PIL import Image

    pixels = (image.detach().float().clamp(0, 1) * 255).round().byte()
    return Image.fromarray(pixels.permute(1, 2, 0).cpu().numpy())


class LlavaAdapter:
    """Any ``LlavaForConditionalGeneration`` with a processor that has a chat template.

    Each query becomes one user turn — the image (unless text-only), then the
    context and the question in the chosen order, then ``instruction`` — rendered
    by the processor's chat template with the generation prompt; answers are the
    greedily generated words, special tokens removed.

    Args:
        model: the model (on any device).
        processor: its processor (``AutoProcessor.from_pretrained(folder)``).
        batch_size: queries per ``generate`` call.
        max_new_tokens: answer length limit.
        instruction: text appended to each prompt (e.g. ask for a one-word answer).
    """

    vocabulary: tuple[str, ...] | None = None

    def __init__(
        self,
        model: Any,
        processor: Any,
        batch_size: int = 8,
        max_new_tokens: int = 10,
        instruction: str = "Answer the question using a single word.",
    ) -> None:
        if getattr(processor, "chat_template", None) is None:
            raise ConfigError("the processor has no chat template; set processor.chat_template")
        self.model = model
        self.processor = processor
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.instruction = instruction

    def prompt(self, query: Query, position: str) -> str:
        """The chat-formatted prompt of one query."""
        parts = [query.question]
        if query.context:
            parts.insert(0 if position == "before" else 1, query.context)
        if self.instruction:
            parts.append(self.instruction)
        content: list[dict[str, str]] = [{"type": "text", "text": " ".join(parts)}]
        if query.image is not None:
            content.insert(0, {"type": "image"})
        messages = [{"role": "user", "content": content}]
        return str(self.processor.apply_chat_template(messages, add_generation_prompt=True))

    @torch.no_grad()
    def answer(self, queries: Sequence[Query], position: str) -> list[str]:
        tokenizer = self.processor.tokenizer
        device = _device(self.model)
        answers: list[str] = []
        for chunk in _batches(queries, self.batch_size):
            images = [_pil(q.image) for q in chunk if q.image is not None]
            inputs = self.processor(
                text=[self.prompt(q, position) for q in chunk],
                images=images or None,
                return_tensors="pt",
                padding=True,
                padding_side="left",  # generation continues every row at its end
            ).to(device)
            if "pixel_values" in inputs:
                inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
            new = out[:, inputs["input_ids"].shape[1] :]
            answers += [a.strip() for a in tokenizer.batch_decode(new, skip_special_tokens=True)]
        return answers


WORD_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }} :"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %} <image>{% else %} {{ part['text'] }}{% endif %}"
    "{% endfor %}{% endfor %}{% if add_generation_prompt %} answer :{% endif %}"
)
"""A chat template in plain words: ``user : <image> {text} answer :``."""


def word_level_processor(
    tokenizer: Any, image_size: int, patch_size: int, chat_template: str = WORD_CHAT_TEMPLATE
) -> Any:
    """A ``LlavaProcessor`` around a word-level tokenizer, e.g. Shapes-VQA's (nothing downloaded).

    With it, :class:`LlavaAdapter` runs a small VLM of :mod:`polymodal.train.vlm`
    like any Hugging Face LLaVA: images are CLIP-normalised as in training, and
    ``<image>`` expands to ``(image_size / patch_size)²`` placeholders.

    Args:
        tokenizer: a ``tokenizers.Tokenizer`` with ``<pad>``, ``<unk>``, ``<bos>``,
            ``<eos>`` and ``<image>``.
        image_size: the model's input side in pixels.
        patch_size: its vision patch side.
        chat_template: a Jinja chat template (every word of it should be in the vocabulary).
    """
    from transformers import CLIPImageProcessorPil, LlavaProcessor, PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<bos>",
        eos_token="<eos>",
        extra_special_tokens={"image_token": "<image>"},
    )
    images = CLIPImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    return LlavaProcessor(
        image_processor=images,
        tokenizer=fast,
        patch_size=patch_size,
        vision_feature_select_strategy="default",
        chat_template=chat_template,
        num_additional_image_tokens=1,  # CLIP's class token, which "default" drops
    )
