"""``dtrain INPUT [-r CKPT | -i CKPT | -f FROZEN | -t MODEL] [-o out.json] [--print-config]``: train or
fine-tune a model (DeePMD style).

INPUT is a JSON input (deeph_tf/schemas/input.schema.json) or a DeepH-pack training TOML
(``*.toml``, :mod:`deeph_tf.config.deeph_pack`): its ``continued`` section picks -r or -i, its
``outputs_dir`` a timestamped run folder for every output, ``only_save_graph`` builds the graphs
and exits (as dgraph).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import sys
from typing import Optional, Sequence

from deeph_tf.cli._common import (LOG_DATEFMT, LOG_FORMAT, add_common_arguments, configure_logging, level_given,
                                  run_command)

logger = logging.getLogger("dtrain")
_START_FLAGS = ("restart", "init_model", "init_frz_model", "finetune")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dtrain",
        description="Train an E(3)-equivariant model of DFT Hamiltonians from an input JSON or a DeepH-pack "
        "training TOML.",
    )
    parser.add_argument("INPUT", help="training input: JSON (validated against deeph_tf/schemas/input.schema.json) "
                        "or a DeepH-pack training TOML (*.toml)")
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
             "the data may lack some of its elements or add new ones; the on-site output bias is first moved by "
             "the mean residual on the new data (DeePMD's --finetune; training.finetune_bias)",
    )
    parser.add_argument(
        "-o", "--output", default=None,
        help="where to write the normalized input (default: out.json; for a TOML with outputs_dir, out.json in "
             "its run folder)",
    )
    parser.add_argument("--print-config", action="store_true",
                        help="print the normalized input (JSON) that INPUT becomes, and exit without training")
    parser.add_argument(
        "--mpi-log", choices=("master", "workers"), default="master",
        help="under horovodrun: which ranks log (DeePMD's --mpi-log; default: %(default)s, rank 0 only)",
    )
    add_common_arguments(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    given = level_given(argv)
    return run_command("dtrain", build_parser(), argv, lambda args: _run(args, level_given=given))


def _toml_plan(args: argparse.Namespace, workers=None):
    """The plan of a TOML input; with several workers, every rank takes rank 0's run-folder time."""
    from deeph_tf.config.deeph_pack import load_train_toml

    now = None
    if workers is not None and workers.size > 1:
        seconds = workers.allreduce_sums({"t": float(int(_dt.datetime.now().timestamp())) if workers.is_root else 0.0})
        now = _dt.datetime.fromtimestamp(seconds["t"])
    return load_train_toml(args.INPUT, now)


def _start_run_folder(plan, args: argparse.Namespace, level_given: bool, workers) -> None:
    """Make the run folder, log into it, apply [system], log the conversion notes, set the start flags."""
    from deeph_tf.config.deeph_pack import apply_runtime, log_notes

    if plan.run_dir is not None and workers.is_root:
        plan.run_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(plan.log_file)
        handler.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATEFMT))
        logging.getLogger().addHandler(handler)
    if level_given:
        plan.runtime.log_level = None
    if workers.size > 1 and plan.runtime.device_ids:
        logger.info("system.device ids not applied under horovodrun: each worker takes its own GPU")
        plan.runtime.device_ids = None
    apply_runtime(plan.runtime, tensorflow=not plan.only_save_graph)
    log_notes(plan.toml)
    if plan.start is not None:
        given = [f"--{name.replace('_', '-')}" for name in _START_FLAGS if getattr(args, name)]
        if given:
            raise ValueError(f"{args.INPUT}: process.train.continued.enable chooses how the run starts; remove "
                             f"{given[0]} or set continued.enable = false")
        flag, path = plan.start
        setattr(args, flag, path)


def _run(args: argparse.Namespace, level_given: bool = False) -> int:
    # The input first: a typo is reported before TensorFlow/Horovod start.
    from deeph_tf.config import load_input
    from deeph_tf.config.deeph_pack import is_toml

    plan = _toml_plan(args) if is_toml(args.INPUT) else None
    config = plan.config if plan is not None else load_input(args.INPUT)
    if args.print_config:
        if plan is not None:
            from deeph_tf.config.deeph_pack import log_notes

            log_notes(plan.toml)
        sys.stdout.write(json.dumps(config, indent=2) + "\n")
        return 0
    if plan is not None and plan.only_save_graph:
        from deeph_tf.cli.dgraph import log_graph_index
        from deeph_tf.data.shards import build_from_config

        _start_run_folder(plan, args, level_given, _single())
        log_graph_index(build_from_config(config))
        logger.info("data.graph.only_save_graph: graphs in %s; not training", config["training"]["dataset"]["graph_dir"])
        return 0
    from deeph_tf.train.distributed import detect_workers

    workers = detect_workers(args.mpi_log)
    if workers.size > 1:
        configure_logging(args.log_level, args.log_path if workers.is_root else None, quiet=not workers.logs,
                          prefix=f"[rank {workers.rank}/{workers.size}] ")
        if plan is not None:
            plan = _toml_plan(args, workers)
            config = plan.config
    if plan is not None:
        _start_run_folder(plan, args, level_given, workers)
    from deeph_tf.workflows.dtrain import run_dtrain

    init_model, init_frz_model = args.init_model, args.init_frz_model
    if args.finetune:
        from deeph_tf.artifacts.frozen import is_frozen_model

        init_frz_model, init_model = (args.finetune, None) if is_frozen_model(args.finetune) else (None, args.finetune)
    output = args.output or (plan.output if plan is not None else "out.json")
    result = run_dtrain(config, restart=args.restart, init_model=init_model, init_frz_model=init_frz_model,
                        output=output, workers=workers, finetune=bool(args.finetune))
    if workers.is_root:
        logger.info("latest checkpoint: %s; best: %s; learning curve: %s", result.latest_checkpoint,
                    result.best_checkpoint, result.lcurve)
    return 0


def _single():
    from deeph_tf.train.distributed import Workers

    return Workers.single()


if __name__ == "__main__":
    raise SystemExit(main())
