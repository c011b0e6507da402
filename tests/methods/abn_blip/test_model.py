import numpy as np
import pytest
import torch

from polymodal.data.contract import collate
from polymodal.data.synth import ctpa
from polymodal.data.synth.ctpa_reports import FINDINGS, parse_report, write_report
from polymodal.errors import ConfigError
from polymodal.methods.abn_blip import build_abn_blip

SHAPE = [16, 16, 16]


def model(per_abnormality=True):
    torch.manual_seed(0)
    options = {"hidden": 32, "lm_hidden": 32, "layers": 1, "lm_layers": 1}
    return build_abn_blip(
        "", {"ct": {"shape": SHAPE}}, dim=24, depth=1, per_abnormality=per_abnormality, **options
    )


def batch(n=4):
    rng = np.random.default_rng(0)
    samples = []
    for i in range(n):
        labels = np.zeros(len(FINDINGS), dtype=np.float32)
        labels[[i % 16, (i + 5) % 16]] = 1
        samples.append(
            {
                "ct": torch.rand(*SHAPE),
                "labels": torch.from_numpy(labels),
                "tokens": torch.tensor(ctpa.encode(write_report(labels, rng))),
            }
        )
    return collate(samples)


def test_both_variants_have_the_same_trainable_parameters_and_a_frozen_encoder():
    ours, generic = model(True), model(False)
    count = lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)  # noqa: E731
    assert count(ours) == count(generic) > 0
    assert not any(p.requires_grad for p in ours.encoder.parameters())


def test_abn_blip_trains_three_terms_and_the_baseline_captions_whole_reports():
    b = batch()
    out = model(True)(b)
    assert set(out.parts) == {"bce", "contrastive", "caption"}
    torch.testing.assert_close(out.loss, sum(out.parts.values()))
    out.loss.backward()
    generic = model(False)(b)
    assert set(generic.parts) == {"caption"} and out.logits.shape == (4, 16)


def test_query_k_alone_decides_finding_k():
    m, b = model(True), batch()
    outputs = m.query_outputs(b["ct"])
    changed = outputs.clone()
    changed[:, 3] += 1.0
    moved = (m.finding_logits(changed) != m.finding_logits(outputs)).any(dim=0)
    assert moved.tolist() == [k == 3 for k in range(16)]


def test_reports_state_what_the_head_decides_region_by_region():
    m, b = model(True), batch(2)
    with torch.no_grad():
        m.finding_bias.fill_(-20.0)  # nothing positive: every region's negative sentence
    reports = m.write_reports(b)
    assert len(reports) == 2
    for report in reports:
        assert report.splitlines()[0].startswith("PULMONARY ARTERIES:")
        assert parse_report(report).labels.sum() == 0 and not parse_report(report).unparsed
    torch.testing.assert_close(m.reference_labels(b), b["labels"].float())


def test_the_data_must_have_the_sixteen_findings():
    with pytest.raises(ConfigError, match="16 CTPA findings"):
        build_abn_blip("", {"ct": {"shape": SHAPE}}, num_labels=14)


@pytest.mark.parametrize(
    ("ct", "message"),
    [(torch.rand(2, 16, 16), "ct"), (torch.full((2, *SHAPE), float("nan")), "NaN")],
)
def test_a_bad_volume_is_a_one_line_data_error(ct, message):
    from polymodal.errors import DataError

    with pytest.raises(DataError, match=message) as error:
        model().write_reports({"ct": ct})
    assert "\n" not in str(error.value)
