"""The ``polymodal`` command.

Every command lives in its own module of this package and exposes
``add_parser(commands)``, which registers its sub-parser with
``set_defaults(func=...)``; :data:`COMMANDS` lists them in the order of
``polymodal --help``. :func:`main` turns a :class:`~polymodal.errors.PolymodalError`
into one ``polymodal: error: ...`` line and exit code 2; any other exception is a
bug and keeps its traceback.

Heavy imports (torch, Lightning) happen inside the command bodies so that
``polymodal --help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from polymodal.cli.common import take_trailing_overrides

DESCRIPTION = """\
polymodal: multimodal learning methods that run, on data that ships, with claims
that are re-measured.

examples:
  polymodal bench --quick                      smoke-size claims suite (minutes)
  polymodal bench --only fusion --out runs/b   one claim check, report in runs/b
  polymodal data build av_digits               build the embedded AV-Digits set
  polymodal cache list                         cached data and models, with sizes
  polymodal fit configs/fusion_av_digits.yaml trainer.max_epochs=3
  polymodal fit configs/shapes_vlm.yaml        train the small VLM on Shapes-VQA
  polymodal eval runs/fusion                   test metrics of a finished run
  polymodal predict runs/fusion my_files/ --out preds/   apply a run to your files
  polymodal cv configs/subtype_fusion.yaml --folds 5
  polymodal adapt runs/abpem_av_digits --corrupt audio:wind:5
  polymodal analyze contribution runs/fusion   how much each modality counts
  polymodal compose "a bitter, dark piece" --seconds 10 --out piece   MIDI + WAV
  polymodal asr-testbed --recognizer whisper-tiny.en   WER per scenario x severity
  polymodal ask scene.png --audio question.wav  a spoken question answered (Nexus-O)
"""

COMMANDS = (
    "data",
    "cache",
    "fit",
    "predict",
    "cv",
    "adapt",
    "analyze",
    "bench",
    "compose",
    "asr_testbed",
    "ask",
    "retrieve",
)
"""Modules of this package that add a command, in the order ``--help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    """The ``polymodal`` parser with every command of :data:`COMMANDS` registered."""
    parser = argparse.ArgumentParser(
        prog="polymodal",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"polymodal.cli.{name}").add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command.

    Args:
        argv: the arguments after ``polymodal`` (default: ``sys.argv[1:]``).

    Returns:
        The exit code: the command's own (0 on success), 2 for a usage or input
        error (one line on stderr).
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    extra = take_trailing_overrides(args, extra)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    from polymodal.errors import PolymodalError

    try:
        return int(args.func(args))
    except PolymodalError as error:
        # Bad input, not a bug: one line that says what to fix, no traceback.
        message = " ".join(str(error).split())
        print(f"polymodal: error: {message}", file=sys.stderr)
        return 2
