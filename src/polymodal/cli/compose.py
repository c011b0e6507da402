"""``polymodal compose "a bitter, dark piece" --seconds 10 --out piece``: MIDI and WAV
from a description, by a trained taste-music generator."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

TRAIN_FIRST = (
    "train one with `polymodal fit taste_music_pretrain` and "
    "`polymodal fit taste_music model.init_from=runs/taste_music_pretrain`, or pass --run"
)


def cmd_compose(args: argparse.Namespace) -> int:
    """Compose, write ``<out>.mid`` and ``<out>.wav``, and say what was done."""
    from polymodal.errors import ConfigError
    from polymodal.methods.taste_music.compose import (
        check_seconds,
        compose_piece,
        understood,
        write_piece,
    )

    check_seconds(args.seconds)
    description, note = understood(args.description)
    if not (Path(args.run) / "config.yaml").is_file():
        raise ConfigError(f"no trained taste-music run in {args.run}; {TRAIN_FIRST}")
    from polymodal.methods.taste_music.model import TasteMusicGenerator
    from polymodal.train.recipe import load_trained

    _, model, _ = load_trained(args.run)
    if not isinstance(model, TasteMusicGenerator):
        raise ConfigError(f"{args.run} holds a {type(model).__name__}, not a taste-music generator")
    if note:
        print(f"note: {note}", file=sys.stderr)
    piece, malformed, phrases = compose_piece(
        model, description, args.seconds, args.temperature, args.top_k, args.seed
    )
    midi, wav, rendered = write_piece(piece, args.out, args.soundfont)
    print(
        f"wrote {midi} and {wav}: {piece.seconds:.1f} s, {len(piece.notes)} notes, "
        f"{piece.instrument} at {piece.tempo} bpm, {phrases} phrase(s), audio by {rendered}"
        + (f"; {malformed} generated token(s) fit no event and were skipped" if malformed else "")
    )
    return 0


def add_parser(commands: Any) -> None:
    """Register ``compose`` on the subparsers."""
    parser = commands.add_parser(
        "compose",
        help="write a piece (MIDI + WAV) from a description with a taste-music generator",
        description=(
            "Sample a piece for a description with a generator trained by "
            "`polymodal fit taste_music` and write OUT.mid and OUT.wav. Pieces longer "
            "than 4 bars are successive 4-bar phrases for the same description, in one "
            "tempo and instrument. A description with no word the generator was trained "
            "on falls back to a neutral one, and says so."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            '  polymodal compose "a bitter, dark piece" --seconds 10 --out piece\n'
            '  polymodal compose "the sourness of lemon" --seed 3 --temperature 0.8 --out lemon'
        ),
    )
    parser.add_argument("description", metavar="DESCRIPTION", help="what the piece should taste of")
    parser.add_argument("--seconds", type=float, default=10.0, help="length (0 < s <= 600)")
    parser.add_argument("--out", required=True, metavar="STEM", help="writes STEM.mid, STEM.wav")
    parser.add_argument(
        "--run", default="runs/taste_music", help="run folder of the fine-tuned generator"
    )
    parser.add_argument("--temperature", type=float, default=1.0, help="0 = most likely tokens")
    parser.add_argument("--top-k", type=int, default=20, help="sample among the k likeliest")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same piece")
    parser.add_argument(
        "--soundfont", default=None, help="render with FluidSynth and this .sf2 (if installed)"
    )
    parser.set_defaults(func=cmd_compose)
