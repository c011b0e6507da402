"""The findings of a CT pulmonary angiogram, the reports written about them, and a parser.

:data:`FINDINGS` is the fixed vocabulary: 16 abnormalities grouped by the region a
radiologist reports them in (:data:`REGIONS`, in reporting order). :func:`write_report`
turns a finding vector into a report with varied phrasing: synonyms, negations
that cover several findings ("No pleural or pericardial effusion."), uncertainty
("Possible small pulmonary nodule.") and contrast ("No consolidation, but linear
atelectasis at the left base."). :func:`parse_report` reads any report in this
vocabulary back into a finding vector, negation- and uncertainty-aware: a clause
is cut at *but*, *however*, *although* and *;*, a negation cue (*no*, *without*,
*negative for*, *free of*) negates every finding named after it in its clause,
and an uncertain mention (*possible*, *may represent*, *cannot exclude*, ...)
counts as positive, as report labellers such as CheXpert's "U-ones" do. A
sentence that names nothing of the vocabulary is counted as unparsed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

REGIONS = ("pulmonary arteries", "heart", "pleura", "lungs", "mediastinum")

FINDINGS = (
    "pe_main",
    "pe_lobar_left",
    "pe_lobar_right",
    "pe_segmental_left",
    "pe_segmental_right",
    "rv_enlargement",
    "cardiomegaly",
    "pericardial_effusion",
    "pleural_effusion_left",
    "pleural_effusion_right",
    "consolidation_left",
    "consolidation_right",
    "atelectasis",
    "nodule",
    "emphysema",
    "lymphadenopathy",
)
REGION_OF = {
    **dict.fromkeys(FINDINGS[:5], "pulmonary arteries"),
    **dict.fromkeys(("rv_enlargement", "cardiomegaly", "pericardial_effusion"), "heart"),
    **dict.fromkeys(("pleural_effusion_left", "pleural_effusion_right"), "pleura"),
    **dict.fromkeys(
        ("consolidation_left", "consolidation_right", "atelectasis", "nodule", "emphysema"),
        "lungs",
    ),
    "lymphadenopathy": "mediastinum",
}
PREVALENCE = np.array(
    [0.05, 0.10, 0.10, 0.14, 0.14, 0.10, 0.12, 0.08, 0.12, 0.12, 0.10, 0.10, 0.15, 0.15, 0.10, 0.08]
)
"""Share of cases with each finding (mostly negative, a few positives each)."""

# What names each finding in a report. Emboli are named by a clot word and placed
# by a location phrase (below); the others by their own phrases.
CLOT = r"(?:pulmonary )?(?:embol(?:us|i|ism)|filling defects?|clots?|thrombus|thrombi)"
PHRASES: dict[str, tuple[str, ...]] = {
    "rv_enlargement": (
        "right ventricular enlargement",
        "enlarged right ventricle",
        "right heart strain",
        "dilated right ventricle",
    ),
    "cardiomegaly": ("cardiomegaly", "enlarged heart", "enlarged cardiac silhouette"),
    "pericardial_effusion": ("pericardial effusion", "fluid in the pericardium", "pericardial"),
    "pleural_effusion": ("pleural effusions?", "fluid in the pleural space", "pleural"),
    "consolidation": ("consolidation", "airspace opacity", "airspace disease"),
    "atelectasis": ("atelectasis", "atelectatic change", "volume loss"),
    "nodule": ("nodules?", "nodular opacity", "pulmonary nodule"),
    "emphysema": ("emphysema", "emphysematous changes?"),
    "lymphadenopathy": ("lymphadenopathy", "enlarged mediastinal lymph nodes?", "adenopathy"),
}
NEGATION = r"\b(?:no|without|negative for|free of|not)\b"
UNCERTAIN = (
    r"\b(?:possible|possibly|may represent|cannot exclude|questionable|suspicious for|likely)\b"
)
CLAUSE_BREAK = r"\bbut\b|\bhowever\b|\balthough\b|;"


@dataclass
class Parsed:
    """A parsed report.

    Attributes:
        labels: (F,) 1.0 where a finding is positive or uncertain.
        uncertain: (F,) True where the only mention was uncertain.
        unparsed: sentences that named nothing of the vocabulary.
    """

    labels: np.ndarray
    uncertain: np.ndarray
    unparsed: list[str] = field(default_factory=list)


def _side(clause: str) -> tuple[bool, bool]:
    """(left, right) named in a clause; neither named or "bilateral" means both."""
    left, right = "left" in clause, "right" in clause
    if "bilateral" in clause or "both" in clause or not (left or right):
        return True, True
    return left, right


def _mentions(clause: str) -> list[int]:
    """Indices of the findings a clause names."""
    found: list[int] = []
    if re.search(CLOT, clause) or "pulmonary embolism" in clause:
        left, right = _side(clause)
        main = "main" in clause or "saddle" in clause
        lobar = "lobar" in clause or "lobe" in clause
        segmental = "segmental" in clause or "subsegmental" in clause
        if not (main or lobar or segmental):  # "no pulmonary embolism": every artery
            main = lobar = segmental = True
        found += [0] if main else []
        found += [i for i, on in ((1, left), (2, right)) if lobar and on]
        found += [i for i, on in ((3, left), (4, right)) if segmental and on]
    for name, phrases in PHRASES.items():
        if not any(re.search(rf"\b{p}\b", clause) for p in phrases):
            continue
        if name in ("pleural_effusion", "consolidation"):
            left, right = _side(clause)
            sides = (("left", left), ("right", right))
            found += [FINDINGS.index(f"{name}_{s}") for s, on in sides if on]
        else:
            found.append(FINDINGS.index(name))
    return sorted(set(found))


def parse_report(text: str) -> Parsed:
    """Read a report into a finding vector (module doc).

    A finding named positively anywhere is positive, even if another sentence
    negates it; an uncertain mention is positive unless a definite one exists.
    """
    labels = np.zeros(len(FINDINGS), dtype=np.float32)
    certain = np.zeros(len(FINDINGS), dtype=bool)
    unparsed = []
    for sentence in re.split(r"(?<=[.!?])\s+|\n+", text.lower()):
        sentence = sentence.strip(" .")
        if not sentence or sentence.endswith(":") or sentence in REGIONS:
            continue
        body = re.sub(r"^[a-z ]+:\s*", "", sentence)  # drop a "heart:" region heading
        named = False
        for clause in re.split(CLAUSE_BREAK, body):
            mentions = _mentions(clause)
            named |= bool(mentions)
            if not mentions or re.search(NEGATION, clause):
                continue
            doubtful = bool(re.search(UNCERTAIN, clause))
            for i in mentions:
                labels[i] = 1.0
                certain[i] |= not doubtful
        if not named and not re.search(r"\b(?:normal|unremarkable|patent|clear)\b", body):
            unparsed.append(sentence)
    return Parsed(labels, (labels > 0) & ~certain, unparsed)


def finding_clauses(text: str) -> dict[int, str]:
    """The clause of a report that names each positive finding (the first one), e.g.
    ``{12: "linear atelectasis at the lung base."}`` — the caption of that finding."""
    out: dict[int, str] = {}
    for sentence in re.split(r"(?<=[.!?])\s+|\n+", text.lower()):
        body = re.sub(r"^[a-z ]+:\s*", "", sentence.strip())
        for clause in re.split(CLAUSE_BREAK, body):
            clause = clause.strip(" ,")
            if not clause or re.search(NEGATION, clause):
                continue
            for i in _mentions(clause):
                out.setdefault(i, clause if clause.endswith(".") else clause + ".")
    return out


def region_negative(region: str) -> str:
    """The fixed sentence that says a region holds none of its findings."""
    return _NEGATIVE[region][0]


def assemble_report(sentences: dict[int, str]) -> str:
    """A report from one sentence per positive finding, region by region in
    reporting order; a region without a positive finding gets :func:`region_negative`."""
    lines = []
    for region in REGIONS:
        found = [sentences[i] for i in sorted(sentences) if REGION_OF[FINDINGS[i]] == region]
        lines.append(
            f"{region.upper()}: " + (" ".join(found) if found else region_negative(region))
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- writing

_POSITIVE: dict[str, tuple[str, ...]] = {
    "pe_main": (
        "Filling defect in the main pulmonary artery.",
        "Saddle embolus at the main pulmonary artery.",
    ),
    "pe_lobar_left": (
        "Embolus in the left lower lobe artery.",
        "Filling defect in the left lobar pulmonary artery.",
    ),
    "pe_lobar_right": (
        "Embolus in the right lower lobe artery.",
        "Filling defect in the right lobar pulmonary artery.",
    ),
    "pe_segmental_left": ("Segmental emboli on the left.", "Clot in left segmental branches."),
    "pe_segmental_right": ("Segmental emboli on the right.", "Clot in right segmental branches."),
    "rv_enlargement": (
        "Right ventricular enlargement.",
        "Dilated right ventricle, in keeping with right heart strain.",
    ),
    "cardiomegaly": ("Cardiomegaly.", "Enlarged cardiac silhouette."),
    "pericardial_effusion": ("Small pericardial effusion.", "Fluid in the pericardium."),
    "pleural_effusion_left": ("Left pleural effusion.", "Small left pleural effusion."),
    "pleural_effusion_right": ("Right pleural effusion.", "Small right pleural effusion."),
    "consolidation_left": ("Consolidation in the left lower lobe.", "Left basal airspace opacity."),
    "consolidation_right": (
        "Consolidation in the right lower lobe.",
        "Right basal airspace opacity.",
    ),
    "atelectasis": ("Linear atelectasis at the lung base.", "Basal atelectatic change."),
    "nodule": ("A pulmonary nodule.", "Small nodular opacity in the lung."),
    "emphysema": ("Emphysema.", "Emphysematous changes in both upper lobes."),
    "lymphadenopathy": ("Mediastinal lymphadenopathy.", "Enlarged mediastinal lymph nodes."),
}
_UNCERTAIN = {
    "nodule": "Possible small pulmonary nodule.",
    "pe_segmental_left": "Cannot exclude a left segmental embolus.",
    "pe_segmental_right": "Cannot exclude a right segmental embolus.",
    "atelectasis": "Likely basal atelectasis.",
}
_NEGATIVE: dict[str, tuple[str, ...]] = {
    "pulmonary arteries": (
        "No pulmonary embolism.",
        "No filling defect in the pulmonary arteries.",
    ),
    "heart": (
        "Heart size normal. No pericardial effusion.",
        "No cardiomegaly or pericardial effusion.",
    ),
    "pleura": ("No pleural effusion.", "No pleural or pericardial effusion."),
    "lungs": ("No consolidation or nodule.", "Lungs clear, no consolidation."),
    "mediastinum": ("No lymphadenopathy.", "No enlarged mediastinal lymph nodes."),
}


_ABSENT = {
    "pe_main": "No embolus in the main pulmonary artery.",
    "pe_lobar_left": "No embolus in the left lobar arteries.",
    "pe_lobar_right": "No embolus in the right lobar arteries.",
    "pe_segmental_left": "No segmental emboli on the left.",
    "pe_segmental_right": "No segmental emboli on the right.",
    "rv_enlargement": "No right ventricular enlargement.",
    "cardiomegaly": "No cardiomegaly.",
    "pericardial_effusion": "No pericardial effusion.",
    "pleural_effusion_left": "No left pleural effusion.",
    "pleural_effusion_right": "No right pleural effusion.",
    "consolidation_left": "No consolidation on the left.",
    "consolidation_right": "No consolidation on the right.",
    "atelectasis": "No atelectasis.",
    "nodule": "No pulmonary nodule.",
    "emphysema": "No emphysema.",
    "lymphadenopathy": "No lymphadenopathy.",
}


def finding_sentence(index: int, positive: bool, rng: np.random.Generator | None = None) -> str:
    """One sentence about one finding: a positive phrasing (the first, or one drawn
    with ``rng``), or its "No <finding>." template."""
    name = FINDINGS[index]
    if not positive:
        return _ABSENT[name]
    options = _POSITIVE[name]
    return options[0] if rng is None else options[int(rng.integers(len(options)))]


def write_report(labels: Sequence[float], rng: np.random.Generator, uncertain: float = 0.2) -> str:
    """A report of a finding vector, region by region in reporting order.

    Args:
        labels: (F,) 0/1 per finding.
        rng: draws the phrasing.
        uncertain: chance that a finding with an uncertain phrasing is written so.
    """
    lines = []
    for region in REGIONS:
        members = [i for i, f in enumerate(FINDINGS) if REGION_OF[f] == region]
        positives = [i for i in members if labels[i] > 0]
        sentences = []
        for i in positives:
            name = FINDINGS[i]
            if name in _UNCERTAIN and rng.random() < uncertain:
                sentences.append(_UNCERTAIN[name])
            else:
                options = _POSITIVE[name]
                sentences.append(options[int(rng.integers(len(options)))])
        if not positives:
            options = _NEGATIVE[region]
            sentences.append(options[int(rng.integers(len(options)))])
        elif region == "lungs" and not any(labels[i] for i in (10, 11)) and rng.random() < 0.5:
            sentences.insert(
                0, "No consolidation, but"
            )  # joined below: negation scope ends at "but"
        lines.append(f"{region.upper()}: " + _join(sentences))
    return "\n".join(lines)


def _join(sentences: list[str]) -> str:
    text = " ".join(sentences)
    # "No consolidation, but Linear atelectasis ..." -> "... but linear atelectasis ..."
    return re.sub(r"but ([A-Z])", lambda m: "but " + m.group(1).lower(), text)
