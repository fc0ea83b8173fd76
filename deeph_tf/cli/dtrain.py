"""``dtrain INPUT.json [-r CKPT | -i CKPT | -f FROZEN] [-o out.json]``: train a model (DeePMD style)."""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

from deeph_tf.cli._common import add_common_arguments, configure_logging, run_not_yet_available


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dtrain",
        description="Train an E(3)-equivariant model of DFT Hamiltonians from an input JSON.",
    )
    parser.add_argument("INPUT", help="training input (JSON), validated against schemas/input.schema.json")
    start = parser.add_mutually_exclusive_group()
    start.add_argument(
        "-r", "--restart", metavar="CKPT", help="continue from a checkpoint: step, optimizer and schedule"
    )
    start.add_argument("-i", "--init-model", metavar="CKPT", help="initialize weights from a checkpoint, step 0")
    start.add_argument(
        "-f", "--init-frz-model", metavar="FROZEN", help="initialize weights from a frozen model, step 0"
    )
    parser.add_argument(
        "-o", "--output", default="out.json", help="where to write the normalized input (default: %(default)s)"
    )
    add_common_arguments(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, args.log_path)
    return run_not_yet_available("dtrain", "the training loop lands with the dtrain/dfreeze/dtest issue")


if __name__ == "__main__":
    raise SystemExit(main())
