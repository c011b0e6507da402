"""What a corruption is: modality, name, severity, and each one's parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from polymodal.errors import ConfigError

SEVERITIES = (1, 2, 3, 4, 5)

IMAGE_CORRUPTIONS = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic",
    "pixelate",
    "jpeg",
)
"""The 15 ImageNet-C corruptions, in ImageNet-C's order."""

AUDIO_CORRUPTIONS = ("gaussian_noise", "traffic", "crowd", "rain", "thunder", "wind")
"""READ's six audio corruptions."""

AUDIO_NOISE_STD = (0.08, 0.12, 0.18, 0.26, 0.38)
OVERLAY_GAIN_DB = (1.0, 2.0, 4.0, 6.0, 8.0)
OVERLAY_REFERENCE_RMS = 0.1

IMAGE_SETTINGS: dict[str, tuple[Any, ...]] = {
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),
    "shot_noise": (60, 25, 12, 5, 3),
    "impulse_noise": (0.03, 0.06, 0.09, 0.17, 0.27),
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
    "zoom_blur": (1.06, 1.11, 1.16, 1.21, 1.26),  # zooms 1, 1.01, ... below this bound
    "snow": (
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ),
    "frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),
    # (displacement scale, displacement smoothness, affine jitter) as fractions of the side
    "elastic": (
        (0, 0, 0.08),
        (0.05, 0.2, 0.07),
        (0.08, 0.06, 0.06),
        (0.1, 0.04, 0.05),
        (0.1, 0.03, 0.03),
    ),
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
    "jpeg": (80, 65, 58, 50, 40),
}


@dataclass(frozen=True)
class Corruption:
    """One corruption of one modality at one severity, e.g. ``Corruption("audio", "wind", 5)``."""

    modality: str
    name: str
    severity: int

    def __post_init__(self) -> None:
        names = {"image": IMAGE_CORRUPTIONS, "audio": AUDIO_CORRUPTIONS}.get(self.modality)
        if names is None:
            raise ConfigError(f"corruptions exist for 'image' and 'audio', not {self.modality!r}")
        if self.name not in names:
            raise ConfigError(
                f"unknown {self.modality} corruption {self.name!r}; "
                f"choose one of {', '.join(names)}"
            )
        if self.severity not in (0, *SEVERITIES):
            raise ConfigError(f"severity must be 0 (clean) to 5, got {self.severity}")

    @classmethod
    def parse(cls, text: str) -> Corruption:
        """``"audio:wind:5"`` -> ``Corruption("audio", "wind", 5)``."""
        parts = text.split(":")
        if len(parts) != 3 or not parts[2].strip().isdigit():
            raise ConfigError(f"corruption {text!r} must look like MODALITY:NAME:SEVERITY")
        return cls(parts[0].strip(), parts[1].strip(), int(parts[2]))

    def __str__(self) -> str:
        return f"{self.modality}:{self.name}:{self.severity}"


def check_corruption(modality: str, name: str, severity: int) -> None:
    Corruption(modality, name, severity)  # raises ConfigError when unknown
