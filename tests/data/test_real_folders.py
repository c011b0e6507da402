from pathlib import Path

from polymodal.data.real_folders import av_mnist_options


def test_av_mnist_options_point_inside_the_data_folder():
    assert av_mnist_options(Path("/data")) == {
        "mnist_folder": "/data/mnist-t10k",
        "fsdd_root": "/data/fsdd/recordings",
    }


def test_the_shared_data_folder_has_that_layout(shared_data):
    for folder in av_mnist_options(shared_data).values():
        assert Path(folder).is_dir()
