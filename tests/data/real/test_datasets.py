import pytest

from polymodal.data.registry import build_dataset, dataset_names
from polymodal.errors import ConfigError


def test_real_datasets_are_registered():
    assert {"av_digits", "av_mnist", "fsdd"} <= set(dataset_names())


def test_fsdd_validation_split_is_takes_five_to_nine(shared_data):
    root = str(shared_data / "fsdd")
    train, val, test = (build_dataset("fsdd", s, root=root) for s in ("train", "val", "test"))
    # 6 speakers x 10 digits: takes 0-4 test, 5-9 val, 10-49 train.
    assert (len(train), len(val), len(test)) == (2400, 300, 300)
    takes = val.dataset.takes
    assert {takes[i] for i in val.indices} == {5, 6, 7, 8, 9}
    assert val.num_classes == 10 and val[0]["audio"].shape == (40, 101)


def test_missing_folder_option_is_a_config_error():
    with pytest.raises(ConfigError, match="needs data.options.root"):
        build_dataset("fsdd", "train")
    with pytest.raises(ConfigError, match="unknown dataset 'mnist-ish'"):
        build_dataset("mnist-ish", "train")
