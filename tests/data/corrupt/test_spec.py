import math

import pytest

from polymodal.data.corrupt import (
    AUDIO_CORRUPTIONS,
    IMAGE_CORRUPTIONS,
    Corruption,
    audio_noise_level,
)
from polymodal.errors import ConfigError


def test_corruption_parses_modality_name_and_severity():
    assert Corruption.parse("audio:wind:5") == Corruption("audio", "wind", 5)
    assert str(Corruption("image", "fog", 2)) == "image:fog:2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("audio:wind", "MODALITY:NAME:SEVERITY"),
        ("video:fog:1", "'image' and 'audio'"),
        ("audio:fog:1", "unknown audio corruption 'fog'"),
        ("image:fog:6", "severity must be 0"),
    ],
)
def test_bad_corruptions_are_named(text, message):
    with pytest.raises(ConfigError, match=message):
        Corruption.parse(text)


def test_the_suites_have_fifteen_image_and_six_audio_corruptions():
    assert len(IMAGE_CORRUPTIONS) == 15 and len(AUDIO_CORRUPTIONS) == 6
    assert math.isclose(audio_noise_level("gaussian_noise", 3), 0.18)
