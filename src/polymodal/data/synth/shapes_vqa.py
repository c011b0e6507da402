"""Shapes-VQA: the embedded visual-question-answering data set.

Each item is a procedurally drawn scene (see :mod:`.shapes_render`: 1-6 coloured
shapes of two sizes on a plain or textured background) and one templated question
with a one-word answer. Five question types:

=========  ==============================================  ==================
type       template                                        answers
=========  ==============================================  ==================
color      what color is the {shape} ?                     a colour
shape      what shape is the {color} object ?              a shape
count      how many objects are there ?                    one ... six
           how many {color} objects are there ?  (dense)   one ... six
exist      is there a {color} {shape} ?                    yes / no
relation   is the {color} {shape} left of the {color} {shape} ?   yes / no
=========  ==============================================  ==================

In the ``dense`` layout (:mod:`.shapes_render`: a 24 × 24 patch grid, objects
over several patches) a count question names a colour of the scene, so it needs
the question's words as well as the image.

A question is only asked when it has exactly one answer: ``color`` needs a shape
that occurs once, ``shape`` a colour that occurs once, ``relation`` two objects
each unique in (colour, shape) and at least a tenth of the image apart
horizontally. The type is drawn uniformly among those the scene allows; yes and
no are equally likely, and a ``no`` to ``exist`` names a colour or a shape that is
in the scene whenever one can.

Text is tokenised by a word-level tokenizer built with the ``tokenizers``
library and saved beside the data (``tokenizer.json``); questions are stored as
``text_ids`` of fixed length, right-padded with ``<pad>``. A sample is::

    image          (3, H, W) float32 in [0, 1]
    text_ids       (L,) int64 question tokens, then <pad>
    label          () int64 index of the answer in ANSWERS
    question_type  () int64 index in QUESTION_TYPES
    index          () int64 position in the split
    scene          () int64 the scene (image) the question is about

The training split asks several questions about each scene (``train_questions``,
consecutive items), the way instruction-tuning data holds several turns about one
image; validation and test ask one question per scene.

The cache folder holds ``{train,val,test}.safetensors`` (one uint8 image per
scene, and per item its scene, question and answer), ``scenes.safetensors``
(every object of every scene, for analysis and figures) and ``tokenizer.json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor
from torch.utils.data import Dataset

from polymodal.data.cache import cached_build
from polymodal.data.options import check_option_types
from polymodal.data.registry import register_dataset
from polymodal.data.synth.shapes_render import (
    COLORS,
    DENSE_CELL,
    FIELDS,
    LAYOUTS,
    SHAPES,
    Scene,
    render,
    sample_scene,
)
from polymodal.data.synth.shapes_vocab import (
    ANSWERS,
    NUMBERS,
    PAD,
    QUESTION_TYPES,
    SPECIAL_TOKENS,
    TEMPLATE_WORDS,
    TEXT_WORDS,
    UNK,
)
from polymodal.errors import ConfigError, DataError

VERSION = "3"
SPLITS = ("train", "val", "test")
TEXT_LENGTH = 12
"""Stored length of ``text_ids`` (the longest question has 11 tokens)."""


@dataclass(frozen=True)
class ShapesVQAConfig:
    """Everything a Shapes-VQA build depends on (the cache key).

    Args:
        seed: base seed; split ``i`` draws from ``default_rng([seed, i])``.
        train: items in the training split (``val``, ``test`` likewise).
        image_size: side of the square images in pixels (64-96 suits the shapes).
        min_objects: fewest objects per scene.
        max_objects: most objects per scene.
        textured: probability of a textured background.
        layout: object placement, ``"grid"``, ``"free"`` or ``"dense"`` (see
            :mod:`.shapes_render`; ``dense`` also asks colour-conditioned counts).
        grid: patches per side of the ``grid`` and ``dense`` layouts (the VLM's).
        train_questions: questions asked about each training scene (distinct where
            the scene allows); the items of one scene are consecutive and share
            its ``scene`` index, so a training batch can ask them in one
            conversation. Validation and test ask one question per scene.
    """

    seed: int = 0
    train: int = 32000
    val: int = 2000
    test: int = 2000
    image_size: int = 64
    min_objects: int = 1
    max_objects: int = 6
    textured: float = 0.5
    layout: str = "grid"
    grid: int = 8
    train_questions: int = 4

    def size(self, split: str) -> int:
        return int(getattr(self, split))

    def questions(self, split: str) -> int:
        """Questions per scene in ``split``."""
        return self.train_questions if split == "train" else 1


class Question(NamedTuple):
    """One templated question about a scene."""

    kind: int  # index in QUESTION_TYPES
    text: str
    answer: str


def _once(values: np.ndarray, n: int) -> np.ndarray:
    """The values in ``range(n)`` that occur exactly once in ``values``."""
    return np.flatnonzero(np.bincount(values, minlength=n) == 1)


def _relation_pairs(scene: Scene, min_gap: float) -> list[tuple[int, int]]:
    """Ordered pairs of objects each unique in (colour, shape), ``min_gap`` apart in x."""
    combos = scene.column("color").astype(int) * len(SHAPES) + scene.column("shape").astype(int)
    unique = [i for i in range(len(scene)) if (combos == combos[i]).sum() == 1]
    xs = scene.column("x")
    return [(a, b) for a in unique for b in unique if a != b and abs(xs[a] - xs[b]) >= min_gap]


def _name(scene: Scene, i: int) -> str:
    color, shape = int(scene.objects[i, 1]), int(scene.objects[i, 0])
    return f"{COLORS[color]} {SHAPES[shape]}"


def ask(
    scene: Scene, rng: np.random.Generator, image_size: int = 64, by_color: bool = False
) -> Question:
    """Draw a question the scene answers unambiguously (see the module doc).

    Args:
        scene: the scene to ask about (at least one object).
        rng: draws the type, the object(s) asked about and yes/no.
        image_size: the scene's image side, for the minimal left/right gap.
        by_color: count questions name a colour of the scene (``dense`` layout).

    Returns:
        The :class:`Question`.
    """
    shapes = scene.column("shape").astype(int)
    colors = scene.column("color").astype(int)
    single_shapes = _once(shapes, len(SHAPES))
    single_colors = _once(colors, len(COLORS))
    pairs = _relation_pairs(scene, image_size / 10)
    feasible = [
        kind
        for kind, ok in zip(
            QUESTION_TYPES,
            (len(single_shapes) > 0, len(single_colors) > 0, True, True, len(pairs) > 0),
            strict=True,
        )
        if ok
    ]
    kind = feasible[int(rng.integers(len(feasible)))]
    k = QUESTION_TYPES.index(kind)
    if kind == "color":
        shape = int(rng.choice(single_shapes))
        color = int(colors[shapes == shape][0])
        return Question(k, f"what color is the {SHAPES[shape]} ?", COLORS[color])
    if kind == "shape":
        color = int(rng.choice(single_colors))
        shape = int(shapes[colors == color][0])
        return Question(k, f"what shape is the {COLORS[color]} object ?", SHAPES[shape])
    if kind == "count" and by_color:
        color = int(rng.choice(np.unique(colors)))
        count = int((colors == color).sum())
        return Question(k, f"how many {COLORS[color]} objects are there ?", NUMBERS[count - 1])
    if kind == "count":
        return Question(k, "how many objects are there ?", NUMBERS[len(scene) - 1])
    if kind == "exist":
        if rng.random() < 0.5:
            i = int(rng.integers(len(scene)))
            return Question(k, f"is there a {_name(scene, i)} ?", "yes")
        present = set(zip(colors.tolist(), shapes.tolist(), strict=True))
        absent = [
            (c, s) for c in range(len(COLORS)) for s in range(len(SHAPES)) if (c, s) not in present
        ]
        hard = [(c, s) for c, s in absent if c in colors or s in shapes]
        pool = hard or absent
        c, s = pool[int(rng.integers(len(pool)))]
        return Question(k, f"is there a {COLORS[c]} {SHAPES[s]} ?", "no")
    a, b = pairs[int(rng.integers(len(pairs)))]
    left = scene.column("x")[a] < scene.column("x")[b]
    text = f"is the {_name(scene, a)} left of the {_name(scene, b)} ?"
    return Question(k, text, "yes" if left else "no")


def build_tokenizer() -> Any:
    """The word-level tokenizer of Shapes-VQA (a ``tokenizers.Tokenizer``).

    Ids: the special tokens first (``<pad>`` = 0, ``<unk>``, ``<bos>``, ``<eos>``,
    ``<image>``), then every template word and answer in a fixed order.
    """
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    words = list(dict.fromkeys((*SPECIAL_TOKENS, *TEMPLATE_WORDS, *ANSWERS, *TEXT_WORDS)))
    tokenizer = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token=UNK))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    return tokenizer


def encode(tokenizer: Any, texts: list[str], length: int = TEXT_LENGTH) -> Tensor:
    """Token ids of ``texts``, right-padded with ``<pad>`` to ``length``: (N, length) int64.

    Raises:
        DataError: a text longer than ``length`` tokens or with an unknown word.
    """
    pad, unk = tokenizer.token_to_id(PAD), tokenizer.token_to_id(UNK)
    ids = torch.full((len(texts), length), pad, dtype=torch.int64)
    for i, encoding in enumerate(tokenizer.encode_batch(texts)):
        if len(encoding.ids) > length:
            raise DataError(f"text {texts[i]!r} has {len(encoding.ids)} tokens, more than {length}")
        if unk in encoding.ids:
            raise DataError(f"text {texts[i]!r} has a word outside the Shapes-VQA vocabulary")
        ids[i, : len(encoding.ids)] = torch.tensor(encoding.ids)
    return ids


def _questions(
    scene: Scene, rng: np.random.Generator, count: int, size: int, by_color: bool = False
) -> list[Question]:
    """``count`` questions about one scene, distinct while a few redraws find new ones."""
    questions: list[Question] = []
    asked: set[str] = set()
    for _ in range(count):
        for _ in range(8):
            question = ask(scene, rng, size, by_color)
            if question.text not in asked:
                break
        asked.add(question.text)
        questions.append(question)
    return questions


def _build_split(
    config: ShapesVQAConfig, offset: int, tokenizer: Any, progress: Any
) -> tuple[dict[str, Tensor], Tensor]:
    """Tensors of one split and its (scenes, max_objects, 1 + len(FIELDS)) scene table."""
    rng = np.random.default_rng([config.seed, offset])
    split = SPLITS[offset]
    n, size, per_scene = config.size(split), config.image_size, config.questions(split)
    count = -(-n // per_scene)  # scenes, rounded up; the last one may get fewer questions
    images = np.empty((count, 3, size, size), dtype=np.uint8)
    scenes = np.zeros((count, config.max_objects, 1 + len(FIELDS)), dtype=np.float32)
    backgrounds = np.empty(count, dtype=np.int64)
    questions: list[Question] = []
    for i in range(count):
        scene = sample_scene(
            rng,
            size,
            config.min_objects,
            config.max_objects,
            config.textured,
            config.layout,
            config.grid,
        )
        images[i] = render(scene, size, rng)
        questions += _questions(scene, rng, per_scene, size, config.layout == "dense")
        scenes[i, : len(scene), 0] = 1.0  # the "present" column
        scenes[i, : len(scene), 1:] = scene.objects
        backgrounds[i] = scene.background
        progress.update(per_scene)
    questions = questions[:n]
    tensors = {
        "images": torch.from_numpy(images),
        "scene": torch.arange(n) // per_scene,
        "text_ids": encode(tokenizer, [q.text for q in questions]),
        "label": torch.tensor([ANSWERS.index(q.answer) for q in questions]),
        "question_type": torch.tensor([q.kind for q in questions]),
        "index": torch.arange(n),
        "background": torch.from_numpy(backgrounds),
    }
    return tensors, torch.from_numpy(scenes)


def build(config: ShapesVQAConfig, folder: Path) -> dict[str, Any]:
    """Write the splits, the scene tables and ``tokenizer.json`` into ``folder``."""
    from tqdm.auto import tqdm

    tokenizer = build_tokenizer()
    tokenizer.save(str(folder / "tokenizer.json"))
    scene_tables: dict[str, Tensor] = {}
    sizes: dict[str, int] = {}
    total = sum(config.size(s) for s in SPLITS)
    with tqdm(total=total, desc="shapes_vqa", unit="item", disable=total < 5000) as progress:
        for offset, split in enumerate(SPLITS):
            tensors, scenes = _build_split(config, offset, tokenizer, progress)
            save_file(tensors, str(folder / f"{split}.safetensors"))
            scene_tables[split] = scenes
            sizes[split] = config.size(split)
    save_file(scene_tables, str(folder / "scenes.safetensors"))
    return {"sizes": sizes, "vocab_size": tokenizer.get_vocab_size(), "fields": list(FIELDS)}


def build_shapes_vqa(**options: Any) -> Path:
    """Build (or reuse from the cache) Shapes-VQA and return its folder.

    Args:
        **options: fields of :class:`ShapesVQAConfig`.

    Raises:
        ConfigError: an unknown option or an impossible size.
    """
    check_option_types(ShapesVQAConfig, options, "Shapes-VQA")
    try:
        config = ShapesVQAConfig(**options)
    except TypeError as error:
        valid = ", ".join(asdict(ShapesVQAConfig()))
        raise ConfigError(f"Shapes-VQA: {error}; valid options: {valid}") from error
    if min(config.train, config.val, config.test) <= 0:
        raise ConfigError("Shapes-VQA needs positive split sizes")
    if not 32 <= config.image_size <= 256:
        raise ConfigError(f"Shapes-VQA image_size must be 32-256 pixels, got {config.image_size}")
    if config.layout not in LAYOUTS:
        raise ConfigError(f"Shapes-VQA layout must be one of {LAYOUTS}, got {config.layout!r}")
    if config.layout == "grid" and (config.grid < 4 or config.image_size % config.grid):
        raise ConfigError(
            f"Shapes-VQA grid layout needs at least 4 cells per side dividing image_size "
            f"({config.image_size}), got grid={config.grid}; e.g. grid=8 for 8-pixel patches at 64"
        )
    if config.layout == "dense" and (
        config.grid < 2 * DENSE_CELL or config.grid % DENSE_CELL or config.image_size % config.grid
    ):
        raise ConfigError(
            f"Shapes-VQA dense layout needs a patch grid that is a multiple of {DENSE_CELL} "
            f"(at least {2 * DENSE_CELL}) and divides image_size ({config.image_size}), got "
            f"grid={config.grid}; e.g. grid=24 for 4-pixel patches at 96"
        )
    if not 1 <= config.min_objects <= config.max_objects <= len(NUMBERS):
        raise ConfigError(
            f"Shapes-VQA needs 1 <= min_objects <= max_objects <= {len(NUMBERS)}, "
            f"got {config.min_objects} and {config.max_objects}"
        )
    code = ("polymodal.data.synth.shapes_vqa",)
    return cached_build(
        "shapes_vqa", VERSION, asdict(config), lambda f: build(config, f), code=code
    )


class ShapesVQA(Dataset[dict[str, Tensor]]):
    """One split of Shapes-VQA (samples as in the module doc).

    Args:
        folder: a folder written by :func:`build_shapes_vqa`.
        split: ``"train"``, ``"val"`` or ``"test"``.
    """

    answers = ANSWERS
    question_types = QUESTION_TYPES
    num_classes = len(ANSWERS)

    def __init__(self, folder: Path, split: str) -> None:
        path = folder / f"{split}.safetensors"
        if not path.is_file():
            raise DataError(f"Shapes-VQA split file {path} does not exist; rebuild the data set")
        self.folder = folder
        self.split = split
        self.tensors = load_file(str(path))

    def __len__(self) -> int:
        return int(self.tensors["label"].shape[0])

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        t = self.tensors
        scene = t["scene"][index]
        return {
            "image": t["images"][scene].float() / 255.0,
            "text_ids": t["text_ids"][index],
            "label": t["label"][index],
            "question_type": t["question_type"][index],
            "index": t["index"][index],
            "scene": scene,
        }

    @cached_property
    def tokenizer(self) -> Any:
        """The saved word-level ``tokenizers.Tokenizer``."""
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(self.folder / "tokenizer.json"))

    @cached_property
    def scene_objects(self) -> Tensor:
        """(S, max_objects, 7) every scene's objects: ``present`` then the columns of FIELDS."""
        return load_file(str(self.folder / "scenes.safetensors"))[self.split]

    @property
    def scenes(self) -> Tensor:
        """(N, max_objects, 7) each item's scene (rows of :attr:`scene_objects`)."""
        return self.scene_objects[self.tensors["scene"]]

    def question(self, index: int) -> str:
        """The question of item ``index`` as text."""
        ids = [i for i in self.tensors["text_ids"][index].tolist() if i != 0]
        return " ".join(self.tokenizer.id_to_token(i) for i in ids)


def load_shapes_vqa(split: str, **options: Any) -> ShapesVQA:
    """The ``split`` of Shapes-VQA built with ``options`` (see :class:`ShapesVQAConfig`)."""
    if split not in SPLITS:
        raise ConfigError(f"Shapes-VQA has splits {SPLITS}, not {split!r}")
    return ShapesVQA(build_shapes_vqa(**options), split)


register_dataset("shapes_vqa")(load_shapes_vqa)
