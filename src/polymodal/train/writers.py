"""The built-in prediction writers of ``polymodal predict``, one per task kind."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.torch import save_file
from torch import Tensor

from polymodal.train.predict import PredictionContext, register_writer


def _png(path: Path, image: np.ndarray) -> Path:
    """Write (H, W) or (H, W, 3) values in [0, 1] as an 8-bit PNG."""
    from PIL import Image

    pixels = (np.clip(image, 0.0, 1.0) * 255).round().astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _tensors(path: Path, tensors: dict[str, Tensor]) -> Path:
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path


@register_writer("classification")
@register_writer("semi_supervised")
def write_classes(
    out: Path, predictions: dict[str, Tensor], context: PredictionContext
) -> list[Path]:
    """``predictions.csv``: name, predicted class (and its name), then one probability per class."""
    probabilities = predictions["probabilities"]  # (N, C)
    classes = getattr(context.dataset, "classes", None)
    path = out / "predictions.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        header = ["name", "class", *(["class_name"] if classes else [])]
        writer.writerow([*header, *(f"p_{c}" for c in range(probabilities.shape[1]))])
        for name, row in zip(context.names, probabilities.tolist(), strict=True):
            best = int(np.argmax(row))
            named = [classes[best]] if classes else []
            writer.writerow([name, best, *named, *(f"{p:.6f}" for p in row)])
    return [path]


@register_writer("multilabel_classification")
def write_labels(
    out: Path, predictions: dict[str, Tensor], context: PredictionContext
) -> list[Path]:
    """``predictions.csv``: name, then each label's probability (columns named by
    the data set's ``findings`` when it has them)."""
    probabilities = predictions["probabilities"]  # (N, K)
    names = getattr(context.dataset, "findings", None) or [
        f"label_{k}" for k in range(probabilities.shape[1])
    ]
    path = out / "predictions.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", *names])
        for name, row in zip(context.names, probabilities.tolist(), strict=True):
            writer.writerow([name, *(f"{p:.6f}" for p in row)])
    return [path]


@register_writer("dense_prediction")
def write_heatmaps(
    out: Path, predictions: dict[str, Tensor], context: PredictionContext
) -> list[Path]:
    """Every map at full precision in ``heatmaps.safetensors``, and per input
    ``heatmaps/NAME.png`` (2D maps; a saliency map scaled to its maximum) or
    ``masks/NAME.nii.gz`` (3D masks of NIfTI inputs, on the input's own grid with
    its affine)."""
    maps = predictions["heatmap"].float()  # (N, H, W) or (N, D, H, W)
    files = [_tensors(out / "heatmaps.safetensors", {"heatmap": maps})]
    if maps.dim() == 4:
        return files + _nifti_masks(out / "masks", maps, context)
    folder = out / "heatmaps"
    folder.mkdir(exist_ok=True)
    saliency = context.config.task.options.get("target") == "saliency"
    for name, heatmap in zip(context.names, maps.numpy(), strict=True):
        shown = heatmap / max(float(heatmap.max()), 1e-12) if saliency else heatmap
        files.append(_png(folder / f"{name}.png", shown))
    return files


def _nifti_masks(folder: Path, maps: Tensor, context: PredictionContext) -> list[Path]:
    from polymodal.data.real.nifti import write_mask

    files = []
    for name, heatmap, volumes in zip(context.names, maps.numpy(), context.volumes, strict=True):
        like = volumes.get("ct") or next(iter(volumes.values()), None)
        if like is None or context.spacing is None:
            continue  # not a NIfTI input: its map is in heatmaps.safetensors
        folder.mkdir(exist_ok=True)
        files.append(write_mask(folder / f"{name}.nii.gz", heatmap, like, context.spacing))
    return files


