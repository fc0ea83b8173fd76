"""``dfreeze -c CKPT_DIR_OR_PREFIX -o frozen_model``: write a TensorFlow SavedModel for inference."""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

from deeph_tf.cli._common import add_common_arguments, configure_logging, run_not_yet_available


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dfreeze",
        description="Freeze a checkpoint into a SavedModel that plain TensorFlow can load and run.",
    )
    parser.add_argument(
        "-c", "--checkpoint", default=".", metavar="CKPT_DIR_OR_PREFIX", help="checkpoint folder or prefix"
    )
    parser.add_argument("-o", "--output", default="frozen_model", help="output SavedModel folder")
    add_common_arguments(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, args.log_path)
    return run_not_yet_available("dfreeze", "freezing lands with the dtrain/dfreeze/dtest issue")


if __name__ == "__main__":
    raise SystemExit(main())
