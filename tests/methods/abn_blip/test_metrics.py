import numpy as np
import pytest
import torch
from torchmetrics.classification import MultilabelF1Score

from polymodal.data.synth.ctpa_reports import parse_report
from polymodal.methods.abn_blip.metrics import macro_f1, micro_f1, per_finding_f1, text_scores


def test_clinical_f1_of_hand_made_report_pairs():
    references = [
        "PULMONARY ARTERIES: Filling defect in the main pulmonary artery. HEART: Cardiomegaly.",
        "PLEURA: Left pleural effusion. LUNGS: No consolidation.",
        "HEART: No cardiomegaly. LUNGS: A pulmonary nodule.",
    ]
    generated = [
        "PULMONARY ARTERIES: Saddle embolus at the main pulmonary artery. HEART: Normal.",
        "PLEURA: Bilateral pleural effusions.",  # right side is a false positive
        "LUNGS: Possible small pulmonary nodule.",  # uncertain counts as stated
    ]
    truth = np.stack([parse_report(r).labels for r in references])
    predicted = np.stack([parse_report(g).labels for g in generated])
    f1 = per_finding_f1(predicted, truth)
    # pe_main 1, cardiomegaly 0 (missed), left effusion 1, right effusion 0 (FP), nodule 1
    names = {0: 1.0, 6: 0.0, 8: 1.0, 9: 0.0, 13: 1.0}
    for index, value in names.items():
        assert f1[index] == pytest.approx(value)
    assert np.isnan(f1[[1, 2, 3, 4, 5, 7, 10, 11, 12, 14, 15]]).all()
    assert macro_f1(predicted, truth) == pytest.approx(3 / 5)
    # 3 true positives, 4 predicted, 4 true: micro F1 = 6 / 8
    assert micro_f1(predicted, truth) == pytest.approx(0.75)


def test_macro_f1_agrees_with_torchmetrics_when_every_finding_occurs():
    rng = np.random.default_rng(0)
    truth = (rng.random((200, 16)) < 0.3).astype(np.float32)
    predicted = np.where(rng.random((200, 16)) < 0.8, truth, 1 - truth)
    metric = MultilabelF1Score(16, average="macro")
    expected = metric(torch.from_numpy(predicted), torch.from_numpy(truth).long()).item()
    assert macro_f1(predicted, truth) == pytest.approx(expected, abs=1e-6)


def test_text_scores_are_one_for_identical_reports_and_lower_otherwise():
    text = "no filling defect in the pulmonary arteries ."  # BLEU-4 needs 4 words or more
    same = text_scores([text], [text])
    assert same == {"bleu4": pytest.approx(1.0), "rougeL": pytest.approx(1.0)}
    other = text_scores(["cardiomegaly ."], [text])
    assert other["bleu4"] < 0.5 and other["rougeL"] < 0.5
