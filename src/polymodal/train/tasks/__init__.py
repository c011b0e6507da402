"""The task kinds ``polymodal fit`` trains, each a :class:`~polymodal.train.tasks.base.TaskModule`.

A config's ``task:`` section picks one (``kind``, default ``classification``) and
passes ``options`` to its module. ``vqa``, the small VLM, is a sequence-generation
task with a recipe of its own (its config describes a Hugging Face LLaVA and its
two training stages); ``polymodal fit`` dispatches on the kind either way. A task
names the targets a sample must carry, its default model builder
(``model.options.builder`` overrides it), and what it reads off the data set to
size the model (classes, vocabulary).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from torch.utils.data import Dataset

from polymodal.errors import ConfigError
from polymodal.train.tasks.base import TaskModule


@dataclass(frozen=True)
class TaskSpec:
    """One registered task kind.

    Attributes:
        name: the ``task.kind`` that selects it.
        module: ``"package.module:Class"`` of its :class:`TaskModule`.
        builder: the default model builder, ``"package.module:function"``; empty
            when the config must name one (``model.options.builder``).
        targets: keys every training sample must carry.
        sizes: what the task reads off the data set: ``num_classes``, ``vocab_size``.
        streams: trains on a labelled and an unlabelled stream.
        summary: one line for ``--help`` and errors.
        recipe: ``"package.module:function"`` of a recipe of the task's own, for a
            task whose model and data need another config schema (the small VLM);
            called as ``recipe(config_path, overrides, resume=...)`` and returning
            ``(run folder, test metrics)``. Empty: :func:`polymodal.train.recipe.fit`.
    """

    name: str
    module: str
    builder: str
    targets: tuple[str, ...]
    sizes: tuple[str, ...]
    summary: str
    streams: bool = False
    recipe: str = ""

    def module_class(self) -> type[TaskModule]:
        path, _, attr = self.module.partition(":")
        return getattr(importlib.import_module(path), attr)  # type: ignore[no-any-return]


_MODULE = "polymodal.train.tasks"
TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            "classification",
            f"{_MODULE}.classification:ClassificationModule",
            "polymodal.modules.classifier:build_classifier",
            ("label",),
            ("num_classes",),
            "one class per sample (cross-entropy; accuracy, macro-F1)",
        ),
        TaskSpec(
            "multilabel_classification",
            f"{_MODULE}.multilabel:MultilabelModule",
            "polymodal.modules.classifier:build_multilabel_classifier",
            ("labels",),
            ("num_labels",),
            "several binary labels per sample (BCE; macro AUROC, macro/micro F1)",
        ),
        TaskSpec(
            "masked_reconstruction",
            f"{_MODULE}.reconstruction:MaskedReconstructionModule",
            "polymodal.modules.mae:build_mae",
            (),
            (),
            "MAE pre-training (MSE on hidden patches)",
        ),
        TaskSpec(
            "contrastive_retrieval",
            f"{_MODULE}.retrieval:ContrastiveRetrievalModule",
            "polymodal.modules.dual_encoder:build_dual_encoder",
            (),
            (),
            "query/document pairs (InfoNCE; recall@1, recall@5)",
        ),
        TaskSpec(
            "dense_prediction",
            f"{_MODULE}.dense:DensePredictionModule",
            "polymodal.modules.segmenter:build_segmenter",
            ("heatmap",),
            (),
            "a map per sample (segmentation: Dice, IoU; saliency: KLD, SIM, NSS)",
        ),
        TaskSpec(
            "sequence_generation",
            f"{_MODULE}.generation:SequenceGenerationModule",
            "polymodal.modules.captioner:build_captioner",
            ("tokens",),
            ("vocab_size",),
            "token sequences (next-token cross-entropy; token accuracy, exact match)",
        ),
        TaskSpec(
            "semi_supervised",
            f"{_MODULE}.semi_supervised:SemiSupervisedModule",
            "polymodal.modules.classifier:build_classifier",
            ("label",),
            ("num_classes",),
            "classification from a few labels and many unlabelled samples (EMA teacher)",
            streams=True,
        ),
        TaskSpec(
            "report_generation",
            f"{_MODULE}.report:ReportGenerationModule",
            "",  # no generic report model: a method names its own builder
            ("labels", "tokens"),
            ("num_labels",),
            "reports scored by the findings they state (model's own loss; clinical F1)",
        ),
        TaskSpec(
            "vqa",
            "polymodal.train.vlm:VQAModule",
            "polymodal.hf.llava:build_small_llava",
            (),
            (),
            "the small LLaVA-style VLM on Shapes-VQA (answer-token cross-entropy; exact match)",
            recipe="polymodal.train.vlm:fit_file",
        ),
        TaskSpec(
            "weak_grounding",
            f"{_MODULE}.weak_grounding:WeakGroundingModule",
            "",  # no generic grounding model: a method names its own builder
            ("label",),
            (),
            "maps learnt from image-level labels (model's own loss; KLD, SIM, NSS)",
        ),
        TaskSpec(
            "omni",
            "polymodal.methods.nexus_o.stages:StageModule",
            "",
            (),
            (),
            "the small VLM hearing spoken questions and speaking answers (Nexus-O stages)",
            recipe="polymodal.methods.nexus_o.recipe:fit_file",
        ),
    )
}


def task_spec(kind: str) -> TaskSpec:
    """The registered task ``kind``.

    Raises:
        ConfigError: an unknown kind (the message lists the known ones).
    """
    if kind not in TASKS:
        raise ConfigError(f"unknown task.kind {kind!r}; available: {', '.join(TASKS)}")
    return TASKS[kind]


def data_sizes(spec: TaskSpec, dataset: Dataset[Any], options: dict[str, Any]) -> dict[str, int]:
    """The sizes ``spec`` reads off ``dataset`` (or takes from ``options``, which win).

    ``num_classes``: ``dataset.num_classes``, else 1 + the largest ``label`` of an
    in-memory data set. ``num_labels``: the width of a sample's ``labels``.
    ``vocab_size``: ``dataset.vocab_size`` or ``len(dataset.vocab)``.
    Generation data sets may also name ``bos`` and ``eos`` ids, passed on likewise.

    Raises:
        ConfigError: a size neither the data set nor ``model.options`` gives.
    """
    sizes: dict[str, int] = {}
    for key in spec.sizes:
        value = options.get(key) or getattr(dataset, key, None)
        if value is None and key == "num_classes":
            labels = getattr(dataset, "tensors", {}).get("label")
            value = None if labels is None else int(labels.max()) + 1
        if value is None and key == "vocab_size" and hasattr(dataset, "vocab"):
            value = len(dataset.vocab)
        if value is None and key == "num_labels":
            value = int(dataset[0]["labels"].shape[-1])
        if value is None:
            raise ConfigError(f"cannot infer {key} from the data set; set model.options.{key}")
        sizes[key] = int(value)
    if "vocab_size" in spec.sizes:
        for key in ("bos", "eos"):
            if key not in options and getattr(dataset, key, None) is not None:
                sizes[key] = int(getattr(dataset, key))
    return sizes


__all__ = ["TASKS", "TaskModule", "TaskSpec", "data_sizes", "task_spec"]
