"""FratMAE: PET/CT masked autoencoding with cross-attending decoders (arXiv 2503.02824).

Library: :class:`FratMAE` and :func:`build_fratmae`; data: the PET/CT phantoms
(:mod:`polymodal.data.synth.petct`) and NIfTI cases (:mod:`polymodal.data.real.nifti`);
recipe: ``polymodal fit fratmae_pretrain`` then ``polymodal fit fratmae_finetune``.
"""

from polymodal.methods.fratmae.model import (
    MODALITIES,
    CrossDecoderBlock,
    FratMAE,
    FratMAEOutput,
    build_fratmae,
)

__all__ = ["MODALITIES", "CrossDecoderBlock", "FratMAE", "FratMAEOutput", "build_fratmae"]
