"""``dtrain INPUT.json [-r CKPT | -i CKPT | -f FROZEN | -t MODEL] [-o out.json]``: train or fine-tune a model (DeePMD style)."""
from __future__ import annotations

import argparse
import logging
from typing import Optional, Sequence

from deeph_tf.cli._common import add_common_arguments, configure_logging, run_command

logger = logging.getLogger("dtrain")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dtrain",
        description="Train an E(3)-equivariant model of DFT Hamiltonians from an input JSON.",
    )
    parser.add_argument("INPUT", help="training input (JSON), validated against deeph_tf/schemas/input.schema.json")
    start = parser.add_mutually_exclusive_group()
    start.add_argument(
        "-r", "--restart", metavar="CKPT", help="continue from a checkpoint: step, optimizer and schedule"
    )
    start.add_argument("-i", "--init-model", metavar="CKPT", help="initialize weights from a checkpoint, step 0")
    start.add_argument(
        "-f", "--init-frz-model", metavar="FROZEN", help="initialize weights from a frozen model, step 0"
    )
    start.add_argument(
        "-t", "--finetune", metavar="MODEL",
        help="fine-tune a pretrained model (frozen model or checkpoint: -f or -i by its kind) onto the input's data; "
             "the data may lack some of its elements or add new ones (DeePMD's --finetune)",
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
    return run_command("dtrain", build_parser(), argv, _run)


def _run(args: argparse.Namespace) -> int:
    # The input first: a typo is reported before TensorFlow/Horovod start.
    from deeph_tf.config import load_input

    config = load_input(args.INPUT)
    from deeph_tf.train.distributed import detect_workers

    workers = detect_workers(args.mpi_log)
    if workers.size > 1:
        configure_logging(args.log_level, args.log_path if workers.is_root else None, quiet=not workers.logs,
                          prefix=f"[rank {workers.rank}/{workers.size}] ")
    from deeph_tf.workflows.dtrain import run_dtrain

    init_model, init_frz_model = args.init_model, args.init_frz_model
    if args.finetune:
        from deeph_tf.artifacts.frozen import is_frozen_model

        init_frz_model, init_model = (args.finetune, None) if is_frozen_model(args.finetune) else (None, args.finetune)
    result = run_dtrain(config, restart=args.restart, init_model=init_model, init_frz_model=init_frz_model,
                        output=args.output, workers=workers)
    if workers.is_root:
        logger.info("latest checkpoint: %s; best: %s; learning curve: %s", result.latest_checkpoint,
                    result.best_checkpoint, result.lcurve)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
