"""Argument helpers shared by the commands."""

from __future__ import annotations

import argparse


def add_config_arguments(parser: argparse.ArgumentParser, example: str) -> None:
    """Add ``CONFIG [KEY=VALUE ...]``: a YAML experiment file plus dotted overrides.

    Overrides may also follow the command's options (``fit CONFIG --resume
    trainer.max_epochs=3``); :func:`take_trailing_overrides` collects them.

    Args:
        parser: the command's parser.
        example: a config file to name in the help, e.g. ``configs/fusion_av_digits.yaml``.
    """
    parser.add_argument("config", help=f"YAML experiment file, e.g. {example}")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="dotted overrides parsed as YAML, e.g. trainer.max_epochs=3 seed=1",
    )


def take_trailing_overrides(args: argparse.Namespace, extra: list[str]) -> list[str]:
    """Move ``KEY=VALUE`` words argparse left over into ``args.overrides``.

    argparse stops filling a positional ``nargs="*"`` at the first option, so the
    overrides after an option arrive as unrecognised arguments.

    Args:
        args: the parsed arguments.
        extra: what ``parse_known_args`` did not recognise.

    Returns:
        The words still unrecognised (empty when all were overrides of a command
        that takes them).
    """
    if extra and hasattr(args, "overrides") and all("=" in e and e[0] != "-" for e in extra):
        args.overrides = [*args.overrides, *extra]
        return []
    return extra


ALL = "all"


def add_samples_argument(parser: argparse.ArgumentParser, default: int | None, what: str) -> None:
    """Add ``--samples N|all``: how many of the first samples a command uses.

    The value is checked by :func:`sample_count` in the command body, so that a bad
    one is reported as the one-line error of every other bad input.

    Args:
        parser: the command's parser.
        default: N when the option is omitted (None: all).
        what: what is counted, for the help text (e.g. ``"samples"``).
    """
    shown = ALL if default is None else str(default)
    parser.add_argument(
        "--samples",
        default=shown,
        metavar="N|all",
        help=f"use the first N {what}, or all of them (default {shown})",
    )


def sample_count(text: str, option: str = "--samples") -> int | None:
    """Parse ``N`` (>= 1) or ``all`` (None).

    Raises:
        ConfigError: anything else, e.g. 0 or a negative number.
    """
    from polymodal.errors import ConfigError

    if text.strip().lower() == ALL:
        return None
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise ConfigError(f"{option} must be a whole number >= 1 or 'all', got {text!r}")
    return count
