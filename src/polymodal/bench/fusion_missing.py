"""The ``fusion`` check's missing-modality report: fusion models given one modality.

Every fusion head accepts a sample with a modality missing (``<m>_mask`` False),
but one trained on complete samples never learnt that path. The report measures,
for each fusion model, test accuracy with each modality removed for the whole test
set, beside the single-modality model of the modality that remains. It then
retrains the best fusion (chosen on validation) with **modality dropout** at rates
fixed before any run, :data:`RATES` (0.3 per modality, no tuning, so nothing is
chosen on test and the extra cost is one model per seed), and reports the target:

- missing one modality, it is within 2 points of the single-modality model of the
  modality that remains (paired difference > −0.02), for each modality;
- with both modalities, it loses at most 1 point against the same fusion trained
  without dropout (paired difference > −0.01).

Each part is a paired bootstrap over test items (:func:`paired_difference`) and
reads "met", "not met" or "inconclusive" like a verdict. It is a reported target,
not a part of the ``fusion`` claim's verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from polymodal.bench.claims import Table
from polymodal.bench.report import mean_std, table
from polymodal.bench.verdict import Part, decide, paired_difference

RATES = {"image": 0.3, "audio": 0.3}
"""Modality-dropout rates, fixed a priori (not tuned)."""
MODALITIES = ("image", "audio")
REMAINING = {"image": "audio_only", "audio": "image_only"}
"""The single-modality model of the modality that remains when the key is missing."""
WORDS = {"holds": "met", "does not hold": "not met", "inconclusive": "inconclusive"}


def dropout_override() -> str:
    """The named override that turns modality dropout on at :data:`RATES`."""
    rates = ", ".join(f"{m}: {r}" for m, r in RATES.items())
    return f"model.modality_dropout={{{rates}}}"


def missing_correct(out_dir: Path) -> dict[str, np.ndarray]:
    """Per-item test correctness of a trained run with each modality removed.

    The result is stored in the run folder under the fingerprint of the code that
    evaluates it, so a second bench run reads it instead of evaluating again.

    Args:
        out_dir: a finished run folder of :func:`polymodal.train.recipe.fit`.

    Returns:
        ``{modality: (N,) float}`` 1.0 where the model is right on that test item
        when ``<modality>_mask`` is False for the whole test set, in test-set order.
    """
    from safetensors.numpy import load_file, save_file

    from polymodal.data.cache import code_fingerprint

    stored = Path(out_dir) / f"missing-{code_fingerprint(__name__)[:16]}.safetensors"
    if stored.is_file():
        return load_file(stored)
    out = _evaluate_missing(Path(out_dir))
    save_file(out, stored)
    return out


def _evaluate_missing(out_dir: Path) -> dict[str, np.ndarray]:
    import torch

    from polymodal.train.recipe import load_trained

    config, model, data = load_trained(out_dir)
    device = "cuda" if config.trainer.accelerator in ("gpu", "cuda") else "cpu"  # as trained
    model.to(device)
    loader = data.test_dataloader()
    out: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for missing in MODALITIES:
            right = []
            for batch in loader:
                batch = {k: v.to(device) for k, v in batch.items()}
                batch[f"{missing}_mask"] = torch.zeros(
                    len(batch["label"]), dtype=torch.bool, device=device
                )
                pred = model(batch).logits.argmax(dim=-1)  # (B,)
                right.append((pred == batch["label"]).float().cpu())
            out[missing] = torch.cat(right).numpy()
    return out


def target_parts(
    dropout_full: Sequence[np.ndarray],
    dropout_missing: Mapping[str, Sequence[np.ndarray]],
    plain_full: Sequence[np.ndarray],
    single: Mapping[str, Sequence[np.ndarray]],
) -> list[Part]:
    """The target's parts (see the module doc), one (N,) correctness array per seed.

    Args:
        dropout_full: the dropout-trained fusion, full input.
        dropout_missing: the same, ``{missing modality: arrays}``.
        plain_full: the same fusion trained without dropout, full input.
        single: ``{"image_only": arrays, "audio_only": arrays}``, full input.

    Returns:
        One part per missing modality (margin −0.02), then the full-input part
        (margin −0.01).
    """
    parts = [
        Part.of(
            f"dropout fusion without {m} − {REMAINING[m]}",
            paired_difference(dropout_missing[m], single[REMAINING[m]]),
            margin=-0.02,
        )
        for m in MODALITIES
    ]
    full = paired_difference(dropout_full, plain_full)
    parts.append(Part.of("dropout fusion − same fusion without dropout, full input", full, -0.01))
    return parts


def report(
    fusions: Sequence[str],
    accuracy: Mapping[str, Sequence[float]],
    missing: Mapping[str, Mapping[str, Sequence[np.ndarray]]],
    dropout_name: str,
    parts: Sequence[Part],
) -> tuple[list[Table], str]:
    """The report's two tables and a note on the target.

    Args:
        fusions: the fusion models, then ``dropout_name``, in table order.
        accuracy: per model, its full-input test accuracy per seed (also the
            single-modality models').
        missing: per fusion model, ``{missing modality: one (N,) array per seed}``.
        dropout_name: the row name of the dropout-trained model.
        parts: :func:`target_parts`.
    """

    def acc(arrays: Sequence[np.ndarray]) -> str:
        return mean_std([float(a.mean()) for a in arrays])

    rows = [
        [name, mean_std(accuracy[name]), *(acc(missing[name][m]) for m in MODALITIES)]
        for name in fusions
    ]
    rows.append(
        [
            "single-modality model of the one that remains",
            "—",
            *(mean_std(accuracy[REMAINING[m]]) for m in MODALITIES),
        ]
    )
    columns = ["model", "full input", *(f"{m} missing at test" for m in MODALITIES)]
    accuracies = table(
        "Accuracy with one modality missing at test (mean ± std over seeds)", columns, rows
    )
    target = table(
        "Missing-modality target (reported, not part of the verdict): paired difference "
        "[95 % interval] over test items",
        ["part", "result"],
        [[p.describe(), WORDS[p.verdict]] for p in parts],
    )
    note = (
        f"{dropout_name}: trained with modality dropout at {RATES} (fixed a priori). "
        f"Missing-modality target {WORDS[decide(parts)]}."
    )
    return [accuracies, target], note
