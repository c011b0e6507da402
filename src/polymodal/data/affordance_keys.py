"""Sample keys of affordance-grounding data: the exocentric view of a training pair
(``exo_image`` (3, H, W), ``exo_depth`` (1, H, W)) and which ``object`` a view shows."""

from __future__ import annotations

from polymodal.data.specs import (
    MODALITIES,
    TARGETS,
    ModalitySpec,
    TargetSpec,
    register_modality,
    register_target,
)

for _name, _spec in (
    ("exo_image", ModalitySpec("(C, H, W)", (3,))),
    ("exo_depth", ModalitySpec("(1, H, W)", (3,), sizes=((-3, 1),))),
):
    if _name not in MODALITIES:
        register_modality(_name, _spec)
if "object" not in TARGETS:
    register_target("object", TargetSpec("()", (0,), "int64"))
