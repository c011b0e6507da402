import numpy as np
import pytest
import torch

from polymodal.data.synth import shapes_retrieval as sr
from polymodal.data.synth.shapes_render import Scene
from polymodal.errors import ConfigError

OPTIONS = {"train": 400, "val": 20, "test": 20}


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    import os

    os.environ["POLYMODAL_HOME"] = str(tmp_path_factory.mktemp("home"))
    return sr.load_shapes_retrieval("train", **OPTIONS)


def scenes(split):
    tables = split.documents["scene"]
    return [Scene(t[t[:, 0] > 0, 1:].numpy(), 0) for t in tables]


def matching(facts, text):
    """Documents where one object has both relations of a query text; the object must
    also carry the text's name when the text names it ("a small red circle is ...")."""
    subject, relations = text.split(" is ", 1)
    named = None if subject == "this object" else subject.removeprefix("a ")
    found = []
    for phrase in relations.split(" and "):
        words = phrase.split()
        relation, other = words[0], " ".join(words[-3:])
        found.append(
            {
                (d, row)
                for (name, rel, oth), where in facts.items()
                if rel == relation and oth == other and named in (None, name)
                for d, row in where
            }
        )
    return {d for d, _ in found[0] & found[1]}


def test_every_text_query_naming_its_object_matches_only_its_target(split):
    facts = sr._facts(scenes(split))
    q = split.queries
    for text, target, kind in zip(split.texts("queries"), q["target"], q["kind"], strict=True):
        if int(kind) == 1:
            assert matching(facts, text) == {int(target)}
        elif int(kind) == 0:  # "this object": the target is among the matches
            assert int(target) in matching(facts, text)


def test_text_alone_often_matches_several_documents(split):
    facts = sr._facts(scenes(split))
    texts = [
        t for t, k in zip(split.texts("queries"), split.queries["kind"], strict=True) if k == 0
    ]
    ambiguous = sum(len(matching(facts, t)) > 1 for t in texts)
    assert ambiguous > 0.35 * len(texts)  # 43 % at 400 documents; more in larger collections


def test_hard_negative_is_the_twin_differing_in_one_object(split):
    tables = split.documents["scene"]
    for target, twin in zip(split.queries["target"], split.queries["hard_negative"], strict=True):
        assert int(twin) == int(target) + 1 and int(target) % 2 == 0
        a, b = tables[int(target)], tables[int(twin)]
        torch.testing.assert_close(a[:, [0, 3, 4, 5, 6]], b[:, [0, 3, 4, 5, 6]])  # same places
        changed = (a[:, 1:3] != b[:, 1:3]).any(dim=1)
        assert 1 <= int(changed.sum()) <= 2  # one object recoloured/reshaped, or two swapped


def test_kinds_set_the_modality_masks(split):
    q = split.queries
    kind = q["kind"]
    assert torch.equal(q["image_mask"], kind != 1)
    assert torch.equal(q["text_ids_mask"], kind != 2)
    assert set(kind.tolist()) <= {0, 1, 2}
    d = split.documents
    assert bool((d["image_mask"] | d["text_ids_mask"]).all())
    assert float(d["image"][~d["image_mask"]].abs().sum()) == 0


def test_texts_round_trip_through_word_ids():
    text = "this object is left of a small red circle and above a large blue square"
    assert sr.decode(torch.tensor(sr.encode(text) + [0, 0])) == text


def test_builds_are_deterministic_and_cached(split):
    again = sr.load_shapes_retrieval("train", **OPTIONS)
    for key in split.queries:
        assert torch.equal(split.queries[key], again.queries[key])


@pytest.mark.parametrize(
    "options, message",
    [
        ({"image_size": 30}, "multiple of 4"),
        ({"train": 7}, "even number"),
        ({"colours": 3}, "no options"),
    ],
)
def test_bad_options_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        sr.build_shapes_retrieval(**options)


def test_unknown_split_is_a_config_error():
    with pytest.raises(ConfigError, match="splits"):
        sr.load_shapes_retrieval("dev")


def test_twin_changes_one_named_object():
    rng = np.random.default_rng(0)
    base = sr.sample_scene(rng, 48, 3, 4, layout="grid", grid=4)
    twin = sr._twin(base, [0, 1], rng)
    changed = np.nonzero((base.objects[:, :2] != twin.objects[:, :2]).any(axis=1))[0]
    assert set(changed.tolist()) <= {0, 1} and len(changed) >= 1
