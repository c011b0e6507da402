"""A Multimodal Symphony: taste-conditioned music generation (arXiv 2503.02823).

Library: :class:`TasteMusicGenerator` and :func:`build_taste_music` (a GPT-2 decoder
over event tokens with a MiniLM description prefix), :func:`compose_piece` (sampling
to MIDI and WAV), the independent taste judge (:mod:`.judge`) and the Hugging Face
MusicGen path (:mod:`.musicgen`); data: Taste-Music
(:mod:`polymodal.data.synth.taste_music`); recipe: ``polymodal fit taste_music_pretrain``
then ``polymodal fit taste_music``; CLI: ``polymodal compose``.
"""

from polymodal.methods.taste_music.model import TasteMusicGenerator, build_taste_music

__all__ = ["TasteMusicGenerator", "build_taste_music"]
