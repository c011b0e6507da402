"""``polymodal data``: listing data sets and one-line errors for bad builder options."""

from polymodal.cli import main


def test_list_names_the_embedded_sets(capsys):
    assert main(["data", "list"]) == 0
    names = capsys.readouterr().out.split()
    assert {"av_digits", "histo_omics", "shapes_vqa"} <= set(names)


def test_an_option_of_the_wrong_type_names_key_type_and_value(capsys):
    assert main(["data", "build", "av_digits", "-o", "train=abc"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "AV-Digits option 'train' expects int, got 'abc' (str)" in err
