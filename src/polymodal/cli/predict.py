"""``polymodal predict RUN INPUT --out DIR``: apply a trained run to your own files."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict and print the files written."""
    from polymodal.train.predict import predict

    files = predict(args.run, args.input, args.out, batch_size=args.batch_size)
    print(f"wrote {len(files)} file(s) to {args.out}")
    for path in files[:10]:
        print(f"  {path}")
    if len(files) > 10:
        print(f"  ... and {len(files) - 10} more")
    return 0


def add_parser(commands: Any) -> None:
    """Register ``predict`` on the subparsers."""
    parser = commands.add_parser(
        "predict",
        help="apply a trained run to your own files (any task)",
        description=(
            "Apply a run folder written by `polymodal fit` to a file or a folder of files and "
            "write what its task predicts: predictions.csv (classes and probabilities), "
            "heatmaps/*.png (dense prediction), reconstructions (masked reconstruction), "
            "embeddings.safetensors (retrieval) or generated.jsonl (sequence generation). "
            "Inputs are grouped into samples by file name (cat.png + cat.wav = one sample); "
            "images are resized to the model's input, WAV audio is resampled to 16 kHz and "
            "turned into the model's features, NAME.MODALITY.npy carries any modality, and "
            "one .safetensors file may hold {modality: (N, ...)} tensors. A sample lacking "
            "one of the model's modalities is predicted from the others."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  polymodal predict runs/fusion_av_digits my_digits/ --out predictions/\n"
            "  polymodal predict runs/shapes_segmentation photos/ --out masks/"
        ),
    )
    parser.add_argument("run", metavar="RUN", help="run folder written by `polymodal fit`")
    parser.add_argument("input", metavar="INPUT", help="a file or a folder of files to predict")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the outputs")
    parser.add_argument("--batch-size", type=int, default=32, help="samples per forward pass")
    parser.set_defaults(func=cmd_predict)
