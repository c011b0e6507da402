import numpy as np
import pytest
import torch

from polymodal.data.synth.ctpa import BOS, EOS, VOCAB, decode, draw_volume, encode, load_ctpa
from polymodal.data.synth.ctpa_reports import FINDINGS, parse_report


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))


def test_reports_encode_and_decode_through_the_vocabulary():
    text = "PULMONARY ARTERIES: No pulmonary embolism. HEART: Cardiomegaly."
    ids = encode(text)
    assert ids[0] == BOS and ids[-1] == EOS and 3 not in ids  # no unknown word
    assert decode(ids) == text.lower()
    assert decode(encode("a hiatal hernia.")).count("<unk>") == 0  # unknown words dropped


def signature(index: int) -> np.ndarray:
    """HU difference a finding alone makes to a case, same random draws otherwise."""
    labels = np.zeros(len(FINDINGS), dtype=np.float32)
    plain = draw_volume(labels, 32, np.random.default_rng(5))
    labels[index] = 1
    return draw_volume(labels, 32, np.random.default_rng(5)) - plain


def test_every_finding_leaves_its_mark_on_the_volume():
    for index, name in enumerate(FINDINGS):
        assert np.abs(signature(index)).max() > 50, name
    # an embolus lowers the contrast-filled artery; effusion raises the lung
    assert signature(FINDINGS.index("pe_main")).min() < -150
    assert signature(FINDINGS.index("pleural_effusion_left")).max() > 500


def test_the_build_gives_contract_samples_whose_reports_match_their_labels():
    data = load_ctpa("train", train=12, val=2, test=2, size=16)
    sample = data[0]
    assert sample["ct"].shape == (16, 16, 16) and sample["labels"].shape == (16,)
    torch.testing.assert_close(sample["ct_spacing"], torch.full((3,), 25.0))
    for i in range(len(data)):
        parsed = parse_report(decode(data[i]["tokens"]))
        np.testing.assert_array_equal(parsed.labels, data[i]["labels"].numpy())
    assert data.vocab == VOCAB and len(data.findings) == 16
