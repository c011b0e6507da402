import json

import pytest
import torch

from polymodal.errors import DataError
from polymodal.methods.ret.pairs import folder_fingerprint, load_pairs


def test_train_split_reads_images_texts_and_targets(pairs_folder):
    split = load_pairs(pairs_folder, "train", image_size=8)
    assert split.documents.images.shape == (3, 3, 8, 8)
    # d1 is pure red, resized; d3 has no image (zeros)
    torch.testing.assert_close(split.documents.images[0, :, 4, 4], torch.tensor([1.0, 0.0, 0.0]))
    assert split.documents.has_image.tolist() == [True, True, False]
    assert split.documents.texts == ["a red square", "", "a green circle"]
    assert split.documents.has_text.tolist() == [True, False, True]
    assert split.queries.texts == ["which is red", "the blue one"]
    assert split.target.tolist() == [0, 1]
    assert split.hard_negative[0].item() == 1  # listed: d2
    assert split.hard_negative[1].item() != 1  # drawn: any other document


def test_each_split_takes_its_own_queries(pairs_folder):
    assert load_pairs(pairs_folder, "val").target.tolist() == [2]
    assert load_pairs(pairs_folder, "test").queries.texts == ["red again"]


BROKEN = {
    "missing file": ("positives.tsv", None, r"positives.tsv is missing; a pairs folder holds"),
    "unknown document": (
        "positives.tsv",
        "q1\td1\nq2\td9\n",
        r"positives.tsv:2 names document 'd9'",
    ),
    "query without positive": ("positives.tsv", "q1\td1\n", "query 'q2' has no line in"),
    "neither modality": (
        "documents.jsonl",
        json.dumps({"id": "d1"}),
        r"documents.jsonl:1 \(d1\) has neither an image nor a text",
    ),
    "missing image": ("img/d2.png", None, r"image .*d2.png of d2 cannot be read"),
    "malformed json": (
        "queries.jsonl",
        '{"id": "q1", "text": "x"}\n{oops\n',
        r"queries.jsonl:2 is not valid JSON",
    ),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_folder_is_a_one_line_error_naming_file_and_line(pairs_folder, case):
    name, text, message = BROKEN[case]
    if text is None:
        (pairs_folder / name).unlink()
    else:
        (pairs_folder / name).write_text(text)
    with pytest.raises(DataError, match=message) as error:
        load_pairs(pairs_folder, "train")
    assert "\n" not in str(error.value)


def test_fingerprint_follows_the_content(pairs_folder):
    before = folder_fingerprint(pairs_folder)
    assert folder_fingerprint(pairs_folder) == before
    (pairs_folder / "positives.tsv").write_text("q1\td2\nq2\td2\nq3\td3\nq4\td1\n")
    assert folder_fingerprint(pairs_folder) != before
