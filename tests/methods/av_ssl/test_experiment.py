"""What the av_ssl check reads off a run folder."""

from pathlib import Path

from polymodal.methods.av_ssl import experiment as ex


def test_logged_mean_averages_the_steps_that_logged_the_value(tmp_path: Path) -> None:
    # Lightning's CSV logger leaves a cell empty on rows logged by another hook.
    (tmp_path / "metrics.csv").write_text(
        "epoch,step,train_mix_share,val_acc\n0,9,0.25,\n0,19,0.75,\n0,19,,0.5\n"
    )
    assert ex.logged_mean(tmp_path, "train_mix_share") == 0.5
    assert ex.logged_mean(tmp_path, "val_acc") == 0.5
    assert ex.logged_mean(tmp_path, "train_pseudo_share") is None


def test_the_ssl_methods_are_every_variant_but_the_supervised_ones() -> None:
    assert ex.SSL_METHODS == (
        "ssl_video_tube",
        "ssl_audio",
        "av_ssl_no_mix",
        "av_ssl_box_mix",
        "av_ssl_guided_mix",
    )
