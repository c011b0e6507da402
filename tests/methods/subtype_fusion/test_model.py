import pytest
import torch
from torch import nn

from polymodal.errors import DataError
from polymodal.methods.subtype_fusion import (
    FUSIONS,
    AttentionPool,
    GeneEncoder,
    SubtypeFusionModel,
    TileEncoder,
    build_subtype_model,
    tile_mask,
)

MODALITIES = {
    "tiles": {"encoder": "cnn", "shape": [4, 3, 16, 16], "depth": 2},
    "genes": {"shape": [30], "tokens": 4, "hidden": [32]},
}


def bags(B: int = 3, N: int = 4, counts: tuple[int, ...] = (4, 2, 1)) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    tiles = torch.rand(B, N, 3, 16, 16) + 0.01
    for b, count in enumerate(counts):
        tiles[b, count:] = 0.0  # padding
    return {"tiles": tiles, "genes": torch.rand(B, 30) * 10, "label": torch.zeros(B).long()}


def model(fusion: str) -> SubtypeFusionModel:
    return build_subtype_model(fusion, MODALITIES, num_classes=4, dim=16, seed=0).eval()


@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_variant_gives_logits_and_pooling_ignores_padding(fusion):
    out = model(fusion)(bags())
    assert out.logits.shape == (3, 4)
    if fusion == "genes_only":
        assert out.tile_weights is None
        return
    assert out.tile_weights is not None
    torch.testing.assert_close(out.tile_weights.sum(dim=1), torch.ones(3))
    assert out.tile_weights[1, 2:].abs().sum() == 0 and out.tile_weights[2, 1:].abs().sum() == 0


@pytest.mark.parametrize("fusion", ["cross_attention", "concat", "tiles_only"])
def test_extra_padding_tiles_and_tile_order_do_not_change_the_prediction(fusion):
    net, batch = model(fusion), bags()
    with torch.no_grad():
        reference = net(batch).logits
        padded = dict(batch, tiles=torch.cat([batch["tiles"], torch.zeros(3, 3, 3, 16, 16)], 1))
        shuffled = dict(batch, tiles=batch["tiles"][:, [3, 1, 0, 2]])
        shuffled["tiles"][1] = batch["tiles"][1, [1, 0, 2, 3]]  # keep bag 1 to its two tiles
        torch.testing.assert_close(net(padded).logits, reference)
        torch.testing.assert_close(net(shuffled).logits[[0, 1]], reference[[0, 1]])


def test_cross_attention_weights_have_eight_heads_and_skip_padding_queries():
    net = build_subtype_model("cross_attention", MODALITIES, num_classes=4, dim=16).eval()
    out = net(bags(), return_attention=True)
    weights = out.attentions["tiles->genes"]
    assert weights.shape == (3, 8, 4, 4)  # (B, heads, tiles, gene tokens)
    torch.testing.assert_close(weights[0].sum(dim=-1), torch.ones(8, 4))
    assert weights[2, :, 1:].abs().sum() == 0


def test_genes_change_the_fused_prediction_but_not_the_tiles_only_one():
    batch = bags()
    other = dict(batch, genes=batch["genes"].flip(0))
    with torch.no_grad():
        fused = model("cross_attention")
        assert not torch.allclose(fused(batch).logits, fused(other).logits)
        tiles_only = model("tiles_only")
        torch.testing.assert_close(tiles_only(batch).logits, tiles_only(other).logits)


def test_a_missing_modality_is_handled_as_documented():
    batch = bags()
    no_genes = dict(batch, genes_mask=torch.tensor([True, False, True]))
    no_tiles = dict(batch, tiles_mask=torch.tensor([False, True, True]))
    for fusion in ("cross_attention", "concat"):
        assert torch.isfinite(model(fusion)(no_genes).logits).all()
        assert torch.isfinite(model(fusion)(no_tiles).logits).all()
    # Without genes, the cross-attention output of sample 1 ignores its gene values.
    changed = dict(no_genes, genes=no_genes["genes"].clone())
    changed["genes"][1] += 5
    net = model("cross_attention")
    torch.testing.assert_close(net(changed).logits[1], net(no_genes).logits[1])
    with pytest.raises(DataError, match=r"samples \[1\] have no genes"):
        model("genes_only")(no_genes)
    with pytest.raises(DataError, match=r"samples \[0\] have neither tiles nor genes"):
        model("concat")(
            dict(
                no_genes,
                genes_mask=torch.tensor([False, True, True]),
                tiles_mask=torch.tensor([False, True, True]),
            )
        )


def test_bad_input_shapes_are_named():
    batch = bags()
    with pytest.raises(DataError, match="'genes' expected shape"):
        model("concat")(dict(batch, genes=torch.rand(3, 29)))


def test_any_module_can_encode_the_tiles():
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 16))
    net = SubtypeFusionModel(
        TileEncoder(backbone, 16), GeneEncoder(30, dim=16, tokens=2), num_classes=3, dim=16
    )
    assert net(bags()).logits.shape == (3, 3)


def test_attention_pool_matches_a_hand_computed_softmax():
    pool = AttentionPool(2, hidden=2)
    with torch.no_grad():
        for layer in (pool.value, pool.gate, pool.score):
            layer.weight.fill_(1.0)
            layer.bias.zero_()
    x = torch.tensor([[[1.0, 0.0], [0.0, 0.0], [5.0, 5.0]]])
    pooled, weights = pool(x, torch.tensor([[True, True, False]]))
    # Scores: 2 * tanh(1) * sigmoid(1) for the first member, 0 for the second.
    s = 2 * torch.tanh(torch.tensor(1.0)) * torch.sigmoid(torch.tensor(1.0))
    first = torch.sigmoid(s)  # softmax of (s, 0)
    torch.testing.assert_close(weights, torch.tensor([[first, 1 - first, 0.0]]))
    torch.testing.assert_close(pooled, torch.tensor([[first, 0.0]]))


def test_tile_mask_marks_all_zero_tiles_as_padding():
    tiles = torch.zeros(1, 3, 3, 2, 2)
    tiles[0, 1, 2, 1, 1] = 0.5
    assert tile_mask(tiles).tolist() == [[False, True, False]]


def test_builder_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown fusion 'sum'"):
        build_subtype_model("sum", MODALITIES, 4)
    with pytest.raises(ValueError, match="needs modalities \\['genes'\\]"):
        build_subtype_model("concat", {"tiles": MODALITIES["tiles"]}, 4)
