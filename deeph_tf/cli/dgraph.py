"""``dgraph INPUT.json``: build the graph shards of the input's systems and exit.

The counterpart of DeepH's ``only_save_graph``; ``dtrain`` calls the same code when shards
are missing or stale. Unchanged shards are reused, so running it twice is cheap.
"""
from __future__ import annotations

import argparse
import logging
from typing import Optional, Sequence

from deeph_tf.cli._common import add_common_arguments, run_command

logger = logging.getLogger("dgraph")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dgraph",
        description="Build (or update) the TFRecord graph shards and index.json for an input's "
        "training and validation systems.",
    )
    parser.add_argument("INPUT", help="training input (JSON, or a DeepH-pack training TOML); uses "
                        "training.training_data, training.validation_data and training.dataset")
    parser.add_argument("--graph-dir", help="override training.dataset.graph_dir")
    parser.add_argument("--workers", type=int, help="override training.dataset.num_workers (0: one per core)")
    add_common_arguments(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_command("dgraph", build_parser(), argv, _run)


def _run(args: argparse.Namespace) -> int:
    from deeph_tf.config import load_input
    from deeph_tf.data.shards import build_from_config

    config = load_input(args.INPUT)
    log_graph_index(build_from_config(config, args.graph_dir, args.workers))
    return 0


def log_graph_index(index: dict) -> None:
    """The counts of each subset of a built graph set, and the skipped structures (also for dtrain's
    only_save_graph)."""
    for name, subset in index["subsets"].items():
        counts = subset["counts"]
        if counts["structures"]:
            logger.info(
                "%-8s %6d structures, %8d edges, %10d entries (%d masked), %d shard(s)",
                name, counts["structures"], counts["edges"], counts["entries_total"],
                counts["entries_masked"], len(subset["shards"]),
            )
    if index["skipped"]:
        logger.warning("%d structure(s) skipped, listed in index.json", len(index["skipped"]))


if __name__ == "__main__":
    raise SystemExit(main())
