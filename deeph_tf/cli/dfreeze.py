"""``dfreeze -c CKPT_DIR_OR_PREFIX -o frozen_model``: write a TensorFlow SavedModel for inference."""
from __future__ import annotations

import argparse
import logging
from typing import Optional, Sequence

from deeph_tf.cli._common import add_common_arguments, run_command

logger = logging.getLogger("dfreeze")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dfreeze",
        description="Freeze a checkpoint into a SavedModel that plain TensorFlow can load and run "
        "(signature documented in deeph_tf/artifacts/frozen.py and docs).",
    )
    parser.add_argument(
        "-c", "--checkpoint", default=".", metavar="CKPT_DIR_OR_PREFIX",
        help="checkpoint folder (its latest), prefix (model.ckpt, model.ckpt-1000) or file (default: %(default)s)",
    )
    parser.add_argument("-o", "--output", default="frozen_model", help="output SavedModel folder (default: %(default)s)")
    parser.add_argument("--best", action="store_true", help="freeze the best model by validation loss instead of the latest")
    add_common_arguments(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_command("dfreeze", build_parser(), argv, _run)


def _run(args: argparse.Namespace) -> int:
    from deeph_tf.artifacts.loader import freeze_checkpoint

    output = freeze_checkpoint(args.checkpoint, args.output, best=args.best)
    logger.info("wrote %s", output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
