"""``dpredict -m MODEL -s INPUTS_DIR -o OUT``: predicted Hamiltonians of new structures.

Writes ``OUT/dft/<sid>/hamiltonian_pred.h5`` (``<target>_pred.h5``) with the input's POSCAR,
info.json and overlap.h5 beside it, so DeepH-dock, ``dband`` and ``dtest`` read OUT as DFT
output. Structures need only POSCAR and info.json: the graph comes from overlap.h5 where
there is one, else from the model's per-element-pair cutoffs. See
:mod:`deeph_tf.workflows.predict`.
"""
from __future__ import annotations

import argparse
import logging
from typing import Optional, Sequence

from deeph_tf.cli._common import add_common_arguments, positive_int, run_command

logger = logging.getLogger("dpredict")
#: deeph_tf.workflows.predict.DEFAULT_MAX_EDGES, not imported: parsing stays light (tested equal).
DEFAULT_MAX_EDGES = 150_000


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dpredict",
        description="Predict the blocks (hamiltonian_pred.h5) of structures without DFT: DeepH folders with a "
        "POSCAR and info.json (overlap.h5 optional). Large structures are predicted in chunks whose size "
        "--max-edges bounds; finished structures are skipped on a rerun.",
    )
    parser.add_argument("-m", "--model", required=True, help="frozen model folder (dfreeze) or checkpoint")
    parser.add_argument("-s", "--system", required=True, metavar="INPUTS_DIR",
                        help="folder holding dft/ (or a dft/ folder, or one structure folder)")
    parser.add_argument("-o", "--output-dir", required=True, metavar="OUT", help="write OUT/dft/<sid>/")
    parser.add_argument("-b", "--batch-size", type=positive_int, default=8,
                        help="structures per pass (default: %(default)s)")
    parser.add_argument("--max-edges", type=positive_int, default=DEFAULT_MAX_EDGES,
                        help="edges of one pass, which bounds peak memory; larger structures are cut into chunks "
                        "with exact halos (default: %(default)s)")
    parser.add_argument("--graph", choices=("auto", "overlap", "poscar"), default="auto",
                        help="atom pairs: overlap.h5 where there is one, else the model's pair cutoffs (auto); "
                        "require overlap.h5 (overlap); the pair cutoffs for every structure (poscar)")
    parser.add_argument("--radius-cutoff", type=float, default=None, metavar="ANGSTROM",
                        help="one cutoff for every element pair instead of the model's pair cutoffs")
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                        help="where the model runs (default: a GPU when TensorFlow sees one)")
    parser.add_argument("--data-dir-depth", type=int, default=None,
                        help="levels below dft/ (default: the model's training.dataset.data_dir_depth)")
    parser.add_argument("--split", metavar="SPLIT_JSON", help="only the structures of one part of a split file")
    parser.add_argument("--subset", default="test", help="which part of --split (default: %(default)s)")
    parser.add_argument("-n", "--numb-structures", type=int, default=0, help="structures to predict (0: all)")
    add_common_arguments(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_command("dpredict", build_parser(), argv, _run)


def _select_device(device: str) -> None:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if device == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")
    elif device == "gpu" and not gpus:
        raise ValueError("--device gpu: TensorFlow sees no GPU on this machine")


def _run(args: argparse.Namespace) -> int:
    from deeph_tf.artifacts.checkpoint import CheckpointError
    from deeph_tf.data import keys
    from deeph_tf.data.structure import load_structure
    from deeph_tf.infer.predict import Predictor
    from deeph_tf.infer.selection import select_structures
    from deeph_tf.workflows.predict import incomplete_folders, predict_folders

    if args.radius_cutoff is not None and not args.radius_cutoff > 0:
        raise ValueError(f"--radius-cutoff must be > 0 Angstrom, got {args.radius_cutoff}")
    _select_device(args.device)
    try:
        predictor = Predictor.load(args.model)
    except (ValueError, OSError) as error:
        raise CheckpointError(f"cannot load the model {args.model}: {error}") from error
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
