"""``dpredict -m MODEL -s INPUTS_DIR -o OUT`` or ``dpredict infer.toml``: predicted Hamiltonians of new structures.

Writes ``OUT/dft/<sid>/hamiltonian_pred.h5`` (``<target>_pred.h5``) with the input's POSCAR,
info.json and overlap.h5 beside it, so DeepH-dock, ``dband`` and ``dtest`` read OUT as DFT
output. Structures need only POSCAR and info.json: the graph comes from overlap.h5 where
there is one, else from the model's per-element-pair cutoffs. See
:mod:`deeph_tf.workflows.predict`.

A DeepH-pack inference TOML (:mod:`deeph_tf.config.deeph_pack.infer`) stands for -m (model_dir
with load_model_type/epoch), -s (inputs_dir), -o (``<outputs_dir>/<timestamp>``), -b, --graph
overlap, --device and --data-dir-depth; those flags may then not be given.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Optional, Sequence

from deeph_tf.cli._common import add_common_arguments, level_given, positive_int, run_command

logger = logging.getLogger("dpredict")
#: deeph_tf.workflows.predict.DEFAULT_MAX_EDGES, not imported: parsing stays light (tested equal).
DEFAULT_MAX_EDGES = 150_000
DEFAULT_BATCH_SIZE = 8
#: Flags a TOML stands for (argparse dest -> the TOML keys).
_TOML_FLAGS = {"model": "model.model_dir", "system": "data.inputs_dir", "output_dir": "data.outputs_dir",
               "batch_size": "process.infer.dataloader.batch_size", "graph": "data.graph.graph_type",
               "device": "system.device", "data_dir_depth": "data.dft.data_dir_depth"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dpredict",
        description="Predict the blocks (hamiltonian_pred.h5) of structures without DFT: DeepH folders with a "
        "POSCAR and info.json (overlap.h5 optional). Large structures are predicted in chunks whose size "
        "--max-edges bounds; finished structures are skipped on a rerun.",
    )
    parser.add_argument("TOML", nargs="?", help="a DeepH-pack inference TOML, instead of -m, -s, -o, -b, --graph, "
                        "--device and --data-dir-depth")
    parser.add_argument("-m", "--model", help="frozen model folder (dfreeze) or checkpoint (required without TOML)")
    parser.add_argument("-s", "--system", metavar="INPUTS_DIR",
                        help="folder holding dft/ (or a dft/ folder, or one structure folder; required without TOML)")
    parser.add_argument("-o", "--output-dir", metavar="OUT", help="write OUT/dft/<sid>/ (required without TOML)")
    parser.add_argument("-b", "--batch-size", type=positive_int, default=None,
                        help=f"structures per pass (default: {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--max-edges", type=positive_int, default=DEFAULT_MAX_EDGES,
                        help="edges of one pass, which bounds peak memory; larger structures are cut into chunks "
                        "with exact halos (default: %(default)s)")
    parser.add_argument("--graph", choices=("auto", "overlap", "poscar"), default=None,
                        help="atom pairs: overlap.h5 where there is one, else the model's pair cutoffs (auto, the "
                        "default); require overlap.h5 (overlap); the pair cutoffs for every structure (poscar)")
    parser.add_argument("--radius-cutoff", type=float, default=None, metavar="ANGSTROM",
                        help="one cutoff for every element pair instead of the model's pair cutoffs")
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default=None,
                        help="where the model runs (default: auto, a GPU when TensorFlow sees one)")
    parser.add_argument("--data-dir-depth", type=int, default=None,
                        help="levels below dft/ (default: the model's training.dataset.data_dir_depth)")
    parser.add_argument("--split", metavar="SPLIT_JSON", help="only the structures of one part of a split file")
    parser.add_argument("--subset", default="test", help="which part of --split (default: %(default)s)")
    parser.add_argument("-n", "--numb-structures", type=int, default=0, help="structures to predict (0: all)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the arguments the TOML stands for (JSON), and exit")
    add_common_arguments(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    given = level_given(argv)
    return run_command("dpredict", build_parser(), argv, lambda args: _run(args, level_given=given))


def _select_device(device: str) -> None:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if device == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")
    elif device == "gpu" and not gpus:
        raise ValueError("--device gpu: TensorFlow sees no GPU on this machine")


def _from_toml(args: argparse.Namespace):
    """Fill the flags from a DeepH-pack inference TOML (refusing flags it sets); the plan, or None."""
    if args.TOML is None:
        missing = [flag for flag, dest in (("-m", "model"), ("-s", "system"), ("-o", "output_dir"))
                   if getattr(args, dest) is None]
        if missing:
            raise ValueError(f"give {', '.join(missing)} (or a DeepH-pack inference TOML)")
        args.batch_size = args.batch_size or DEFAULT_BATCH_SIZE
        args.graph, args.device = args.graph or "auto", args.device or "auto"
        return None
    from deeph_tf.config.deeph_pack import load_infer_toml, log_notes

    given = [dest for dest in _TOML_FLAGS if getattr(args, dest) is not None]
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise ValueError(f"{args.TOML} sets {_TOML_FLAGS[given[0]]}: do not give {flag} with a TOML")
    plan = load_infer_toml(args.TOML)
    log_notes(plan.toml)
    args.model, args.system, args.output_dir = plan.model, plan.inputs_dir, plan.output_dir
    args.batch_size, args.graph, args.data_dir_depth = plan.batch_size, plan.graph, plan.data_dir_depth
    args.device = "cpu" if plan.runtime.device_type == "cpu" else "auto"
    return plan


def _check_precision(plan, predictor) -> None:
    trained = predictor.metadata.get("input", {}).get("model", {}).get("precision", "float32")
    if plan is not None and plan.precision != trained:
        raise ValueError(f"{plan.toml.path}: system.float_type = {plan.toml['system.float_type']!r} asks for "
                         f"{plan.precision}, but {predictor.source} was trained in {trained}; dpredict runs a model in "
                         "its own precision: use the float_type of the training")


def _run(args: argparse.Namespace, level_given: bool = False) -> int:
    from deeph_tf.artifacts.checkpoint import CheckpointError
    from deeph_tf.data import keys
    from deeph_tf.data.structure import load_structure
    from deeph_tf.infer.predict import Predictor
    from deeph_tf.infer.selection import select_structures
    from deeph_tf.workflows.predict import incomplete_folders, predict_folders

    plan = _from_toml(args)
    if args.print_config:
        sys.stdout.write(json.dumps(plan.as_json() if plan else {k: getattr(args, k) for k in _TOML_FLAGS}, indent=2)
                         + "\n")
        return 0
    if args.radius_cutoff is not None and not args.radius_cutoff > 0:
        raise ValueError(f"--radius-cutoff must be > 0 Angstrom, got {args.radius_cutoff}")
    if plan is not None:
        from deeph_tf.config.deeph_pack import apply_runtime

        if level_given:
            plan.runtime.log_level = None
        apply_runtime(plan.runtime)
    _select_device(args.device)
    try:
        predictor = Predictor.load(args.model)
    except (ValueError, OSError) as error:
        raise CheckpointError(f"cannot load the model {args.model}: {error}") from error
    _check_precision(plan, predictor)
    if predictor.is_energy_model:
        raise ValueError(f"{args.model} is a force field (energy_force); dpredict predicts blocks, use dtest for it")
    depth = args.data_dir_depth
    if depth is None:
        depth = predictor.metadata.get("input", {}).get("training", {}).get("dataset", {}).get("data_dir_depth", 0)
    broken = incomplete_folders(args.system, depth)
    if broken:
        raise FileNotFoundError(f"not a structure folder (POSCAR and info.json needed): {broken[0]}"
                                + (f" and {len(broken) - 1} more" if len(broken) > 1 else ""))
    structures = select_structures(args.system, depth, args.split, args.subset, args.numb_structures)
    if args.graph == "overlap":
        lacking = [str(folder) for _, folder in structures if not load_structure(folder).has_blocks(keys.OVERLAP)]
        if lacking:
            raise FileNotFoundError(f"--graph overlap: no overlap.h5 in {lacking[0]}"
                                    + (f" and {len(lacking) - 1} more" if len(lacking) > 1 else ""))
    rule = predictor.graph_rule(args.radius_cutoff)
    logger.info("model %s; pairs of structures without overlap.h5: %s", predictor.source, rule.describe())
    summary = predict_folders(predictor, structures, args.output_dir, batch_size=args.batch_size,
                              max_edges=args.max_edges, graph_rule=rule, prefer_overlap=args.graph != "poscar")
    print(f"# dpredict: model {predictor.source}: {len(summary.predicted)} structure(s) predicted, "
          f"{len(summary.skipped)} already done, in {args.output_dir}/dft/<sid>/{predictor.target}_pred.h5")
    for sid in summary.predicted:
        record = summary.records[sid]
        print(f"{sid:<32s} {record['n_atoms']:>7d} atoms {record['n_edges']:>9d} edges  graph: {record['graph']}"
              f"  {record['seconds']:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
