"""``polymodal ask IMAGE --audio QUESTION.wav``: a spoken question about an image, answered.

Uses a finished Nexus-O stage-3 run (``polymodal fit configs/nexus_o_stage3.yaml``);
prints the answer and writes it spoken to ``--out`` (16 kHz WAV). The question WAV
may have any rate (resampled, and said) and several channels (averaged, and said);
an empty, silent or too long one is a one-line error.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "ask",
        help="answer a spoken question about an image (Nexus-O), in text and speech",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("image", type=Path, help="the image (PNG, JPEG, ...)")
    parser.add_argument("--audio", type=Path, required=True, help="the spoken question (WAV)")
    parser.add_argument(
        "--run", type=Path, default=Path("runs/nexus_o_stage3"), help="a Nexus-O stage-3 run folder"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("answer.wav"), help="where the spoken answer goes"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from polymodal.data.real.wav import write_wav
    from polymodal.methods.nexus_o.ask import ask
    from polymodal.methods.nexus_o.recipe import load_omni

    answer = ask(load_omni(args.run), args.image, args.audio)
    for note in answer.notes:
        print(f"note: {note}")
    write_wav(args.out, torch.from_numpy(answer.speech), 16_000)
    print(f"answer: {answer.text}")
    print(f"spoken answer written to {args.out}")
    return 0
