"""``dinspect PATH``: summarize a DeepH dataset (a dft/ folder), a graph folder (index.json) or a
saved model (frozen model or checkpoint: elements, orbitals, cutoffs, architecture, training data)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

from deeph_tf.cli._common import add_common_arguments, run_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dinspect",
        description="Print structures, elements, orbital layout, output irreps, entry counts and edge "
        "statistics of a dft/ folder or of a graph folder built by dgraph; or what a saved model (frozen "
        "model or checkpoint) covers: elements and orbitals, cutoffs, architecture, parameters, training data.",
    )
    parser.add_argument("path", help="a dft/ or inputs/ folder, any folder of structures, a graph folder, "
                        "a frozen model, or a checkpoint (file, prefix or folder)")
    parser.add_argument("--data-dir-depth", type=int, default=0, help="depth of structures below dft/ (default: 0)")
    parser.add_argument("--per-structure", action="store_true", help="also list atoms, edges and entries per structure")
    parser.add_argument("--json", action="store_true", help="a model: print its description as JSON")
    add_common_arguments(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_command("dinspect", build_parser(), argv, _run)


def _run(args: argparse.Namespace) -> int:
    from deeph_tf.artifacts.describe import describe_model, is_saved_model

    path = Path(args.path)
    if is_saved_model(path):
        description = describe_model(path)
        if args.json:
            import json

            print(json.dumps(description.to_dict(), indent=1))
        else:
            print(description.format())
        return 0
    from deeph_tf.data.inspect import summarize_dft, summarize_index

    if (path / "index.json").is_file():
        summary = summarize_index(path)
    else:
        summary = summarize_dft(path, args.data_dir_depth, per_structure=args.per_structure)
    print(summary.format())
    if summary.per_structure:
        print(f"\n{'structure':<20} {'atoms':>6} {'edges':>7} {'total':>9} {'masked':>9}")
        for sid, (atoms, edges, total, masked) in sorted(summary.per_structure.items()):
            print(f"{sid:<20} {atoms:>6} {edges:>7} {total!s:>9} {masked!s:>9}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
