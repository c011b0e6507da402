"""Nexus-O: a VLM that hears questions and speaks answers (arXiv 2503.01879).

Library: :class:`NexusO` (:mod:`.model`) with its audio encoder and adapter
(:mod:`.audio`), the ``<audio>`` token (:mod:`.tokens`), the omni rows
(:mod:`.batches`), the speech-unit decoder (:mod:`.speech_out`) and the stages
(:mod:`.stages`); data: Spoken Shapes-VQA
(:mod:`polymodal.data.synth.spoken_shapes_vqa`); recipe: ``polymodal fit
configs/nexus_o_stage{1,2,3}.yaml`` (:mod:`.recipe`), then ``polymodal ask``.
"""

from polymodal.methods.nexus_o.model import STAGES, NexusO, NexusOConfig

__all__ = ["STAGES", "NexusO", "NexusOConfig"]
