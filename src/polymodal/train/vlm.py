"""Training a small LLaVA-style VLM on Shapes-VQA: the VQA recipe.

The model is a ``transformers.LlavaForConditionalGeneration`` built from
:class:`polymodal.hf.llava.SmallLlavaConfig` with random weights, trained in two
stages, as LLaVA is built on a pretrained CLIP tower:

0. **vision pretraining** (:mod:`polymodal.train.vision_pretrain`): the CLIP-style
   tower learns to name the object under every patch, from the training scenes;
1. **VQA**: projector and language model learn to answer, the tower frozen, the
   loss on the answers only (``task.options.question_loss: true`` adds the
   question words, as a language model's own pre-training would). ``data.rows``
   says what a training row holds: ``conversations`` (the default) asks every
   question about one image in turn, ``questions`` asks one; evaluation asks one
   question per row and takes the greedy next token after the prompt (rows:
   :mod:`polymodal.train.vqa_batches`).

``attention: mma`` trains and evaluates with modality-mutual attention (AKI; masks
from :mod:`polymodal.modules.masks`); ``text:`` puts texts beside the questions and
``init_from:`` fine-tunes a finished run (the text-bias recipes).

A run folder holds ``config.yaml``, ``llava_config.json``, ``tokenizer.json``,
``model.safetensors`` (the weights after the last epoch), ``metrics.json`` (test
accuracy, overall and per question type), ``test_items.safetensors`` (each test
question's correctness and type, in test order: what paired comparisons of two
runs bootstrap over), ``history.json`` (validation accuracy
after each epoch, likewise) and Lightning's ``checkpoints/``
(safetensors weights, :mod:`polymodal.train.checkpoint`); after stage 0,
``vision_pretrain.json`` holds the tower's per-patch naming accuracy on the
validation scenes. :func:`cached_vlm`
keeps one run per config under the polymodal cache, so a bench trains it once.

Run from the shell (``polymodal eval RUN_DIR`` re-tests a finished run)::

    polymodal fit configs/shapes_vlm.yaml [section.key=value ...]
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import lightning as L
import torch
import yaml
from safetensors.torch import load_file, save_file
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from polymodal.data.cache import empty_run_folder, run_folder
from polymodal.data.synth.shapes_vocab import BOS, EOS, IMAGE, PAD, QUESTION_TYPES
from polymodal.data.synth.shapes_vqa import ShapesVQA, ShapesVQAConfig, load_shapes_vqa
from polymodal.errors import ConfigError
from polymodal.hf.llava import SmallLlavaConfig, build_small_llava, positions_from_mask
from polymodal.modules.masks import ATTENTION_KINDS, vlm_attention_mask
from polymodal.train.checkpoint import SafetensorsCheckpointIO, load_weights, save_weights
from polymodal.train.config import (
    DataConfig,
    OptimConfig,
    TaskConfig,
    TrainerConfig,
    apply_overrides,
    check_values,
    from_dict,
    read_config_file,
)
from polymodal.train.datamodule import EpochSeededSampler
from polymodal.train.stage_lines import EpochLines, say
from polymodal.train.vision_pretrain import (
    PatchAccuracy,
    VisionPretrainConfig,
    patch_accuracy,
    patch_head,
    patch_labels,
    pretrain_vision_tower,
)
from polymodal.train.vqa_batches import (
    PromptFormat,
    SceneConversations,
    VQABatch,
    VQACollator,
    normalize_pixels,
)

# ----------------------------------------------------------------------------- config


@dataclass
class VLMModelConfig:
    """Sizes of the small LLaVA (see :class:`~polymodal.hf.llava.SmallLlavaConfig`)."""

    patch_size: int = 8
    vision_hidden: int = 128
    vision_layers: int = 2
    text_hidden: int = 128
    text_layers: int = 3
    heads: int = 4
    mlp_ratio: int = 2
    vision_stem: str = "patch"
    """``patch`` (CLIP's) or ``conv`` (a hybrid ViT's stem, for small patches)."""


@dataclass
class TextTrainingConfig:
    """Texts beside the training questions (:mod:`polymodal.data.synth.shapes_text_vqa`).

    Args:
        mixture: ``None`` (no texts) or a mixture of
            :class:`~polymodal.data.synth.shapes_text_vqa.TextAugmentedVQA`
            (``trusting``, ``trusting_text_only``, ``sft``, ``sft_text_only``).
        seed: draws the texts and each item's condition.
        caution: where the caution sentence goes: ``before``/``after`` the text, ``none``.
        position: where the text goes: ``before``/``after`` the question, or
            ``both`` (each item's side drawn with ``seed``).
    """

    mixture: str | None = None
    seed: int = 0
    caution: str = "before"
    position: str = "before"


ROW_KINDS = ("conversations", "questions")
VQA_TASK_OPTIONS = ("question_loss",)
TEST_ITEMS = "test_items.safetensors"
STAGE0 = "vision_pretrain.json"


@dataclass
class VQADataConfig(DataConfig):
    """:class:`~polymodal.train.config.DataConfig` plus what a training row holds.

    Args:
        rows: ``"conversations"`` (every question about one image, one row per
            image) or ``"questions"`` (one question per row). Modality-mutual
            attention and text mixtures need ``"questions"`` (see :func:`training_rows`).
    """

    rows: str = "conversations"


@dataclass
class VLMConfig:
    """One VLM training run: ``data:``, ``model:``, ``optim:`` and ``trainer:`` sections."""

    name: str = "shapes-vlm"
    seed: int = 0
    out_dir: str = "runs/shapes_vlm"
    task: TaskConfig = field(default_factory=lambda: TaskConfig(kind="vqa"))
    """Always ``vqa`` (:mod:`polymodal.train.tasks`); it names this recipe. Its one
    option, ``question_loss: true``, also trains the LM on the question words
    (next-token loss), so it knows the questions' language as a pretrained LM knows
    its own; off, the loss is on the answers only."""
    attention: str = "causal"
    """``"causal"`` or ``"mma"`` (modality-mutual attention, AKI's rule in
    :mod:`polymodal.modules.masks`): image tokens also see the question, never the
    answer; no extra parameters."""
    vision_pretrain: VisionPretrainConfig = field(default_factory=VisionPretrainConfig)
    """Stage 0 (:mod:`polymodal.train.vision_pretrain`); ``steps: 0`` skips it."""
    freeze_vision_tower: bool = True
    """Keep the vision tower fixed in the VQA stage, as LLaVA keeps its CLIP tower."""
    text: TextTrainingConfig = field(default_factory=TextTrainingConfig)
    init_from: str | None = None
    """A finished VLM run folder whose weights start this run (fine-tuning); the
    vision pretraining stage is skipped then."""
    data: VQADataConfig = field(
        default_factory=lambda: VQADataConfig(
            name="shapes_vqa",
            options={
                "train": 64000,
                "val": 2000,
                "test": 2000,
                "image_size": 64,
                "train_questions": 8,
            },
        )
    )
    model: VLMModelConfig = field(default_factory=VLMModelConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-3, weight_decay=0.01))
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(max_epochs=8, patience=None, progress_bar=True)
    )

    def to_dict(self) -> dict[str, Any]:
        values = {**dataclasses.asdict(self), "trainer": self.trainer.to_dict()}
        # Options added later are left out at their defaults, so a run that does not
        # use them keeps the config (and cache key params) it had before they existed.
        if values["model"]["vision_stem"] == "patch":
            del values["model"]["vision_stem"]
        if not values["vision_pretrain"]["centres"]:
            del values["vision_pretrain"]["centres"]
        return values


def _merge(defaults: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` updated by ``values``, section by section (``options`` replaced whole)."""
    merged = dict(defaults)
    for key, value in values.items():
        base = defaults.get(key)
        nested = isinstance(value, dict) and isinstance(base, dict) and key != "options"
        merged[key] = _merge(base, value) if nested else value  # type: ignore[arg-type]
    return merged


def load_vlm_config(
    path: str | Path | None = None, overrides: Sequence[str] = (), check_device: bool = True
) -> VLMConfig:
    """Read a VLM YAML config plus dotted overrides; what neither sets keeps
    :class:`VLMConfig`'s defaults (the whole recipe when ``path`` is None).

    Args:
        path: the YAML file.
        overrides: dotted ``section.key=value`` overrides.
        check_device: require a GPU when ``trainer.accelerator`` asks for one.

    Returns:
        The checked config.

    Raises:
        ConfigError: as :func:`~polymodal.train.config.load_config`, or a data set
            other than Shapes-VQA, or an unknown attention rule.
    """
    values = read_config_file(path) if path is not None else {}
    merged = _merge(VLMConfig().to_dict(), apply_overrides(values, overrides))
    config = from_dict(VLMConfig, merged)
    check_values(config, check_device)
    if config.data.name != "shapes_vqa":
        raise ConfigError(f"the VLM recipe trains on shapes_vqa, not {config.data.name!r}")
    unknown = set(config.task.options) - set(VQA_TASK_OPTIONS)
    if config.task.kind != "vqa" or unknown:
        raise ConfigError(
            f"the VLM recipe is task kind 'vqa' with options among {VQA_TASK_OPTIONS}, "
            f"not {config.task}"
        )
    if not isinstance(config.task.options.get("question_loss", False), bool):
        raise ConfigError("task.options.question_loss must be true or false")
    check_rows(config)
    return config


def check_rows(config: VLMConfig) -> None:
    """Refuse training rows the attention rule or the texts cannot use.

    Under MMA an image token may see its row's question but nothing after the
    first answer (a later question has attended to that answer), so a conversation
    shows the image only its first question while evaluation shows it each one. A
    text mixture has text-only items, with no image to share between questions.

    Raises:
        ConfigError: an unknown attention rule or row kind, or conversations
            with MMA or with texts.
    """
    if config.attention not in ATTENTION_KINDS:
        raise ConfigError(f"attention must be one of {ATTENTION_KINDS}, got {config.attention!r}")
    rows = config.data.rows
    if rows not in ROW_KINDS:
        raise ConfigError(f"data.rows must be one of {ROW_KINDS}, got {rows!r}")
    if rows == "conversations" and config.attention == "mma":
        raise ConfigError(
            "attention=mma needs data.rows=questions: in a conversation the image would "
            "see only the first question"
        )
    if rows == "conversations" and config.text.mixture is not None:
        raise ConfigError(
            f"text.mixture={config.text.mixture!r} needs data.rows=questions "
            "(text-only items have no image to share)"
        )


def _check_grid(config: VLMConfig) -> None:
    """The grid layout puts one object cell on each patch; both sizes must agree."""
    defaults = ShapesVQAConfig()
    options = config.data.options
    if options.get("layout", defaults.layout) != "grid":
        return
    image_size = int(options.get("image_size", defaults.image_size))
    grid = int(options.get("grid", defaults.grid))
    patch = config.model.patch_size
    if grid * patch != image_size:
        raise ConfigError(
            f"Shapes-VQA grid {grid} x patch_size {patch} must equal image_size "
            f"{image_size}; set data.options.grid={image_size // patch}"
        )


# ----------------------------------------------------------------------------- model


def small_llava_config(model: VLMModelConfig, tokenizer: Any, image_size: int) -> SmallLlavaConfig:
    """The :class:`SmallLlavaConfig` of ``model`` for a tokenizer and image size."""
    return SmallLlavaConfig(
        vocab_size=tokenizer.get_vocab_size(),
        image_token_id=tokenizer.token_to_id(IMAGE),
        pad_token_id=tokenizer.token_to_id(PAD),
        bos_token_id=tokenizer.token_to_id(BOS),
        eos_token_id=tokenizer.token_to_id(EOS),
        image_size=image_size,
        **dataclasses.asdict(model),
    )


def model_mask(
    model: Any, attention: str, input_ids: Tensor, mask: Tensor, labels: Tensor | None = None
) -> Tensor:
    """The ``attention_mask`` to pass the model: the 2D padding mask for causal attention
    (transformers builds the causal rule itself), the (B, 1, T, T) MMA mask otherwise."""
    if attention == "causal":
        return mask
    image_token = model.config.image_token_id
    return vlm_attention_mask(attention, input_ids, mask, image_token, labels, model.dtype)


@torch.no_grad()
def predict_answers(model: Any, batch: VQABatch, attention: str = "causal") -> Tensor:
    """The model's greedy answer token for each prompt: (B,) ids (our own forward).

    Args:
        model: the VLM.
        batch: single-question rows.
        attention: the rule the model was trained with (``"causal"`` or ``"mma"``).
    """
    input_ids, attention_mask = batch.prompt()
    out = model(
        input_ids=input_ids,
        attention_mask=model_mask(model, attention, input_ids, attention_mask),
        position_ids=positions_from_mask(attention_mask),
        pixel_values=batch.pixel_values,
        logits_to_keep=1,
        use_cache=False,
    )
    return out.logits[:, -1].argmax(dim=-1)


class VQAAccuracy(NamedTuple):
    """Exact-match accuracy, overall and per question type."""

    overall: float
    per_type: dict[str, float]


def accuracy_by_type(correct: Tensor, question_type: Tensor) -> VQAAccuracy:
    """Accuracy from (N,) bool ``correct`` and (N,) ``question_type``."""
    per_type = {
        name: float(correct[question_type == i].float().mean())
        for i, name in enumerate(QUESTION_TYPES)
        if bool((question_type == i).any())
    }
    return VQAAccuracy(float(correct.float().mean()), per_type)


class VQAItems(NamedTuple):
    """Per-question test results, in test order.

    Attributes:
        correct: (N,) bool, the greedy answer equals the true one.
        question_type: (N,) int64 index into
            :data:`~polymodal.data.synth.shapes_vqa.QUESTION_TYPES`.
    """

    correct: Tensor
    question_type: Tensor

    def save(self, path: Path) -> None:
        save_file({"correct": self.correct, "question_type": self.question_type}, str(path))

    @classmethod
    def load(cls, path: Path) -> VQAItems:
        tensors = load_file(str(path))
        return cls(tensors["correct"], tensors["question_type"])


class VQAModule(L.LightningModule):
    """Answer-token cross-entropy training of a ``LlavaForConditionalGeneration``.

    Args:
        model: the VLM.
        optim: AdamW settings (one-cycle schedule over the trainer's steps).
        seed: base of the per-epoch reseeding (exact resumes).
        attention: ``"causal"`` or ``"mma"``, in training and evaluation alike.
    """

    def __init__(
        self,
        model: Any,
        optim: OptimConfig,
        seed: int = 0,
        attention: str = "causal",
    ) -> None:
        super().__init__()
        self.model = model
        self.optim = optim
        self.seed = seed
        self.attention = attention
        self._outcomes: list[tuple[Tensor, Tensor]] = []
        self.history: list[dict[str, float]] = []
        """Validation accuracy after each epoch, overall and per question type."""
        self.test_items: VQAItems | None = None
        """Per-question results of the last test pass (one process: Lightning's
        distributed sampler would interleave the processes' questions)."""

    def on_train_epoch_start(self) -> None:
        torch.manual_seed(self.seed * 100_003 + self.current_epoch * 101 + self.global_rank)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["vqa_history"] = list(self.history)  # a resumed run keeps the earlier epochs

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.history = list(checkpoint.get("vqa_history", []))

    def training_step(self, batch: VQABatch, batch_idx: int) -> Tensor:
        mask = model_mask(
            self.model, self.attention, batch.input_ids, batch.attention_mask, batch.labels
        )
        out = self.model(
            input_ids=batch.input_ids,
            attention_mask=mask,
            position_ids=positions_from_mask(batch.attention_mask),
            pixel_values=batch.pixel_values,
            labels=batch.labels,
            use_cache=False,
        )
        self.log("train_loss", out.loss, prog_bar=True, batch_size=batch.input_ids.shape[0])
        return out.loss

    def _score(self, batch: VQABatch) -> None:
        correct = predict_answers(self.model, batch, self.attention) == batch.answer_ids
        self._outcomes.append((correct.cpu(), batch.question_type.cpu()))

    def _items(self) -> VQAItems:
        """The scored questions since the last call, in loader order."""
        items = VQAItems(
            torch.cat([c for c, _ in self._outcomes]), torch.cat([k for _, k in self._outcomes])
        )
        self._outcomes.clear()
        return items

    def _accuracy(self) -> VQAAccuracy:
        return accuracy_by_type(*self._items())

    def validation_step(self, batch: VQABatch, batch_idx: int) -> None:
        self._score(batch)

    def on_validation_epoch_end(self) -> None:
        accuracy = self._accuracy()
        self.log("val_acc", accuracy.overall, prog_bar=True)
        if not self.trainer.sanity_checking:
            self.history.append(
                {"epoch": self.current_epoch, "val_acc": accuracy.overall, **accuracy.per_type}
            )

    def test_step(self, batch: VQABatch, batch_idx: int) -> None:
        self._score(batch)

    def on_test_epoch_end(self) -> None:
        self.test_items = self._items()
        accuracy = accuracy_by_type(*self.test_items)
        self.log("test_acc", accuracy.overall)
        for name, value in accuracy.per_type.items():
            self.log(f"test_acc_{name}", value)

    def configure_optimizers(self) -> Any:
        trainable = [p for p in self.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            trainable, lr=self.optim.lr, weight_decay=self.optim.weight_decay
        )
        steps = int(self.trainer.estimated_stepping_batches)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=self.optim.lr, total_steps=steps, pct_start=0.05
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


# ----------------------------------------------------------------------------- recipe


class TrainedVLM(NamedTuple):
    """A trained VLM and what it needs to answer questions."""

    model: Any
    tokenizer: Any
    fmt: PromptFormat
    config: VLMConfig
    metrics: dict[str, float]
    run_dir: Path
    test_items: VQAItems | None = None
    """Per-question test results (None for a run folder written before they were kept)."""


def _datasets(config: VLMConfig) -> dict[str, ShapesVQA]:
    return {s: load_shapes_vqa(s, **config.data.options) for s in ("train", "val", "test")}


def _loader(
    dataset: Dataset[Any], collator: VQACollator, config: VLMConfig, shuffle: bool
) -> DataLoader[Any]:
    sampler = EpochSeededSampler(len(dataset), config.seed) if shuffle else None  # type: ignore[arg-type]
    return DataLoader(
        dataset,
        batch_size=config.data.batch_size,
        sampler=sampler,
        collate_fn=collator,
        num_workers=config.data.num_workers,
    )


def training_rows(train: ShapesVQA, config: VLMConfig) -> Dataset[Any]:
    """What a training batch holds (``data.rows``): one conversation per image, or one
    question per row, with its text under a text mixture (:func:`check_rows` says
    which combinations are refused, and why)."""
    check_rows(config)
    text = config.text
    if text.mixture is None:
        return conversations(train) if config.data.rows == "conversations" else train
    from polymodal.data.synth.shapes_text_vqa import TextAugmentedVQA

    return TextAugmentedVQA(train, text.mixture, text.seed, text.caution, text.position)


def conversations(split: ShapesVQA) -> SceneConversations:
    """A Shapes-VQA split as one conversation per image (``data.rows: conversations``)."""
    return SceneConversations(split, split.tensors["scene"])


def steps_per_epoch(train: ShapesVQA, config: VLMConfig) -> int:
    """Optimizer steps in one epoch of ``config`` on ``train``: its training rows in
    batches of ``data.batch_size`` (the last batch may be short), on one device."""
    return math.ceil(len(training_rows(train, config)) / config.data.batch_size)  # type: ignore[arg-type]


def pretrain_stage(
    tower: Any, data: dict[str, ShapesVQA], config: VLMConfig, patch_size: int
) -> PatchAccuracy:
    """Stage 0 on the training scenes; returns the tower's per-patch accuracy on the
    validation scenes (how well it names what each patch shows)."""
    vp = config.vision_pretrain
    image_size = int(data["train"].tensors["images"].shape[-1])

    def labels(split: str) -> Tensor:
        return patch_labels(data[split].scene_objects, image_size, patch_size, vp.centres)

    if config.trainer.accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        tower.cuda()  # stage 0 outside Lightning: put it on the GPU
    torch.manual_seed(config.seed)
    head = patch_head(tower, vp)
    images = data["train"].tensors["images"]
    progress = config.trainer.progress_bar
    pretrain_vision_tower(
        tower, images, labels("train"), vp, normalize_pixels, config.seed, progress, head
    )
    val = data["val"].tensors["images"]
    return patch_accuracy(tower, head, val, labels("val"), normalize_pixels)


def fit_vlm(config: VLMConfig, resume: bool = False, lines: str | None = None) -> TrainedVLM:
    """Train the VLM a config describes, test it, and write its run folder.

    Args:
        config: the run.
        resume: continue from ``out_dir/checkpoints/last.ckpt`` when it exists (the
            checkpoint holds the pre-trained tower, so stage 0 is not run again);
            the resumed run ends with exactly the numbers of an uninterrupted one.
        lines: a label for one line per stage and epoch on stderr (validation
            accuracy so far; :mod:`polymodal.train.stage_lines`), or None for quiet.

    Returns:
        The :class:`TrainedVLM` (model in eval mode) with its test metrics.
    """
    from polymodal.train.recipe import LAST, _quiet_lightning

    _quiet_lightning()
    _check_grid(config)
    check_rows(config)
    out_dir = Path(config.out_dir)
    last = out_dir / "checkpoints" / LAST
    if not resume and last.exists():
        raise ConfigError(
            f"{out_dir} already holds a run; pass --resume to continue it or choose another out_dir"
        )
    resuming = resume and last.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(config.seed, workers=True, verbose=False)
    data = _datasets(config)
    tokenizer = data["train"].tokenizer
    image_size = int(data["train"][0]["image"].shape[-1])
    spec = small_llava_config(config.model, tokenizer, image_size)
    model = build_small_llava(spec, seed=config.seed)
    if config.init_from is not None:
        model.load_state_dict(load_weights(Path(config.init_from) / "model.safetensors"))
    elif config.vision_pretrain.steps and not resuming:
        if lines:
            say(lines, f"vision tower pre-training, {config.vision_pretrain.steps} steps")
        stage0 = pretrain_stage(model.model.vision_tower, data, config, spec.patch_size)
        (out_dir / STAGE0).write_text(json.dumps(stage0._asdict(), indent=2))
        if lines:
            say(lines, f"vision tower names {stage0.objects:.3f} of object patches (val)")
    model.model.vision_tower.requires_grad_(not config.freeze_vision_tower)
    fmt = PromptFormat.from_tokenizer(tokenizer, spec.num_visual_tokens)
    collator = VQACollator(fmt)  # text-augmented samples say which side their text is on
    train_collator = VQACollator(
        fmt, question_loss=bool(config.task.options.get("question_loss", False))
    )
    module = VQAModule(model, config.optim, config.seed, config.attention)
    t = config.trainer
    callbacks: list[L.Callback] = [
        L.pytorch.callbacks.ModelCheckpoint(dirpath=out_dir / "checkpoints", save_last=True)
    ]
    if lines:
        callbacks.append(EpochLines(lines, "val_acc"))
        say(lines, f"{'resuming' if resuming else 'training'} the VLM, {t.max_epochs} epochs")
    trainer = L.Trainer(
        max_epochs=t.max_epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        precision=t.precision,  # type: ignore[arg-type]
        logger=False,
        callbacks=callbacks,
        plugins=[SafetensorsCheckpointIO()],
        enable_progress_bar=t.progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=t.log_every_n_steps,
        check_val_every_n_epoch=t.val_every_n_epochs,
    )
    trainer.fit(
        module,
        train_dataloaders=_loader(
            training_rows(data["train"], config), train_collator, config, True
        ),
        val_dataloaders=_loader(data["val"], collator, config, shuffle=False),
        ckpt_path=str(last) if resuming else None,
    )
    tested = trainer.test(
        module, dataloaders=_loader(data["test"], collator, config, shuffle=False), verbose=False
    )
    metrics = {k: float(v) for k, v in tested[0].items()}
    items = module.test_items
    assert items is not None  # set by the test pass just run
    (out_dir / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    (out_dir / "llava_config.json").write_text(json.dumps(spec.to_dict(), indent=2))
    tokenizer.save(str(out_dir / "tokenizer.json"))
    save_weights(model.state_dict(), out_dir / "model.safetensors")
    items.save(out_dir / TEST_ITEMS)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    (out_dir / "history.json").write_text(json.dumps(module.history, indent=1))
    if lines:
        say(lines, f"VLM trained, test accuracy {metrics.get('test_acc', math.nan):.3f}")
    return TrainedVLM(model.eval(), tokenizer, fmt, config, metrics, out_dir, items)


def fit_file(
    path: str | Path, overrides: Sequence[str] = (), resume: bool = False
) -> tuple[Path, dict[str, float]]:
    """The ``vqa`` task's recipe for ``polymodal fit``: train the VLM a YAML file
    describes (plus overrides); returns the run folder and its test metrics."""
    trained = fit_vlm(load_vlm_config(path, overrides), resume=resume)
    return trained.run_dir, trained.metrics


def load_vlm(run_dir: str | Path) -> TrainedVLM:
    """Rebuild a trained VLM from its run folder (nothing is downloaded)."""
    from tokenizers import Tokenizer

    run_dir = Path(run_dir)
    if not (run_dir / "metrics.json").is_file():
        raise ConfigError(f"{run_dir} is not a finished VLM run (no metrics.json inside)")
    config = load_vlm_config(run_dir / "config.yaml", check_device=False)
    spec = SmallLlavaConfig(**json.loads((run_dir / "llava_config.json").read_text()))
    model = build_small_llava(spec)
    model.load_state_dict(load_weights(run_dir / "model.safetensors"))
    tokenizer = Tokenizer.from_file(str(run_dir / "tokenizer.json"))
    fmt = PromptFormat.from_tokenizer(tokenizer, spec.num_visual_tokens)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    path = run_dir / TEST_ITEMS
    items = VQAItems.load(path) if path.is_file() else None
    return TrainedVLM(model.eval(), tokenizer, fmt, config, metrics, run_dir, items)


def cached_vlm(config: VLMConfig, lines: str | None = None) -> TrainedVLM:
    """The trained VLM of ``config``, training it once under ``<cache>/vlm/<key>``.

    ``lines`` labels one line per stage and epoch on stderr (:func:`fit_vlm`); the
    label is not part of the cache key.

    The key covers the config and the code of :mod:`polymodal.train.vlm` with all
    it imports (:func:`polymodal.data.cache.run_folder`).

    ``config.out_dir`` is replaced by the cache folder; an unfinished folder (a run
    killed midway) is resumed from its last checkpoint, or emptied and trained
    again when it has none.
    """
    params = {k: v for k, v in config.to_dict().items() if k != "out_dir"}
    run_dir = run_folder("vlm", params, code=("polymodal.train.vlm",))
    if (run_dir / "metrics.json").is_file():
        if lines:
            say(lines, f"VLM {config.name} from the cache")
        return load_vlm(run_dir)
    resumable = (run_dir / "checkpoints" / "last.ckpt").exists()
    if not resumable:
        empty_run_folder(run_dir)
    return fit_vlm(dataclasses.replace(config, out_dir=str(run_dir)), resumable, lines)


def evaluate_vlm(run_dir: str | Path, split: str = "test") -> dict[str, float]:
    """Exact-match accuracy of a finished VLM run on one Shapes-VQA split.

    Args:
        run_dir: a run folder written by :func:`fit_vlm`.
        split: ``"test"`` or ``"val"``.

    Returns:
        ``{"test_acc": ..., "test_acc_<question type>": ...}`` (named ``test_*``
        for either split, as the test step logs them).
    """
    from polymodal.train.recipe import _quiet_lightning

    _quiet_lightning()
    vlm = load_vlm(run_dir)
    config = vlm.config
    collator = VQACollator(vlm.fmt)
    module = VQAModule(vlm.model, config.optim, config.seed, config.attention)
    trainer = L.Trainer(
        accelerator="auto",  # the run may come from another machine: use what this one has
        devices=1,
        logger=False,
        enable_progress_bar=config.trainer.progress_bar,
        enable_model_summary=False,
    )
    data = load_shapes_vqa(split, **config.data.options)
    tested = trainer.test(
        module, dataloaders=_loader(data, collator, config, shuffle=False), verbose=False
    )
    return {k: float(v) for k, v in tested[0].items()}
