"""ReT's training data for ``polymodal fit``: frozen-backbone features of (query,
document, hard negative) triples, registered as the dataset ``ret_features``.

A split comes from Shapes-Retrieval (``shapes``: its build options) or from a folder
of the user's own pairs (``folder``: :mod:`polymodal.methods.ret.pairs`). Both
backbones are frozen, so every query and document goes through them once: a split's
features are kept as two :class:`~polymodal.methods.ret.backbones.FeatureBank` files
in the cache, keyed by the source, the backbones and the code that made them. Sample
``i`` is query ``i`` with its document and hard negative, each side as

- ``<side>_text_layers`` (K, L, D_t): the text's tokens at the K tapped layers (an
  absent text: one zero token whose ``<side>_text_layers_mask`` is False);
- ``<side>_visual_layers`` (K, N, D_v), with ``<side>_visual_layers_mask`` () False
  where there is no image;

for side in ``query``, ``document``, ``negative``, plus ``document_id`` and
``negative_id`` (the rows in the split's collection).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor
from torch.utils.data import Dataset

from polymodal.data import specs
from polymodal.data.cache import run_folder
from polymodal.data.registry import register_dataset
from polymodal.data.synth.shapes_retrieval import load_shapes_retrieval
from polymodal.errors import ConfigError
from polymodal.methods.ret.backbones import (
    FeatureBank,
    FrozenBackbones,
    build_bank,
    build_vit,
    load_clip_vision,
    pretrain_vit,
)
from polymodal.methods.ret.model import SIDES, side_keys
from polymodal.methods.ret.pairs import Rows, RowsSplit, folder_fingerprint, load_pairs
from polymodal.modules.encoders import ViTEncoder

CODE = (
    "polymodal.methods.ret.data",
    "polymodal.methods.ret.backbones",
    "polymodal.methods.ret.pairs",
    "polymodal.data.synth.shapes_retrieval",
)
VISION = ("shapes_vit", "clip")

# Per side, the tokens of the K tapped layers; the text's length L varies per row.
for _side in SIDES:
    _text, _visual = side_keys(_side)
    if _text not in specs.MODALITIES:
        _layers = specs.ModalitySpec("(K, L, D_t)", (3,), length_axis=-2, variable=True)
        specs.register_modality(_text, _layers)
        specs.register_modality(_visual, specs.ModalitySpec("(K, N, D_v)", (3,)))
for _key in ("document_id", "negative_id"):  # rows of the split's collection
    if _key not in specs.TARGETS:
        specs.register_target(_key, specs.TargetSpec("()", (0,), "int64"))


@dataclass(frozen=True)
class FeatureSource:
    """Where a split's rows come from and which frozen backbones read them (the options
    of the ``ret_features`` dataset, and the cache key of its features).

    Args:
        shapes: Shapes-Retrieval build options (also the scenes ``shapes_vit`` is
            pre-trained on).
        folder: a folder of the user's pairs (:func:`~polymodal.methods.ret.pairs.load_pairs`);
            replaces Shapes-Retrieval as the source of rows when set.
        image_size: the side folder images are resized to.
        vision: ``shapes_vit`` (our ViT, pre-trained on Shapes scenes) or ``clip``.
        vit_steps: pre-training steps of ``shapes_vit`` (0: random frozen weights).
        clip_path: a local folder with ``CLIPVisionModel`` weights (``vision: clip``).
        clip_config: ``CLIPVisionConfig`` options of a randomly initialised CLIP instead.
    """

    shapes: dict[str, Any] = field(
        default_factory=lambda: {"train": 3000, "val": 600, "test": 1500}
    )
    folder: str | None = None
    image_size: int = 48
    vision: str = "shapes_vit"
    vit_steps: int = 300
    clip_path: str | None = None
    clip_config: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.vision not in VISION:
            raise ConfigError(f"ret_features vision must be one of {VISION}, got {self.vision!r}")

    def key(self) -> dict[str, Any]:
        """The cache key: the options, and the content of a user's folder."""
        key = asdict(self)
        if self.folder is not None:
            key["folder"] = folder_fingerprint(self.folder)
        return key


def source_of(options: dict[str, Any]) -> FeatureSource:
    """:class:`FeatureSource` of a config's ``data.options``.

    Raises:
        ConfigError: an unknown option (naming the known ones).
    """
    known = {f.name for f in fields(FeatureSource)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"ret_features has no options {unknown}; it has {sorted(known)}")
    return FeatureSource(**options)


def pretrained_vit(shapes: dict[str, Any], steps: int) -> ViTEncoder:
    """Our ViT pre-trained on the Shapes-Retrieval training scenes (cached by the data
    and steps); ``steps`` 0 gives the random initialisation (seed 0), frozen."""
    torch.manual_seed(0)
    vit = build_vit()
    if steps == 0:
        return vit.eval().requires_grad_(False)
    folder = run_folder("ret/vit", {"data": shapes, "steps": steps}, code=CODE)
    path = folder / "vit.safetensors"
    if path.is_file():
        vit.load_state_dict(load_file(str(path)))
        return vit.eval().requires_grad_(False)
    train = load_shapes_retrieval("train", **shapes).documents
    shown = train["image_mask"]
    pretrain_vit(vit, train["image"][shown], train["scene"][shown], steps)
    save_file(vit.state_dict(), str(path))
    return vit


