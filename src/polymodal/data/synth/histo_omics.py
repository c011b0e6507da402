"""Histo-Omics: the embedded histology + gene-expression cohort for subtype prediction.

Each **patient** has a breast-cancer-like subtype (``luminal_a``, ``luminal_b``,
``her2_enriched``, ``basal_like``) and two modalities:

* **tiles** (N, 3, S, S): H&E-like RGB tiles (:mod:`~polymodal.data.synth.histology`).
  A patient has between ``min_tiles`` and ``max_tiles`` tiles; the rest of the N =
  ``max_tiles`` slots are **all-zero padding tiles** (a rendered tile is never all
  zero, so ``tiles.flatten(2).amax(-1) > 0`` finds the real ones). Some tiles show
  tumour, the rest stroma. Tumour morphology depends on the subtype: nuclear size,
  density, pleomorphism and gland formation. Nuisance: site- and slide-level
  stain colour shifts and per-tile blur.
* **genes** (G,): positive, log-normally distributed expression values (TPM-like)
  with four subtype signature modules (luminal/ER, HER2 amplicon, proliferation,
  basal keratins), three nuisance programmes (immune, stromal, stress), a
  sequencing-site batch effect, a per-sample library-size factor and noise.

The modalities are **complementary by construction** (see :data:`MORPHOLOGY` and
:data:`SIGNATURES`): luminal B and HER2-enriched tumours look alike under the
microscope and differ in expression (ER and HER2 modules), while luminal A and B
share most of their expression profile (a weak proliferation difference only)
and differ in grade, which the tiles show. Each modality alone therefore confuses
one pair of subtypes; together they separate all four.

Knobs: ``image_signal`` and ``gene_signal`` scale the subtype differences in each
modality (0 makes a modality uninformative), ``gene_noise``, ``module_noise``,
``batch_effect``, ``stain_shift`` and ``blur`` set the nuisance.

The cohort is generated once per configuration into the cache (``histo_omics/``)
with a manifest; splits ``train``/``val``/``test`` are a seeded, stratified
70/15/15 partition of the patients and ``all`` is the whole cohort (for k-fold
cross-validation, see :mod:`polymodal.train.kfold`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import Tensor
from tqdm.auto import tqdm

from polymodal.data.cache import cached_build
from polymodal.data.dataset import TensorDictDataset
from polymodal.data.options import check_option_types
from polymodal.data.registry import register_dataset
from polymodal.data.synth.histology import TileParams, render_tiles, stain_matrix
from polymodal.errors import ConfigError

VERSION = "1"
SPLITS = ("train", "val", "test", "all")
SUBTYPES = ("luminal_a", "luminal_b", "her2_enriched", "basal_like")

MORPHOLOGY = np.array(
    [
        # radius (px), nuclei per tumour tile, pleomorphism, P(gland in a tumour tile)
        [1.5, 14.0, 0.08, 0.70],  # luminal A: small uniform nuclei, well-formed glands
        [2.1, 22.0, 0.22, 0.30],  # luminal B: intermediate grade
        [2.1, 22.0, 0.22, 0.30],  # HER2-enriched: looks like luminal B
        [2.7, 30.0, 0.40, 0.00],  # basal-like: large pleomorphic nuclei in solid sheets
    ]
)
"""Tumour morphology per subtype at ``image_signal = 1``."""

MORPHOLOGY_JITTER = np.array([0.2, 3.0, 0.05, 0.12])
"""Patient-to-patient spread (std) of each morphology parameter."""

MODULES = ("luminal", "her2", "proliferation", "basal")
SIGNATURES = np.array(
    [
        # log-scale activity of each module in MODULES
        [1.0, 0.0, 0.0, 0.0],  # luminal A
        [1.0, 0.0, 0.3, 0.0],  # luminal B: luminal A plus a little proliferation
        [-1.0, 1.0, 0.5, 0.0],  # HER2-enriched
        [-1.0, 0.0, 0.5, 1.0],  # basal-like
    ]
)
"""Signature module activity per subtype at ``gene_signal = 1``."""

MODULE_SIZES = {"luminal": 40, "her2": 15, "proliferation": 50, "basal": 30}
NUISANCE_SIZES = {"immune": 40, "stromal": 40, "stress": 25}


@dataclass(frozen=True)
class HistoOmicsConfig:
    """Everything a Histo-Omics build depends on (the cache key)."""

    seed: int = 0
    patients: int = 400
    genes: int = 1000
    min_tiles: int = 8
    max_tiles: int = 32
    tile_size: int = 32
    image_signal: float = 1.0
    gene_signal: float = 1.0
    gene_noise: float = 0.5
    module_noise: float = 0.6
    batch_effect: float = 0.4
    sites: int = 3
    stain_shift: float = 1.0
    blur: float = 1.0
    tumour_fraction: tuple[float, float] = (0.3, 0.9)

    def validate(self) -> None:
        """Raise :class:`ConfigError` for sizes or knobs out of range."""
        modules = sum(MODULE_SIZES.values()) + sum(NUISANCE_SIZES.values())
        if self.patients < 4 * len(SUBTYPES):
            raise ConfigError(f"Histo-Omics needs at least {4 * len(SUBTYPES)} patients")
        if self.genes < modules:
            raise ConfigError(f"Histo-Omics needs at least {modules} genes (its modules)")
        if not 1 <= self.min_tiles <= self.max_tiles:
            raise ConfigError("Histo-Omics needs 1 <= min_tiles <= max_tiles")
        if self.sites < 1:
            raise ConfigError("Histo-Omics needs at least 1 site")
        if self.tile_size < 16:
            raise ConfigError("Histo-Omics tile_size must be at least 16 pixels")
        low, high = self.tumour_fraction
        if not 0.0 < low <= high <= 1.0:
            raise ConfigError("Histo-Omics tumour_fraction must be (low, high) in (0, 1]")
        if min(self.gene_noise, self.module_noise, self.batch_effect, self.blur) < 0:
            raise ConfigError("Histo-Omics noise knobs must be >= 0")


def _morphology(
    config: HistoOmicsConfig, labels: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """(P, 4) per-patient morphology: prototypes pulled to their mean by ``image_signal``."""
    centre = MORPHOLOGY.mean(axis=0)
    prototypes = centre + config.image_signal * (MORPHOLOGY - centre)
    values = prototypes[labels] + MORPHOLOGY_JITTER * rng.standard_normal((len(labels), 4))
    low, high = np.array([1.0, 6.0, 0.0, 0.0]), np.array([3.8, 40.0, 0.8, 1.0])
    return np.clip(values, low, high)


def _tile_params(
    config: HistoOmicsConfig,
    morphology: np.ndarray,
    counts: np.ndarray,
    sites: np.ndarray,
    rng: np.random.Generator,
) -> TileParams:
    """What every tile of every patient shows, patients in order."""
    patient = np.repeat(np.arange(len(counts)), counts)
    T = len(patient)
    fraction = rng.uniform(*config.tumour_fraction, len(counts))[patient]
    tumour = rng.random(T) < fraction
    # Stain: a site colour, a slide (patient) deviation from it, and per-stain strength.
    site_stain = stain_matrix(rng, config.stain_shift, config.sites)
    slide_stain = site_stain[sites] + config.stain_shift * 0.03 * rng.standard_normal(
        (len(counts), 2, 3)
    )
    slide_stain = np.clip(slide_stain, 0.02, None)
    slide_stain /= np.linalg.norm(slide_stain, axis=-1, keepdims=True)
    strength = np.exp(config.stain_shift * 0.2 * rng.standard_normal((len(counts), 2)))
    m = morphology[patient]
    return TileParams(
        tumour=tumour,
        radius=m[:, 0],
        density=m[:, 1],
        pleomorphism=m[:, 2],
        gland=tumour & (rng.random(T) < m[:, 3]),
        stain=slide_stain[patient],
        strength=strength[patient],
        blur=rng.uniform(0.0, config.blur, T),
    )


def _expression(
    config: HistoOmicsConfig, labels: np.ndarray, sites: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, list[int]]]:
    """(P, G) log-normal expression and the gene indices of every module."""
    P, G = len(labels), config.genes
    order = rng.permutation(G)  # module genes sit at random positions, as in a real table
    modules: dict[str, list[int]] = {}
    start = 0
    for name, size in {**MODULE_SIZES, **NUISANCE_SIZES}.items():
        modules[name] = sorted(order[start : start + size].tolist())
        start += size
    log = rng.normal(1.5, 1.2, G)[None].repeat(P, axis=0)  # gene baselines (natural log)
    activity = config.gene_signal * SIGNATURES[labels]  # (P, 4)
    activity = activity + config.module_noise * rng.standard_normal(activity.shape)
    for k, name in enumerate(MODULES):
        genes = modules[name]
        loading = rng.uniform(0.5, 1.5, len(genes))
        log[:, genes] += activity[:, k : k + 1] * loading
    for name in NUISANCE_SIZES:  # programmes unrelated to the subtype
        genes = modules[name]
        log[:, genes] += rng.standard_normal((P, 1)) * rng.uniform(0.3, 1.0, len(genes))
    log += config.batch_effect * rng.standard_normal((config.sites, G))[sites]
    log += 0.25 * rng.standard_normal((P, 1))  # library size
    log += config.gene_noise * rng.standard_normal((P, G))
    return np.exp(log).astype(np.float32), modules


def stratified_split(labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """A seeded 70/15/15 train/val/test partition that keeps class proportions."""
    rng = np.random.default_rng([seed, 1])
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_val, n_test = round(0.15 * len(members)), round(0.15 * len(members))
        parts["val"] += members[:n_val].tolist()
        parts["test"] += members[n_val : n_val + n_test].tolist()
        parts["train"] += members[n_val + n_test :].tolist()
    return {k: np.sort(np.array(v, dtype=np.int64)) for k, v in parts.items()}


def build(config: HistoOmicsConfig, folder: Path, progress: bool = True) -> dict[str, Any]:
    """Write ``cohort.safetensors``, ``splits.json`` and ``genes.json`` into ``folder``."""
    rng = np.random.default_rng(config.seed)
    P, N, S = config.patients, config.max_tiles, config.tile_size
    labels = np.arange(P) % len(SUBTYPES)
    rng.shuffle(labels)
    sites = rng.integers(0, config.sites, P)
    counts = rng.integers(config.min_tiles, config.max_tiles + 1, P)
    morphology = _morphology(config, labels, rng)
    genes, modules = _expression(config, labels, sites, rng)

    params = _tile_params(config, morphology, counts, sites, rng)
    rendered = []
    chunk = 512
    for start in tqdm(
        range(0, len(params), chunk),
        desc="histo-omics tiles",
        disable=not progress or len(params) < 4 * chunk,
    ):
        tiles = render_tiles(params.select(slice(start, start + chunk)), S, rng)
        rendered.append((tiles * 255).round().to(torch.uint8))
    flat = torch.cat(rendered)  # (sum of counts, 3, S, S)
    tiles = torch.zeros(P, N, 3, S, S, dtype=torch.uint8)
    slot = torch.from_numpy(np.concatenate([np.arange(c) for c in counts]))
    owner = torch.from_numpy(np.repeat(np.arange(P), counts))
    tiles[owner, slot] = flat

    save_file(
        {
            "tiles": tiles,
            "genes": torch.from_numpy(genes),
            "label": torch.from_numpy(labels.astype(np.int64)),
            "id": torch.arange(P),
            "site": torch.from_numpy(sites.astype(np.int64)),
            "tile_count": torch.from_numpy(counts.astype(np.int64)),
        },
        str(folder / "cohort.safetensors"),
    )
    splits = {k: v.tolist() for k, v in stratified_split(labels, config.seed).items()}
    (folder / "splits.json").write_text(json.dumps(splits))
    (folder / "genes.json").write_text(json.dumps({"modules": modules}, indent=1))
    return {"patients": P, "tiles": int(counts.sum()), "subtypes": list(SUBTYPES)}


class HistoOmics(TensorDictDataset):
    """Patients of a Histo-Omics build: ``{"tiles", "genes", "label", "id"}`` samples.

    ``tiles`` are stored as uint8 and returned as float32 in [0, 1] (N, 3, S, S),
    all-zero where a slot is padding. ``id`` is the patient's index in the cohort.

    Attributes:
        classes: subtype names, indexed by label.
        gene_modules: ``{module name: gene indices}`` of the signature and nuisance
            modules (e.g. feature groups for contribution analysis).
        sites: (P,) acquisition site of each patient.
    """

    num_classes = len(SUBTYPES)
    classes = SUBTYPES

    def __init__(
        self,
        tensors: dict[str, Tensor],
        gene_modules: dict[str, list[int]] | None = None,
        sites: Tensor | None = None,
    ) -> None:
        super().__init__(tensors)
        self.gene_modules = gene_modules or {}
        self.sites = sites

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        sample = super().__getitem__(index)
        sample["tiles"] = sample["tiles"].float() / 255.0
        return sample


def build_histo_omics(progress: bool = True, **options: Any) -> Path:
    """Build (or reuse from the cache) a Histo-Omics cohort and return its folder."""
    if isinstance(options.get("tumour_fraction"), list):
        options["tumour_fraction"] = tuple(options["tumour_fraction"])
    check_option_types(HistoOmicsConfig, options, "Histo-Omics")
    try:
        config = HistoOmicsConfig(**options)
    except TypeError as error:
        valid = ", ".join(asdict(HistoOmicsConfig()))
        raise ConfigError(f"Histo-Omics: {error}; valid options: {valid}") from error
    config.validate()
    return cached_build(
        "histo_omics",
        VERSION,
        asdict(config),
        lambda f: build(config, f, progress),
        code=("polymodal.data.synth.histo_omics",),
    )


@register_dataset("histo_omics")
def load_histo_omics(split: str, **options: Any) -> HistoOmics:
    """The ``split`` of Histo-Omics built with ``options`` (see :class:`HistoOmicsConfig`)."""
    from safetensors.torch import load_file

    if split not in SPLITS:
        raise ConfigError(f"Histo-Omics has splits {SPLITS}, not {split!r}")
    folder = build_histo_omics(**options)
    cohort = load_file(str(folder / "cohort.safetensors"))
    index = torch.arange(len(cohort["label"]))
    if split != "all":
        index = torch.tensor(json.loads((folder / "splits.json").read_text())[split])
    modules = json.loads((folder / "genes.json").read_text())["modules"]
    tensors = {k: cohort[k][index] for k in ("tiles", "genes", "label", "id")}
    return HistoOmics(tensors, gene_modules=modules, sites=cohort["site"][index])
