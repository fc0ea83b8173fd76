"""``dinspect PATH``: summarize a DeepH dataset (a dft/ folder) or a graph folder (index.json)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from deeph_tf.cli._common import add_common_arguments, configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dinspect",
        description="Print structures, elements, orbital layout, output irreps, entry counts and edge "
        "statistics of a dft/ folder or of a graph folder built by dgraph.",
    )
    parser.add_argument("path", help="a dft/ or inputs/ folder, any folder of structures, or a graph folder")
    parser.add_argument("--data-dir-depth", type=int, default=0, help="depth of structures below dft/ (default: 0)")
    parser.add_argument("--per-structure", action="store_true", help="also list atoms, edges and entries per structure")
    add_common_arguments(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, args.log_path)
    from deeph_tf.data.errors import DataFormatError
    from deeph_tf.data.inspect import summarize_dft, summarize_index

    path = Path(args.path)
    try:
        if (path / "index.json").is_file():
            summary = summarize_index(path)
        else:
            summary = summarize_dft(path, args.data_dir_depth, per_structure=args.per_structure)
    except (FileNotFoundError, ValueError, DataFormatError) as error:
        print(f"dinspect: {error}", file=sys.stderr)
        return 2
    print(summary.format())
    if summary.per_structure:
        print(f"\n{'structure':<20} {'atoms':>6} {'edges':>7} {'total':>9} {'masked':>9}")
        for sid, (atoms, edges, total, masked) in sorted(summary.per_structure.items()):
            print(f"{sid:<20} {atoms:>6} {edges:>7} {total!s:>9} {masked!s:>9}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