def frozen_backbones(source: FeatureSource) -> FrozenBackbones:
    """The source's vision backbone and MiniLM, frozen."""
    from polymodal.hf.text_encoder import load_minilm

    if source.vision == "clip":
        vision: Any = load_clip_vision(source.clip_path, source.clip_config)
    else:
        vision = pretrained_vit(source.shapes, source.vit_steps)
    return FrozenBackbones(vision, load_minilm())


def split_rows(source: FeatureSource, split: str) -> RowsSplit:
    """The split's documents and queries as images, texts and masks."""
    if source.folder is not None:
        return load_pairs(source.folder, split, source.image_size)
    data = load_shapes_retrieval(split, **source.shapes)

    def rows(part: str) -> Rows:
        tensors = getattr(data, part)
        return Rows(
            tensors["image"], data.texts(part), tensors["image_mask"], tensors["text_ids_mask"]
        )

    q = data.queries
    return RowsSplit(rows("documents"), rows("queries"), q["target"], q["hard_negative"])


@dataclass
class SplitBanks:
    """One split's features and its query targets.

    Attributes:
        documents, queries: the banks.
        target, hard_negative: (N_q,) document rows of each query.
        kind: (N_q,) 0 image + text, 1 text only, 2 image only.
    """

    documents: FeatureBank
    queries: FeatureBank
    target: Tensor
    hard_negative: Tensor
    kind: Tensor


def feature_banks(
    source: FeatureSource, split: str, backbones: Callable[[], FrozenBackbones] | None = None
) -> SplitBanks:
    """The split's documents and queries through the frozen backbones (cached).

    Args:
        source: rows and backbones.
        split: ``"train"``, ``"val"`` or ``"test"``.
        backbones: gives the backbones when the banks must be built (default: loads them).
    """
    folder = run_folder("ret/banks", {"source": source.key(), "split": split}, code=CODE)
    rows = split_rows(source, split)
    paths = {part: folder / f"{part}.safetensors" for part in ("documents", "queries")}
    if not all(p.is_file() for p in paths.values()):
        encoder = (backbones or (lambda: frozen_backbones(source)))()
        for part, path in paths.items():
            r: Rows = getattr(rows, part)
            build_bank(encoder, r.images, r.texts, r.has_image, r.has_text).save(path)
    queries = FeatureBank.load(paths["queries"])
    kind = torch.where(queries.has_image, 0, 1)
    kind = torch.where(queries.has_text, kind, 2)
    return SplitBanks(
        FeatureBank.load(paths["documents"]), queries, rows.target, rows.hard_negative, kind
    )


def all_banks(source: FeatureSource) -> tuple[SplitBanks, SplitBanks, SplitBanks]:
    """Train, val and test banks; the backbones are loaded once, if at all."""
    loaded: list[FrozenBackbones] = []

    def backbones() -> FrozenBackbones:
        if not loaded:
            loaded.append(frozen_backbones(source))
        return loaded[0]

    train, val, test = (feature_banks(source, s, backbones) for s in ("train", "val", "test"))
    return train, val, test


def side_sample(bank: FeatureBank, row: int, side: str) -> dict[str, Tensor]:
    """One row of ``bank`` as the sample keys of ``side`` (float32)."""
    text_key, visual_key = side_keys(side)
    start, end = int(bank.offsets[row]), int(bank.offsets[row + 1])
    text = bank.text[start:end].transpose(0, 1).float()  # (K, L, D_t)
    sample = {visual_key: bank.visual[row].float()}
    if not bool(bank.has_text[row]) or end == start:
        k, width = bank.text.shape[1], bank.text.shape[2]
        sample[text_key] = torch.zeros(k, 1, width)
        sample[f"{text_key}_mask"] = torch.zeros(1, dtype=torch.bool)
    else:
        sample[text_key] = text
    if not bool(bank.has_image[row]):
        sample[f"{visual_key}_mask"] = torch.tensor(False)
    return sample


class TripleDataset(Dataset[dict[str, Tensor]]):
    """Sample ``i``: query ``i``, its document and its hard negative (see module doc).

    Args:
        banks: the split's features and targets.
    """

    def __init__(self, banks: SplitBanks) -> None:
        self.banks = banks

    def __len__(self) -> int:
        return len(self.banks.target)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        b = self.banks
        document, negative = int(b.target[index]), int(b.hard_negative[index])
        return {
            **side_sample(b.queries, index, "query"),
            **side_sample(b.documents, document, "document"),
            **side_sample(b.documents, negative, "negative"),
            "document_id": torch.tensor(document),
            "negative_id": torch.tensor(negative),
        }


@register_dataset("ret_features")
def ret_features(split: str, **options: Any) -> TripleDataset:
    """The ``split`` of ReT training triples (options: :class:`FeatureSource`)."""
    return TripleDataset(feature_banks(source_of(options), split))
