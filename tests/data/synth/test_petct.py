import numpy as np
import pytest
import torch

from polymodal.data.synth.petct import (
    CT_SCALE,
    ORGANS,
    PET_SCALE,
    SALIVARY_LEFT,
    Lesion,
    PetCtConfig,
    draw_case,
    labelled_subset,
    load_petct,
    malignant_like,
    to_units,
)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))


def lesion(hot: bool, calcified: bool) -> Lesion:
    return Lesion((1.0, 1.0, 1.0), 1.0, hot, ct_visible=calcified, calcified=calcified)


def test_the_label_needs_both_uptake_and_calcification():
    assert malignant_like([lesion(hot=True, calcified=False)])
    assert not malignant_like([lesion(hot=True, calcified=True)])  # hot in PET, calcified in CT
    assert not malignant_like([lesion(hot=False, calcified=False)])
    assert malignant_like([lesion(hot=False, calcified=False), lesion(hot=True, calcified=False)])


def test_a_case_has_physical_units_and_tracer_dependent_uptake():
    config = PetCtConfig(size=32)
    rng = np.random.default_rng(3)
    cases = [draw_case(config, rng) for _ in range(12)]
    for case in cases:
        assert case["ct"].min() < -900 and case["ct"].max() > 500  # air and bone
        assert case["pet"].min() >= 0 and case["lesions"].sum() > 0
        assert case["text"].split()[0] in ("FDG", "PSMA") and "MBq" in case["text"]
    # Salivary glands: PSMA takes them up far more than FDG does (at a gland's centre).
    centre = tuple(int(c * 32) for c in SALIVARY_LEFT)
    salivary = {t: [] for t in ("FDG", "PSMA")}
    for case in cases:
        salivary[case["text"].split()[0]].append(case["pet"][centre])
    assert ORGANS["salivary"][2] > 5 * ORGANS["salivary"][1]
    assert salivary["FDG"] and salivary["PSMA"]
    assert np.mean(salivary["PSMA"]) > 2 * np.mean(salivary["FDG"])


def test_the_build_gives_contract_samples_with_spacing_in_every_split():
    train = load_petct("train", train=6, val=2, test=3, size=16)
    test = load_petct("test", train=6, val=2, test=3, size=16)
    assert len(train) == 6 and len(test) == 3
    sample = train[0]
    assert sample["ct"].shape == sample["pet"].shape == sample["heatmap"].shape == (16, 16, 16)
    torch.testing.assert_close(sample["ct_spacing"], torch.tensor([37.5, 25.0, 25.0]))
    assert float(sample["ct"].min()) >= -1 and float(sample["pet"].max()) <= 3
    assert sample["label"].dtype == torch.int64 and sample["text_ids"].min() > 0
    hu, suv = to_units(sample["ct"], sample["pet"])
    torch.testing.assert_close(hu, sample["ct"] * CT_SCALE)
    torch.testing.assert_close(suv, sample["pet"] * PET_SCALE)
    # deterministic: the same options give the same volumes
    again = load_petct("train", train=6, val=2, test=3, size=16)[0]
    torch.testing.assert_close(again["pet"], sample["pet"])


def test_a_train_fraction_keeps_a_stratified_share_of_the_build():
    labels = torch.tensor([0, 1, 1, 0, 1, 1, 1, 0, 1, 1])  # 3 of class 0, 7 of class 1
    torch.testing.assert_close(labelled_subset(labels, 0.1), torch.tensor([0, 1]))
    torch.testing.assert_close(labelled_subset(labels, 0.5), torch.tensor([0, 1, 2, 3, 4, 5]))
    assert len(labelled_subset(labels, 1.0)) == 10
    small = load_petct("train", train_fraction=0.5, train=6, val=2, test=3, size=16)
    full = load_petct("train", train=6, val=2, test=3, size=16)
    assert 2 <= len(small) < len(full)
