"""``polymodal cache list`` and ``polymodal cache clear [NAME]``: what is cached."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_list(args: argparse.Namespace) -> int:
    """Print every cache entry and the total."""
    from polymodal.data.cache import cache_entries, entries_table, home

    print(f"cache: {home()}")
    print(entries_table(cache_entries()))
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    """Remove the entries ``args.name`` names (all when None) and say which."""
    from polymodal.data.cache import clear_cache, format_size, home

    removed = clear_cache(args.name)
    for entry in removed:
        print(f"removed {entry.kind}/{entry.key} ({format_size(entry.size)}, {entry.summary})")
    total = format_size(sum(entry.size for entry in removed))
    print(f"removed {len(removed)} entries, {total}, from {home()}")
    return 0


def add_parser(commands: Any) -> None:
    """Register ``cache`` with its ``list`` and ``clear`` actions."""
    cache = commands.add_parser(
        "cache",
        help="list or clear cached data and trained models",
        description=(
            "Entries live in $POLYMODAL_HOME (default ~/.cache/polymodal), one folder per "
            "entry, keyed by its config and a fingerprint of the code that made it."
        ),
    )
    actions = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list",
        help="print every entry (kind, key, size, age, what it is) and the total",
        description="Print every cache entry: kind, key, size, age, what it is; and the total.",
    )
    listing.set_defaults(func=cmd_list)
    clear = actions.add_parser(
        "clear",
        help="remove all entries, or one kind's, or one key's",
        description="Remove cache entries and say which. Without NAME, remove them all.",
        epilog="examples: polymodal cache clear vlm; polymodal cache clear bench/fusion",
    )
    clear.add_argument(
        "name",
        nargs="?",
        metavar="NAME",
        help="a kind (av_digits, vlm, bench/fusion; bench: all bench kinds), a key, or KIND/KEY",
    )
    clear.set_defaults(func=cmd_clear)
