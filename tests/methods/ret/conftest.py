import json

import numpy as np
import pytest
from PIL import Image


def write_pairs(folder, positives="q1\td1\td2\nq2\td2\nq3\td3\td1\nq4\td1\n"):
    """A tiny pairs folder: 3 documents, 4 queries (2 train, 1 val, 1 test)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "img").mkdir(exist_ok=True)
    for i, colour in enumerate([(255, 0, 0), (0, 0, 255), (0, 255, 0)]):
        pixels = np.zeros((20, 30, 3), dtype=np.uint8)
        pixels[:] = colour
        Image.fromarray(pixels).save(folder / "img" / f"d{i + 1}.png")
    documents = [
        {"id": "d1", "image": "img/d1.png", "text": "a red square"},
        {"id": "d2", "image": "img/d2.png"},
        {"id": "d3", "text": "a green circle"},
    ]
    queries = [
        {"id": "q1", "image": "img/d1.png", "text": "which is red", "split": "train"},
        {"id": "q2", "text": "the blue one", "split": "train"},
        {"id": "q3", "image": "img/d3.png", "split": "val"},
        {"id": "q4", "text": "red again", "split": "test"},
    ]
    (folder / "documents.jsonl").write_text("\n".join(json.dumps(d) for d in documents))
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries))
    (folder / "positives.tsv").write_text(positives)
    return folder


@pytest.fixture
def pairs_folder(tmp_path):
    return write_pairs(tmp_path / "pairs")


@pytest.fixture
def tiny_clip():
    """``CLIPVisionConfig`` options of a tiny random CLIP: 4 layers of width 32, 32-pixel
    images in 8-pixel patches."""
    return {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 4,
        "num_attention_heads": 2,
        "image_size": 32,
        "patch_size": 8,
    }
