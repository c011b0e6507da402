"""The staged Nexus-O recipe: ``polymodal fit configs/nexus_o_stage{1,2,3}.yaml``.

Stage 1 starts from a finished small-VLM run (``base``: a run folder, or empty
for the VLM recipe's cached run with ``base_overrides``), adds ``<audio>`` and the
audio parts; stages 2 and 3 start from the previous stage's run (``init_from``).
A run folder holds ``config.yaml``, ``tokenizer.json`` (with ``<audio>``),
``llava_config.json`` (the grown vocabulary), ``model.safetensors`` (the whole
omni model), ``metrics.json`` and, after stage 3, ``speech_units.safetensors``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor
from torch.utils.data import DataLoader

from polymodal.data.synth.shapes_vocab import ANSWERS
from polymodal.data.synth.speech import Utterance, Voice, synthesize
from polymodal.data.synth.spoken_shapes_vqa import load_spoken_shapes_vqa
from polymodal.errors import ConfigError
from polymodal.hf.llava import SmallLlavaConfig, build_small_llava
from polymodal.methods.nexus_o.model import NexusO, NexusOConfig
from polymodal.methods.nexus_o.speech_out import answer_frames, fit_units
from polymodal.methods.nexus_o.stages import StageModule, answer_correct, stage_collator, transcribe
from polymodal.methods.nexus_o.tokens import add_audio_token
from polymodal.train.checkpoint import SafetensorsCheckpointIO, load_weights, save_weights
from polymodal.train.config import apply_overrides, from_dict, read_config_file
from polymodal.train.datamodule import EpochSeededSampler
from polymodal.train.vlm import TrainedVLM, cached_vlm, load_vlm, load_vlm_config
from polymodal.train.vqa_batches import PromptFormat

OUTPUT_VOICE = Voice("en-US", pitch=50, rate=150)
"""The one voice Nexus-O answers in (espeak renders the training targets with it)."""


@dataclass
class StageConfig:
    """One stage run.

    Args:
        name, seed, out_dir: as every recipe.
        stage: 1 (ASR alignment), 2 (spoken-question VQA) or 3 (speech output).
        base: stage 1: a finished VLM run folder; empty: the VLM recipe's cached run.
        base_overrides: overrides of the VLM recipe when ``base`` is empty.
        init_from: stages 2, 3: the previous stage's run folder.
        data: Spoken Shapes-VQA options (Shapes-VQA options plus the voice pools).
        model: the added parts' sizes (stage 1; later stages keep the run's).
        epochs, batch_size, lr: the stage's optimisation.
    """

    name: str = "nexus-o"
    seed: int = 0
    out_dir: str = "runs/nexus_o"
    stage: int = 1
    base: str = ""
    base_overrides: list[str] = field(default_factory=list)
    init_from: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    epochs: int = 4
    batch_size: int = 32
    lr: float = 1e-3


def load_stage_config(path: str | Path | None, overrides: Sequence[str] = ()) -> StageConfig:
    values = read_config_file(path) if path is not None else {}
    values = apply_overrides(values, overrides)
    values.pop("task", None)
    config = from_dict(StageConfig, values)
    if config.stage not in (1, 2, 3):
        raise ConfigError(f"stage must be 1, 2 or 3, got {config.stage}")
    if config.stage > 1 and not config.init_from:
        raise ConfigError(
            f"stage {config.stage} needs init_from: the stage {config.stage - 1} run folder"
        )
    return config


class OmniRun:
    """A built omni model with its tokenizer and the VLM it grew from."""

    def __init__(
        self, model: NexusO, tokenizer: Any, llava: SmallLlavaConfig, base_metrics: dict
    ) -> None:
        self.model, self.tokenizer, self.llava, self.base_metrics = (
            model,
            tokenizer,
            llava,
            base_metrics,
        )


def grow_vlm(vlm: Any, tokenizer: Any, llava: SmallLlavaConfig, sizes: NexusOConfig) -> OmniRun:
    """Stage 1's start: ``vlm`` with ``<audio>`` added (in place) and fresh audio parts.

    Args:
        vlm: the base ``LlavaForConditionalGeneration``.
        tokenizer: its ``tokenizers.Tokenizer`` (copied; the copy gains ``<audio>``).
        llava: the VLM's architecture.
        sizes: the added parts' sizes.
    """
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(tokenizer.to_str())
    audio_id = add_audio_token(vlm, tokenizer)
    llava = dataclasses.replace(llava, vocab_size=tokenizer.get_vocab_size())
    fmt = PromptFormat.from_tokenizer(tokenizer, llava.num_visual_tokens)
    return OmniRun(NexusO(vlm, fmt, audio_id, sizes), tokenizer, llava, {})


def from_vlm(trained: TrainedVLM, sizes: NexusOConfig) -> OmniRun:
    """:func:`grow_vlm` on a finished VLM run (its test metrics kept as the base's)."""
    llava = SmallLlavaConfig(**json.loads((trained.run_dir / "llava_config.json").read_text()))
    run = grow_vlm(trained.model, trained.tokenizer, llava, sizes)
    run.base_metrics = dict(trained.metrics)
    return run


def load_omni(run_dir: str | Path) -> OmniRun:
    """Rebuild a finished stage run (nothing is downloaded)."""
    from tokenizers import Tokenizer

    run_dir = Path(run_dir)
    if not (run_dir / "metrics.json").is_file():
        raise ConfigError(f"{run_dir} is not a finished Nexus-O stage run (no metrics.json)")
    tokenizer = Tokenizer.from_file(str(run_dir / "tokenizer.json"))
    llava = SmallLlavaConfig(**json.loads((run_dir / "llava_config.json").read_text()))
    sizes = NexusOConfig(**json.loads((run_dir / "nexus_o.json").read_text()))
    fmt = PromptFormat.from_tokenizer(tokenizer, llava.num_visual_tokens)
    audio_id = tokenizer.token_to_id("<audio>")
    model = NexusO(build_small_llava(llava), fmt, audio_id, sizes)
    model.load_state_dict(load_weights(run_dir / "model.safetensors"))
    base = json.loads((run_dir / "base_metrics.json").read_text())
    return OmniRun(model.eval(), tokenizer, llava, base)


def save_omni(run: OmniRun, run_dir: Path, config: StageConfig, metrics: dict) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    run.tokenizer.save(str(run_dir / "tokenizer.json"))
    (run_dir / "llava_config.json").write_text(json.dumps(dataclasses.asdict(run.llava), indent=1))
    (run_dir / "nexus_o.json").write_text(
        json.dumps(dataclasses.asdict(run.model.config), indent=1)
    )
    (run_dir / "base_metrics.json").write_text(json.dumps(run.base_metrics, indent=1))
    (run_dir / "config.yaml").write_text(
        yaml.safe_dump(dataclasses.asdict(config), sort_keys=False)
    )
    save_weights(run.model.state_dict(), run_dir / "model.safetensors")
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")


def answer_units(run: OmniRun, seed: int = 0) -> dict[int, Tensor]:
    """Stage 3's targets: k-means units of each answer as the output voice says it.

    Also stores the centroids in the speech decoder (they turn units into sound).
    """
    waves = synthesize([Utterance(a, OUTPUT_VOICE) for a in ANSWERS], progress=False)
    frames = [answer_frames(torch.from_numpy(w)) for w in waves]
    centroids, sequences = fit_units(frames, run.model.config.units, seed)
    run.model.speech_decoder.centroids.copy_(centroids)
    return {int(run.model.fmt.answer_ids[i]): seq for i, seq in enumerate(sequences)}


def make_loader(
    dataset: Any, collate: Any, batch_size: int, shuffle: bool, seed: int
) -> DataLoader:
    """Batches of ``dataset``; shuffled by ``(seed, epoch)`` alone, so a resumed stage sees
    the batches an uninterrupted one would."""
    sampler = EpochSeededSampler(len(dataset), seed) if shuffle else None
    return DataLoader(dataset, batch_size, sampler=sampler, collate_fn=collate)


def train_stage(
    run: OmniRun,
    train: Any,
    config: StageConfig,
    units: dict[int, Tensor] | None = None,
    resume: bool = False,
) -> None:
    """Train ``run.model`` (in place) on ``train`` for one stage, checkpointing every epoch.

    Args:
        run: the omni model, at the stage's start.
        train: the stage's Spoken Shapes-VQA training samples.
        config: the stage (``out_dir`` receives ``checkpoints/last.ckpt``).
        units: stage 3's answer units (:func:`answer_units`).
        resume: continue from ``out_dir/checkpoints/last.ckpt`` when it exists; the
            stage then ends with the weights of an uninterrupted one.

    Raises:
        ConfigError: ``out_dir`` holds a checkpoint and ``resume`` is off.
    """
    import lightning as L

    from polymodal.train.recipe import LAST, _quiet_lightning

    _quiet_lightning()
    last = Path(config.out_dir) / "checkpoints" / LAST
    if last.exists() and not resume:
        raise ConfigError(
            f"{config.out_dir} already holds a stage run; pass --resume to continue it "
            "or choose another out_dir"
        )
    loader = make_loader(
        train, stage_collator(run.model, config.stage), config.batch_size, True, config.seed
    )
    module = StageModule(run.model, config.stage, config.lr, config.epochs * len(loader), units)
    checkpoints = L.pytorch.callbacks.ModelCheckpoint(last.parent, save_last=True)
    trainer = L.Trainer(
        max_epochs=config.epochs,
        accelerator="cpu",
        logger=False,
        callbacks=[checkpoints],
        plugins=[SafetensorsCheckpointIO()],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, loader, ckpt_path=str(last) if last.exists() else None)


def evaluate_stage(run: OmniRun, test: Any, batch_size: int = 64) -> dict[str, float]:
    """Test metrics: transcript word accuracy (stage 1), typed and spoken accuracy."""
    from polymodal.train.wer import corpus_wer

    model = run.model.eval()
    asr = make_loader(test, stage_collator(model, 1), batch_size, False, 0)
    refs, hyps = [], []
    end_id = run.tokenizer.token_to_id("?")
    for batch in asr:
        for ids, row in zip(batch.labels, transcribe(model, batch, end_id), strict=True):
            words = [int(t) for t in ids if t >= 0]
            refs.append(" ".join(run.tokenizer.id_to_token(t) for t in words))
            hyps.append(" ".join(run.tokenizer.id_to_token(t) for t in row))
    wer, low, high = corpus_wer(refs, hyps)
    metrics = {"test_wer": wer, "test_wer_low": low, "test_wer_high": high}
    for kind in ("typed", "spoken"):
        loader = make_loader(test, stage_collator(model, 2, (kind,)), batch_size, False, 0)
        metrics[f"test_acc_{kind}"] = float(answer_correct(model, loader).float().mean())
    return metrics


def base_vlm(config: StageConfig) -> TrainedVLM:
    """Stage 1's VLM: the ``base`` run folder, or the VLM recipe's cached run."""
    if config.base:
        return load_vlm(config.base)
    return cached_vlm(load_vlm_config(None, config.base_overrides))


def fit_stage(config: StageConfig, resume: bool = False) -> tuple[Path, dict[str, float]]:
    """Train one stage and test it; returns the run folder and the test metrics.

    ``resume`` continues an interrupted stage from its last epoch's checkpoint.
    """
    torch.manual_seed(config.seed)
    if config.stage == 1:
        run = from_vlm(base_vlm(config), from_dict(NexusOConfig, config.model, "model"))
    else:
        run = load_omni(config.init_from)
    train, test = (load_spoken_shapes_vqa(s, **config.data) for s in ("train", "test"))
    units = answer_units(run, config.seed) if config.stage == 3 else None
    train_stage(run, train, config, units, resume)
    metrics = evaluate_stage(run, test)
    out_dir = Path(config.out_dir)
    save_omni(run, out_dir, config, metrics)
    return out_dir, metrics


def fit_file(
    path: str | Path, overrides: Sequence[str] = (), resume: bool = False
) -> tuple[Path, dict[str, float]]:
    """``polymodal fit configs/nexus_o_stageN.yaml [--resume]``: one stage."""
    return fit_stage(load_stage_config(path, overrides), resume)
