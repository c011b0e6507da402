"""What a VQA item is asked with: the image or not, and which text, if any."""

from __future__ import annotations

from typing import NamedTuple

from polymodal.data.synth.shapes_text import VARIANTS
from polymodal.errors import ConfigError


class Condition(NamedTuple):
    """One way of asking an item.

    Attributes:
        image: whether the image is shown.
        text: the text variant placed beside the question (an entry of
            ``VARIANTS``), or None for no text.
    """

    image: bool
    text: str | None

    @property
    def name(self) -> str:
        """``image_only``, ``question_only``, ``image_<variant>`` or ``text_only_<variant>``."""
        if self.text is None:
            return "image_only" if self.image else "question_only"
        return f"{'image' if self.image else 'text_only'}_{self.text}"

    @classmethod
    def parse(cls, name: str) -> Condition:
        """The condition a :attr:`name` stands for.

        Raises:
            ConfigError: an unknown name.
        """
        for condition in ALL_CONDITIONS:
            if condition.name == name:
                return condition
        known = ", ".join(c.name for c in ALL_CONDITIONS)
        raise ConfigError(f"unknown condition {name!r}; known: {known}")


IMAGE_ONLY = Condition(True, None)
ALL_CONDITIONS = (
    IMAGE_ONLY,
    Condition(False, None),
    *(Condition(False, v) for v in VARIANTS),
    *(Condition(True, v) for v in VARIANTS),
)
PROBE_CONDITIONS = (
    IMAGE_ONLY,
    *(Condition(False, v) for v in VARIANTS),
    *(Condition(True, v) for v in VARIANTS),
)
"""The conditions of the probe: image-only, and text-only and image+text per variant."""
