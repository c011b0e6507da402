"""A tiny untrained omni model and fake spoken samples, shared by the Nexus-O tests."""

from __future__ import annotations

import pytest
import torch

from polymodal.data.synth.shapes_vocab import IMAGE
from polymodal.data.synth.shapes_vqa import build_tokenizer, encode
from polymodal.hf.llava import SmallLlavaConfig, build_small_llava
from polymodal.methods.nexus_o.model import NexusOConfig
from polymodal.methods.nexus_o.recipe import OmniRun, grow_vlm

QUESTIONS = (
    "what color is the circle ?",
    "how many objects are there ?",
    "is there a red square ?",
)


def tiny_llava(tokenizer) -> SmallLlavaConfig:
    return SmallLlavaConfig(
        vocab_size=tokenizer.get_vocab_size(),
        image_token_id=tokenizer.token_to_id(IMAGE),
        image_size=32,
        vision_hidden=16,
        vision_layers=1,
        text_hidden=16,
        text_layers=1,
        heads=2,
    )


@pytest.fixture
def tiny_vlm():
    """(LlavaForConditionalGeneration, tokenizer, its config) of a tiny random VLM, no <audio>."""
    tokenizer = build_tokenizer()
    llava = tiny_llava(tokenizer)
    torch.manual_seed(0)
    return build_small_llava(llava), tokenizer, llava


def make_omni() -> OmniRun:
    """A tiny untrained omni model, the same on every call."""
    tokenizer = build_tokenizer()
    llava = tiny_llava(tokenizer)
    sizes = NexusOConfig(audio_hidden=16, audio_layers=1, audio_heads=2, audio_tokens=4, units=5)
    torch.manual_seed(0)
    return grow_vlm(build_small_llava(llava), tokenizer, llava, sizes)


@pytest.fixture
def omni() -> OmniRun:
    return make_omni()


@pytest.fixture
def omni_factory():
    """Makes the ``omni`` model afresh (for runs that must start from the same weights)."""
    return make_omni


@pytest.fixture
def samples() -> list[dict[str, torch.Tensor]]:
    tokenizer = build_tokenizer()
    ids = encode(tokenizer, list(QUESTIONS))
    generator = torch.Generator().manual_seed(0)
    return [
        {
            "image": torch.rand(3, 32, 32, generator=generator),
            "text_ids": ids[i],
            "label": torch.tensor(i),
            "question_type": torch.tensor(i),
            "audio": 0.1 * torch.randn(4000 + 800 * i, generator=generator),
        }
        for i in range(len(QUESTIONS))
    ]
