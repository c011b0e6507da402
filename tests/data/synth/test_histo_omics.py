import json

import numpy as np
import pytest
import torch

from polymodal.data.cache import read_manifest
from polymodal.data.contract import collate, validate_batch
from polymodal.data.synth.histo_omics import (
    MORPHOLOGY,
    SIGNATURES,
    HistoOmicsConfig,
    _expression,
    _morphology,
    build_histo_omics,
    load_histo_omics,
)
from polymodal.data.synth.histology import TileParams, render_tiles, stain_matrix
from polymodal.errors import ConfigError

TINY = {"patients": 24, "genes": 300, "min_tiles": 2, "max_tiles": 5, "tile_size": 16}


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    return tmp_path


def test_samples_follow_the_contract_and_pad_with_zero_tiles(home):
    cohort = load_histo_omics("all", **TINY)
    sample = cohort[0]
    assert sample["tiles"].shape == (5, 3, 16, 16) and sample["tiles"].dtype == torch.float32
    assert sample["genes"].shape == (300,) and bool((sample["genes"] > 0).all())
    batch = collate([cohort[i] for i in range(len(cohort))])
    assert validate_batch(batch) == 24
    real = batch["tiles"].flatten(2).amax(dim=-1) > 0  # (P, N)
    counts = real.sum(dim=1)
    assert counts.min() >= 2 and counts.max() <= 5
    # Real tiles come first, padding after, and padding is exactly zero.
    assert torch.equal(real, torch.arange(5)[None] < counts[:, None])
    assert float(batch["tiles"][real].amin()) >= 1 / 255


def test_splits_partition_the_patients_and_keep_every_subtype(home):
    ids = {s: load_histo_omics(s, **TINY).tensors["id"].tolist() for s in ("train", "val", "test")}
    assert sorted(ids["train"] + ids["val"] + ids["test"]) == list(range(24))
    for split in ("train", "val", "test"):
        labels = load_histo_omics(split, **TINY).tensors["label"]
        assert sorted(set(labels.tolist())) == [0, 1, 2, 3]


def test_same_seed_builds_identical_files_and_another_seed_differs(home, tmp_path, monkeypatch):
    first = read_manifest(build_histo_omics(**TINY))["files"]
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path / "elsewhere"))
    again = read_manifest(build_histo_omics(**TINY))["files"]
    other = read_manifest(build_histo_omics(**TINY, seed=1))["files"]
    assert first == again
    assert other["cohort.safetensors"] != first["cohort.safetensors"]


def test_gene_modules_are_recorded(home):
    folder = build_histo_omics(**TINY)
    modules = json.loads((folder / "genes.json").read_text())["modules"]
    assert len(modules["luminal"]) == 40 and len(modules["her2"]) == 15
    every = [g for genes in modules.values() for g in genes]
    assert len(every) == len(set(every))  # modules do not overlap


def test_signal_knobs_scale_the_subtype_differences():
    labels = np.repeat([0, 3], 300)  # luminal A and basal-like
    for signal, low, high in ((1.0, 1.0, 1.4), (0.0, -0.1, 0.1)):
        morphology = _morphology(
            HistoOmicsConfig(image_signal=signal), labels, np.random.default_rng(0)
        )
        gap = morphology[labels == 3, 0].mean() - morphology[labels == 0, 0].mean()  # radius
        assert low < gap < high
        config = HistoOmicsConfig(gene_signal=signal, genes=400)
        genes, modules = _expression(config, labels, np.zeros(600, int), np.random.default_rng(0))
        luminal = np.log(genes[:, modules["luminal"]]).mean(axis=1)
        # Luminal module: +1 vs -1 times a loading around 1, so about 2 apart.
        gap = luminal[labels == 0].mean() - luminal[labels == 3].mean()
        assert (1.5 < gap < 2.5) if signal else abs(gap) < 0.15


def test_each_modality_alone_confuses_one_pair_of_subtypes():
    assert np.array_equal(MORPHOLOGY[1], MORPHOLOGY[2])  # luminal B looks like HER2
    differs = SIGNATURES[0] != SIGNATURES[1]  # luminal A vs B: proliferation only
    assert differs.tolist() == [False, False, True, False]


def test_rendered_tiles_look_like_h_and_e():
    rng = np.random.default_rng(0)
    params = TileParams(
        tumour=np.array([True, False]),
        radius=np.full(2, 2.5),
        density=np.full(2, 30.0),
        pleomorphism=np.full(2, 0.2),
        gland=np.array([False, False]),
        stain=stain_matrix(rng, 0.0, 2),
        strength=np.ones((2, 2)),
        blur=np.zeros(2),
    )
    tumour, stroma = render_tiles(params, 32, rng)
    # Stroma is pink (red and blue above green); the dense tumour tile is darker and bluer.
    r, g, b = stroma.mean(dim=(1, 2))
    assert r > g and b > g
    assert tumour.mean() < stroma.mean()
    assert (tumour[2] - tumour[0]).mean() > (stroma[2] - stroma[0]).mean()


def test_bad_options_are_named(home):
    with pytest.raises(ConfigError, match="unexpected keyword argument 'patient'"):
        load_histo_omics("train", patient=10)
    with pytest.raises(ConfigError, match="min_tiles <= max_tiles"):
        load_histo_omics("train", min_tiles=9, max_tiles=4)
    with pytest.raises(ConfigError, match="splits"):
        load_histo_omics("validation", **TINY)
