import numpy as np
import pytest

from polymodal.data.synth.ctpa_reports import (
    FINDINGS,
    PREVALENCE,
    finding_sentence,
    parse_report,
    write_report,
)


def positives(text: str) -> set[str]:
    return {FINDINGS[i] for i in np.flatnonzero(parse_report(text).labels)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Filling defect in the main pulmonary artery.", {"pe_main"}),
        ("Clot in left segmental branches.", {"pe_segmental_left"}),
        ("Emboli in both lower lobe arteries.", {"pe_lobar_left", "pe_lobar_right"}),
        ("Enlarged cardiac silhouette.", {"cardiomegaly"}),  # synonym
        ("Dilated right ventricle, in keeping with right heart strain.", {"rv_enlargement"}),
        ("Bilateral pleural effusions.", {"pleural_effusion_left", "pleural_effusion_right"}),
        ("Left basal airspace opacity.", {"consolidation_left"}),
        ("Emphysematous changes in both upper lobes.", {"emphysema"}),
        ("Enlarged mediastinal lymph nodes.", {"lymphadenopathy"}),
    ],
)
def test_synonyms_and_locations_name_the_finding(text, expected):
    assert positives(text) == expected


def test_a_negation_covers_every_finding_of_its_clause_and_stops_at_but():
    assert positives("No pleural or pericardial effusion.") == set()
    assert positives("No pulmonary embolism.") == set()
    text = "No consolidation, but linear atelectasis at the lung base."
    assert positives(text) == {"atelectasis"}
    assert positives("No effusion; small right pleural effusion.") == {"pleural_effusion_right"}
    assert positives("Without evidence of cardiomegaly.") == set()


def test_uncertain_mentions_count_as_positive_and_are_flagged():
    parsed = parse_report("Possible small pulmonary nodule. Cardiomegaly.")
    assert {FINDINGS[i] for i in np.flatnonzero(parsed.labels)} == {"nodule", "cardiomegaly"}
    assert {FINDINGS[i] for i in np.flatnonzero(parsed.uncertain)} == {"nodule"}
    assert positives("Cannot exclude a left segmental embolus.") == {"pe_segmental_left"}


def test_sentences_outside_the_vocabulary_are_counted_not_fatal():
    parsed = parse_report("HEART: Cardiomegaly. There is a small hiatal hernia. Lungs clear.")
    assert parsed.unparsed == ["there is a small hiatal hernia"]
    assert (
        positives("Heart size normal.") == set() and not parse_report("Heart size normal.").unparsed
    )


def test_every_written_report_parses_back_to_its_findings():
    rng = np.random.default_rng(0)
    for _ in range(500):
        labels = (rng.random(len(FINDINGS)) < 2 * PREVALENCE).astype(np.float32)
        parsed = parse_report(write_report(labels, rng))
        np.testing.assert_array_equal(parsed.labels, labels)
        assert parsed.unparsed == []


@pytest.mark.parametrize("index", range(len(FINDINGS)))
def test_each_finding_sentence_names_its_finding_alone(index):
    expected = np.zeros(len(FINDINGS))
    expected[index] = 1
    np.testing.assert_array_equal(parse_report(finding_sentence(index, True)).labels, expected)
    assert parse_report(finding_sentence(index, False)).labels.sum() == 0
