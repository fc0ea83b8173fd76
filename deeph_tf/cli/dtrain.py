"""``dtrain INPUT.json [-r CKPT | -i CKPT | -f FROZEN] [-o out.json]``: train a model (DeePMD style)."""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

import logging
import sys

from deeph_tf.cli._common import add_common_arguments, configure_logging

logger = logging.getLogger("dtrain")


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
    parser.add_argument(
        "--mpi-log", choices=("master", "workers"), default="master",
        help="under horovodrun: which ranks log (DeePMD's --mpi-log; default: %(default)s, rank 0 only)",
    )
    add_common_arguments(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, args.log_path)
    # The input first: a typo is reported before TensorFlow/Horovod start.
    from deeph_tf.config import ConfigError, load_input

    try:
        config = load_input(args.INPUT)
    except (ConfigError, OSError) as error:
        print(f"dtrain: {error}", file=sys.stderr)
        return 2
    from deeph_tf.train.distributed import detect_workers

    try:
        workers = detect_workers(args.mpi_log)
    except RuntimeError as error:
        print(f"dtrain: {error}", file=sys.stderr)
        return 1
    if workers.size > 1:
        configure_logging(args.log_level, args.log_path if workers.is_root else None, quiet=not workers.logs,
                          prefix=f"[rank {workers.rank}/{workers.size}] ")
    from deeph_tf.data.errors import DataFormatError
    from deeph_tf.artifacts.checkpoint import CheckpointError
    from deeph_tf.train.trainer import TrainingDiverged, train

    try:
        result = train(config, restart=args.restart, init_model=args.init_model, init_frz_model=args.init_frz_model,
                       output=args.output, workers=workers)
    except TrainingDiverged:
        return 1
    except (CheckpointError, DataFormatError, ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"dtrain: {error}", file=sys.stderr)
        return 1
    if workers.is_root:
        logger.info("latest checkpoint: %s; best: %s; learning curve: %s", result.latest_checkpoint,
                    result.best_checkpoint, result.lcurve)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
