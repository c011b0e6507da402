import pytest
import torch
from safetensors.torch import load_file

from polymodal.errors import DataError
from polymodal.train.checkpoint import SafetensorsCheckpointIO, load_weights


def test_checkpoint_folder_round_trips_weights_and_state(tmp_path):
    io = SafetensorsCheckpointIO()
    weights = {"layer.weight": torch.arange(6.0).reshape(2, 3)}
    state = {"epoch": 1, "optimizer_states": [{"state": {0: {"step": torch.tensor(3.0)}}}]}
    io.save_checkpoint({"state_dict": weights, **state}, tmp_path / "last.ckpt")
    assert load_file(str(tmp_path / "last.ckpt" / "model.safetensors"))["layer.weight"].sum() == 15
    loaded = io.load_checkpoint(tmp_path / "last.ckpt")
    torch.testing.assert_close(loaded["state_dict"]["layer.weight"], weights["layer.weight"])
    assert loaded["epoch"] == 1
    assert loaded["optimizer_states"][0]["state"][0]["step"] == 3
    io.save_checkpoint({"state_dict": weights, "epoch": 2}, tmp_path / "last.ckpt")
    assert io.load_checkpoint(tmp_path / "last.ckpt")["epoch"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    io.remove_checkpoint(tmp_path / "last.ckpt")
    assert not (tmp_path / "last.ckpt").exists()


def test_unreadable_weights_raise_data_error(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(DataError, match="not a readable safetensors file"):
        load_weights(tmp_path)
    with pytest.raises(DataError, match="no weights at"):
        load_weights(tmp_path / "nothing")
    with pytest.raises(DataError, match="not a polymodal checkpoint folder"):
        SafetensorsCheckpointIO().load_checkpoint(tmp_path)
