"""``polymodal retrieve INDEX --query-image IMG --query-text TEXT``: search a ReT index."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def cmd_retrieve(args: argparse.Namespace) -> int:
    """Print the best ``-k`` documents of one query: rank, document row, score."""
    from polymodal.errors import DataError

    if args.query_image is None and not args.query_text:
        raise DataError("a query needs --query-image, --query-text or both; it has neither")
    from polymodal.data.user_inputs import read_image
    from polymodal.methods.ret.serve import load_searcher

    searcher = load_searcher(args.index)
    image = None
    if args.query_image is not None:
        size = searcher.image_size
        image = read_image(Path(args.query_image), (3, size, size))
    scores, rows = searcher.search(image, args.query_text, args.k)
    print("rank\tdocument\tscore")
    for rank, (row, score) in enumerate(zip(rows.tolist(), scores.tolist(), strict=True), 1):
        if row >= 0:
            print(f"{rank}\t{row}\t{score:.4f}")
    return 0


def add_parser(commands: Any) -> None:
    """Register ``retrieve``."""
    parser = commands.add_parser(
        "retrieve",
        help="find the documents of an image and/or text query in a saved ReT index",
        description=(
            "Embed one query (an image file, a text, or both) with the ReT model saved beside "
            "the index (on our ViT or a CLIP vision model), and print its best documents."
        ),
        epilog="example: polymodal retrieve runs/ret_index --query-image crop.png --query-text "
        '"this object is left of a small blue square and above a large red circle"',
    )
    parser.add_argument("index", metavar="INDEX", help="folder written by save_searcher")
    parser.add_argument("--query-image", metavar="IMG", help="query image file (PNG, JPEG, ...)")
    parser.add_argument("--query-text", metavar="TEXT", help="query text")
    parser.add_argument("-k", type=int, default=10, help="documents to print (default 10)")
    parser.set_defaults(func=cmd_retrieve)
