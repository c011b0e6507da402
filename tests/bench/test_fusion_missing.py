import numpy as np

from polymodal.bench import fusion_missing
from polymodal.bench.verdict import decide


def ones(n: int = 200) -> list[np.ndarray]:
    return [np.ones(n)]


def zeros(n: int = 200) -> list[np.ndarray]:
    return [np.zeros(n)]


def test_dropout_rates_are_the_fixed_ones_as_an_override():
    assert fusion_missing.dropout_override() == "model.modality_dropout={image: 0.3, audio: 0.3}"


def test_target_parts_compare_with_the_remaining_modality_and_the_plain_fusion():
    # Without image the dropout model is right on 3 of 4 items, audio-only on 2 of 4: +0.25.
    half = [np.array([1.0, 1.0, 0.0, 0.0])]
    parts = fusion_missing.target_parts(
        dropout_full=half,
        dropout_missing={"image": [np.array([1.0, 1.0, 1.0, 0.0])], "audio": half},
        plain_full=[np.array([1.0, 0.0, 0.0, 0.0])],
        single={"audio_only": half, "image_only": [np.array([0.0, 0.0, 0.0, 0.0])]},
    )
    assert [p.name for p in parts] == [
        "dropout fusion without image − audio_only",
        "dropout fusion without audio − image_only",
        "dropout fusion − same fusion without dropout, full input",
    ]
    assert [p.estimate for p in parts] == [0.25, 0.5, 0.25]
    assert [p.margin for p in parts] == [-0.02, -0.02, -0.01]


def test_target_is_not_met_when_full_input_accuracy_collapses():
    parts = fusion_missing.target_parts(
        zeros(),
        {"image": ones(), "audio": ones()},
        ones(),
        {"audio_only": zeros(), "image_only": zeros()},
    )
    assert [p.verdict for p in parts] == ["holds", "holds", "does not hold"]
    assert decide(parts) == "does not hold"


def test_report_puts_the_remaining_single_modality_beside_each_missing_one():
    accuracy = {
        "late": [0.9],
        "late + modality dropout": [0.88],
        "image_only": [0.6],
        "audio_only": [0.7],
    }
    missing = {
        "late": {"image": [np.array([1.0, 0.0])], "audio": [np.array([0.0, 0.0])]},
        "late + modality dropout": {"image": ones(2), "audio": [np.array([1.0, 0.0])]},
    }
    parts = fusion_missing.target_parts(
        ones(2),
        missing["late + modality dropout"],
        ones(2),
        {"audio_only": zeros(2), "image_only": zeros(2)},
    )
    tables, note = fusion_missing.report(
        ["late", "late + modality dropout"], accuracy, missing, "late + modality dropout", parts
    )
    assert tables[0].columns == [
        "model",
        "full input",
        "image missing at test",
        "audio missing at test",
    ]
    assert tables[0].rows == [
        ["late", "0.9000 ± 0.0000", "0.5000 ± 0.0000", "0.0000 ± 0.0000"],
        ["late + modality dropout", "0.8800 ± 0.0000", "1.0000 ± 0.0000", "0.5000 ± 0.0000"],
        [
            "single-modality model of the one that remains",
            "—",
            "0.7000 ± 0.0000",
            "0.6000 ± 0.0000",
        ],
    ]
    assert len(tables[1].rows) == 3
    assert "fixed a priori" in note


def test_missing_modality_results_are_evaluated_once_per_run_folder(tmp_path, monkeypatch):
    calls = []

    def evaluate(out_dir):
        calls.append(out_dir)
        return {"image": np.array([1.0, 0.0]), "audio": np.array([0.0, 1.0])}

    monkeypatch.setattr(fusion_missing, "_evaluate_missing", evaluate)
    first = fusion_missing.missing_correct(tmp_path)
    again = fusion_missing.missing_correct(tmp_path)
    assert len(calls) == 1  # the second call reads the stored file
    for m in ("image", "audio"):
        np.testing.assert_array_equal(first[m], again[m])
    assert again["image"].tolist() == [1.0, 0.0]
