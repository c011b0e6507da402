"""Abn-BLIP: abnormality-aligned Q-Former queries for CTPA report generation (arXiv 2503.02034).

Library: :class:`AbnBlip` and :func:`build_abn_blip`; data: the CTPA phantoms
(:mod:`polymodal.data.synth.ctpa`) and the findings parser
(:mod:`polymodal.data.synth.ctpa_reports`); recipe: ``polymodal fit abn_blip_encoder``
then ``polymodal fit abn_blip``.
"""

from polymodal.methods.abn_blip.model import AbnBlip, AbnBlipOutput, build_abn_blip

__all__ = ["AbnBlip", "AbnBlipOutput", "build_abn_blip"]
