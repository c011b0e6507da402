import pytest
import torch
from transformers import (
    CLIPVisionConfig,
    CLIPVisionModel,
    Dinov2Config,
    Dinov2Model,
    ViTConfig,
    ViTModel,
)

from polymodal.errors import DataError
from polymodal.methods.bit_align import BiTAlign, build_bit_align, parameter_counts
from polymodal.methods.bit_align.backbone import OurViT
from polymodal.modules.encoders import ViTEncoder

TINY = dict(
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=32,
    image_size=16,
    patch_size=4,
)
HF_MODELS = {
    "vit": lambda: ViTModel(ViTConfig(**TINY), add_pooling_layer=False),
    "clip": lambda: CLIPVisionModel(CLIPVisionConfig(**TINY)),
    "dinov2": lambda: Dinov2Model(Dinov2Config(**TINY)),
}


def _batch(size: int = 16, b: int = 2, exo: bool = False) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    batch = {
        "image": torch.rand(b, 3, size, size, generator=g),
        "depth": torch.rand(b, 1, size, size, generator=g),
        "label": torch.tensor([0, 2])[:b],
    }
    if exo:
        batch["exo_image"] = torch.rand(b, 3, size, size, generator=g)
        batch["exo_depth"] = torch.rand(b, 1, size, size, generator=g)
    return batch


def _ours(texts, variant: str = "bit_align", **kwargs) -> BiTAlign:
    torch.manual_seed(0)
    vit = ViTEncoder(16, 4, 3, dim=16, depth=2, num_heads=2)
    return BiTAlign(vit, texts, variant, rank=3, **kwargs)


@pytest.mark.parametrize("name", list(HF_MODELS))
def test_prompts_reach_every_block_of_a_hugging_face_vit(name, texts):
    torch.manual_seed(0)
    hf = HF_MODELS[name]().eval()
    model = BiTAlign(hf, texts, "bit_align", rank=3).eval()
    batch = _batch()
    with torch.no_grad():
        plain = model.encode(batch["image"], batch["depth"], attention=True)
        for block in model.prompts.blocks:  # make W_up non-zero: prompts now change z
            torch.nn.init.normal_(block.up.weight, std=0.5)
        prompted = model.encode(batch["image"], batch["depth"], attention=True)
        rgb_only = hf(pixel_values=batch["image"]).last_hidden_state[:, 1:]
        out = model(batch)
    torch.testing.assert_close(plain.patches, rgb_only)  # zero-initialised W_up: the frozen ViT
    assert (prompted.patches - rgb_only).abs().max() > 1e-3
    assert plain.cls_attention.shape == (2, 2, 16)
    patches_share = plain.cls_attention.sum(-1)  # the rest is CLS attending to itself
    assert ((patches_share > 0) & (patches_share < 1 + 1e-6)).all()
    assert out.heatmap.shape == (2, 16, 16) and (out.heatmap > 0).all()
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"prompts", "tfg", "head"}


def test_the_hook_runs_once_before_each_block_of_our_vit(texts):
    model = _ours(texts)
    seen = []
    hook = model._depth_hook(torch.rand(2, 1, 16, 16))

    def spy(index, tokens):
        seen.append(index)
        return hook(index, tokens)

    model.backbone.encode(torch.rand(2, 3, 16, 16), spy)
    assert seen == [0, 1]


def test_variants_train_only_their_own_parameters(texts):
    depth_vit = ViTEncoder(16, 4, 1, dim=16, depth=2, num_heads=2)
    models = {
        "bit_align": _ours(texts),
        "bpm": _ours(texts, "bpm"),
        "rgb": _ours(texts, "rgb"),
        "dual": _ours(texts, "dual", depth_vit=depth_vit),
        "early": _ours(texts, "early"),
    }
    counts = {name: parameter_counts(m) for name, m in models.items()}
    head = sum(p.numel() for p in models["rgb"].head.parameters())
    tfg = sum(p.numel() for p in models["rgb"].tfg.parameters())
    prompts = sum(p.numel() for p in models["bpm"].prompts.parameters())
    vit = sum(p.numel() for p in models["rgb"].backbone.parameters())
    assert counts["rgb"] == {"total": vit + head + tfg, "trainable": head + tfg, "added": 0}
    assert counts["bpm"]["trainable"] == head + prompts == counts["bpm"]["total"] - vit
    assert counts["bit_align"]["added"] == prompts
    assert counts["dual"]["added"] == sum(p.numel() for p in depth_vit.parameters())
    assert counts["early"]["trainable"] == counts["early"]["total"]
    assert counts["early"]["added"] == 16 * 16 + 16  # a 4x4 one-channel patch embedding


def test_the_training_loss_sees_both_views_and_the_maps_need_no_truth(texts):
    model = _ours(texts).train()
    out = model(_batch(exo=True))
    assert set(out.parts) == {"ce", "part"} and out.loss is not None
    out.loss.backward()
    assert model.prompts.blocks[0].up.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.backbone.parameters())
    model.eval()
    assert model(_batch()).loss is None


def test_without_a_label_the_map_is_of_the_predicted_affordance(texts):
    model = _ours(texts).eval()
    batch = _batch()
    with torch.no_grad():
        unlabelled = model({k: v for k, v in batch.items() if k != "label"})
        predicted = unlabelled.logits.argmax(1)
        labelled = model({**batch, "label": predicted})
    torch.testing.assert_close(unlabelled.heatmap, labelled.heatmap)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b | {"depth": torch.rand(2, 1, 8, 8)}, r"depth must be \(B, 1, 16, 16\)"),
        (lambda b: b | {"depth": b["depth"].index_fill(2, torch.tensor([3]), float("nan"))}, "NaN"),
        (lambda b: {k: v for k, v in b.items() if k != "depth"}, "needs 'depth'"),
        (lambda b: b | {"image": torch.rand(2, 1, 16, 16)}, r"image must be \(B, 3, 16, 16\)"),
    ],
)
def test_bad_inputs_are_one_line_data_errors(texts, change, message):
    model = _ours(texts).eval()
    with pytest.raises(DataError, match=message) as info:
        model(change(_batch()))
    assert "\n" not in str(info.value)


def test_an_affordance_word_the_text_encoder_was_not_given_is_a_one_line_error(texts):
    torch.testing.assert_close(texts.index(["pour", "grasp"]), torch.tensor([2, 0]))
    with pytest.raises(DataError, match="'slice' was not given to the text encoder") as info:
        texts.index(["grasp", "slice"])
    assert "\n" not in str(info.value)


def test_the_builder_names_the_rgb_vit_for_a_pretrained_classifier(texts):
    options = dict(dim=16, patch_size=4, depth=2, num_heads=2, seed=0)
    image = {"image": {"shape": [3, 16, 16]}}
    model = build_bit_align("", image, affordances=("grasp", "cut"), text_encoder="none", **options)
    assert isinstance(model.backbone, OurViT)
    assert "backbone.vit.patch_embed.weight" in model.state_dict()
    assert model.texts.words == ("grasp", "cut")
