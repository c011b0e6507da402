"""The Shapes-VQA vocabulary sits below both the questions and the texts."""

from __future__ import annotations

import subprocess
import sys

from polymodal.data.synth.shapes_vocab import ANSWERS, PAD, SPECIAL_TOKENS, TEXT_WORDS


def test_the_vocabulary_loads_without_the_question_or_text_modules() -> None:
    code = (
        "import sys, polymodal.data.synth.shapes_vocab\n"
        "loaded = [m for m in ('polymodal.data.synth.shapes_vqa', "
        "'polymodal.data.synth.shapes_text') if m in sys.modules]\n"
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pad_is_the_first_special_token_and_answers_are_distinct() -> None:
    assert SPECIAL_TOKENS[0] == PAD
    assert len(set(ANSWERS)) == len(ANSWERS)


def test_text_words_are_single_words_without_duplicates() -> None:
    assert all(" " not in word for word in TEXT_WORDS)
    assert len(set(TEXT_WORDS)) == len(TEXT_WORDS)
