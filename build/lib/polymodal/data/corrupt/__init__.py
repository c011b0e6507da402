"""Corruption suites: ImageNet-C for images, READ's protocol for audio, severities 1-5.

One modality is corrupted at a time, from an explicit seed (the same seed gives the
same corrupted data; severity 0 returns the clean input). The 15 image corruptions
act on (N, C, H, W) images in [0, 1] (values outside are clipped first; C is 1 or 3);
the audio ones on (N, S) waveforms.

**Images.** ImageNet-C's algorithms (Hendrycks & Dietterich, 2019), written here with
numpy, scipy.ndimage and PIL. Per-pixel corruptions keep the ImageNet-C values;
those whose effect depends on the pixel grid (blurs, weather textures, elastic,
pixelate, JPEG's 8×8 blocks) take the values the same authors chose for 32×32
CIFAR-10-C, the closest standard to 28×28 digits:

============== ======================================================= ============
corruption     parameter per severity 1-5                               source
============== ======================================================= ============
gaussian_noise σ .08 .12 .18 .26 .38                                    ImageNet-C
shot_noise     photons 60 25 12 5 3                                     ImageNet-C
impulse_noise  salt-and-pepper share .03 .06 .09 .17 .27                ImageNet-C
defocus_blur   disk radius .3 .4 .5 1 1.5 (anti-alias σ .4 .5 .6 .2 .1) CIFAR-10-C
glass_blur     σ .05 .25 .4 .25 .4, shift 1, passes 1 1 1 2 2           CIFAR-10-C
motion_blur    radius 6 6 6 8 9, σ 1 1.5 2 2 2.5                        CIFAR-10-C
zoom_blur      zooms 1 to 1.05 / 1.10 / 1.15 / 1.20 / 1.25, step .01    CIFAR-10-C
snow           CIFAR-10-C's seven-value settings                        CIFAR-10-C
frost          image weight 1 1 .9 .85 .75, frost weight .2 .3 .4 .4 .45 CIFAR-10-C
fog            strength .2 .5 .75 1 1.5, roughness decay 3 3 2.5 2 1.75 CIFAR-10-C
brightness     +V (HSV) .1 .2 .3 .4 .5                                  ImageNet-C
contrast       factor .4 .3 .2 .1 .05                                   ImageNet-C
elastic        CIFAR-10-C's settings with the image side 28 for 32      CIFAR-10-C
pixelate       scale .95 .9 .85 .75 .65 (box down, box up)              CIFAR-10-C
jpeg           quality 80 65 58 50 40                                   CIFAR-10-C
============== ======================================================= ============

Adaptations, besides the grid-dependent values: ImageMagick's motion blur (used by
motion_blur and snow) is re-implemented as its one-sided Gaussian line kernel with
edge replication; frost blends a procedural ice texture (a ridged noise network,
:func:`frost_texture`) because ImageNet-C's frost photographs do not ship; the
plasma fractal of fog is our own diamond-square on a 32×32 grid; intermediate 8-bit
quantisation is skipped except where it is the corruption (JPEG).

**Audio** (READ, ICLR 2024): ``gaussian_noise`` adds white noise of σ = .08 .12 .18
.26 .38 on the waveform; ``traffic``, ``crowd``, ``rain``, ``thunder`` and ``wind``
overlay a synthesised noise (:mod:`polymodal.data.synth.noises`) at a gain of +1 2 4
6 8 dB over a reference level of 0.1 RMS (-20 dBFS, a normalised recording's level),
as READ raises its recordings' gain before overlaying them.

Builders: :func:`av_digits_c` and :func:`av_mnist_c` return a corrupted test split.
"""

from __future__ import annotations

from polymodal.data.corrupt.audio import audio_noise, audio_noise_level, corrupt_waves
from polymodal.data.corrupt.datasets import av_digits_c, av_mnist_c
from polymodal.data.corrupt.image import (
    corrupt_images,
    frost_texture,
    motion_blur_planes,
    plasma_fractal,
)
from polymodal.data.corrupt.spec import (
    AUDIO_CORRUPTIONS,
    IMAGE_CORRUPTIONS,
    SEVERITIES,
    Corruption,
)

__all__ = [
    "AUDIO_CORRUPTIONS",
    "IMAGE_CORRUPTIONS",
    "SEVERITIES",
    "Corruption",
    "audio_noise",
    "audio_noise_level",
    "av_digits_c",
    "av_mnist_c",
    "corrupt_images",
    "corrupt_waves",
    "frost_texture",
    "motion_blur_planes",
    "plasma_fractal",
]