@register_writer("masked_reconstruction")
def write_reconstructions(
    out: Path, predictions: dict[str, Tensor], context: PredictionContext
) -> list[Path]:
    """``reconstructions.safetensors`` (reconstruction, mask) and, for images,
    ``reconstructions/NAME.png`` (hidden patches predicted, visible ones as given)."""
    files = [_tensors(out / "reconstructions.safetensors", predictions)]
    reconstruction = predictions["reconstruction"].float()
    if reconstruction.dim() == 4 and reconstruction.shape[1] in (1, 3):  # (N, C, H, W) images
        folder = out / "reconstructions"
        folder.mkdir(exist_ok=True)
        for name, image in zip(context.names, reconstruction.numpy(), strict=True):
            pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)  # (H, W[, 3])
            files.append(_png(folder / f"{name}.png", pixels))
    return files


@register_writer("contrastive_retrieval")
def write_embeddings(
    out: Path, predictions: dict[str, Tensor], context: PredictionContext
) -> list[Path]:
    """``embeddings.safetensors``: the query and/or document embedding of every input
    (whichever sides its modalities feed), and ``names.json`` in row order."""
    names = out / "names.json"
    names.write_text(json.dumps(context.names))
    return [_tensors(out / "embeddings.safetensors", predictions), names]


@register_writer("sequence_generation")
def write_sequences(
    out: Path, predictions: dict[str, Tensor], context: PredictionContext
) -> list[Path]:
    """``generated.jsonl``: per input its name, token ids and, with the data set's
    vocabulary, the text (special tokens left out)."""
    vocab = getattr(context.dataset, "vocab", None)
    ends = {getattr(context.dataset, "bos", None), getattr(context.dataset, "eos", None)}
    path = out / "generated.jsonl"
    with path.open("w") as f:
        for name, row in zip(context.names, predictions["tokens"].tolist(), strict=True):
            ids = [t for t in row if t != -100]
            record: dict[str, object] = {"name": name, "tokens": ids}
            if vocab is not None:
                record["text"] = " ".join(vocab[t] for t in ids if t not in ends)
            f.write(json.dumps(record) + "\n")
    return [path]


@register_writer("report_generation")
def write_reports(out: Path, predictions: dict[str, Any], context: PredictionContext) -> list[Path]:
    """``reports.jsonl``: per input its name and generated report, and one
    ``reports/NAME.txt`` per input."""
    folder = out / "reports"
    folder.mkdir(exist_ok=True)
    files = []
    path = out / "reports.jsonl"
    with path.open("w") as f:
        for name, report in zip(context.names, predictions["reports"], strict=True):
            f.write(json.dumps({"name": name, "report": report}) + "\n")
            files.append(folder / f"{name}.txt")
            files[-1].write_text(report + "\n")
    return [path, *files]


@register_writer("weak_grounding")
def write_grounding(
    out: Path, predictions: dict[str, Tensor], context: PredictionContext
) -> list[Path]:
    """``heatmaps.safetensors`` (every map, summing to 1), per input
    ``heatmaps/NAME.png`` (the map scaled to its maximum) and ``overlays/NAME.png``
    (the input image with the map laid over it in red), and ``affordances.csv``
    naming the affordance each map grounds (the queried one, else the predicted)."""
    maps = predictions["heatmap"].float()  # (N, H, W)
    files = [_tensors(out / "heatmaps.safetensors", {"heatmap": maps})]
    for sub in ("heatmaps", "overlays"):
        (out / sub).mkdir(exist_ok=True)
    for name, heatmap, sample in zip(context.names, maps.numpy(), context.inputs, strict=True):
        shown = heatmap / max(float(heatmap.max()), 1e-12)
        files.append(_png(out / "heatmaps" / f"{name}.png", shown))
        image = sample["image"].float().numpy()  # (C, H, W) in [0, 1]
        rgb = np.repeat(image, 3, axis=0) if image.shape[0] == 1 else image[:3]
        alpha = 0.6 * shown[None]  # (1, H, W): the map's weight over the picture
        red = np.array([1.0, 0.0, 0.0])[:, None, None]
        files.append(
            _png(
                out / "overlays" / f"{name}.png",
                ((1 - alpha) * rgb + alpha * red).transpose(1, 2, 0),
            )
        )
    words = getattr(context.dataset, "affordances", None)
    path = out / "affordances.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "affordance"])
        for name, index in zip(context.names, predictions["label"].tolist(), strict=True):
            writer.writerow([name, words[index] if words else index])
    return [*files, path]
