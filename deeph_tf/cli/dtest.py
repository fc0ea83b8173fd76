"""``dtest -m MODEL -s INPUTS_DIR [-n N] [-d PREFIX] [-o OUTPUT_DIR]``: errors and predictions."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

from deeph_tf.cli._common import add_common_arguments, configure_logging

logger = logging.getLogger("dtest")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dtest",
        description="Evaluate a frozen model or checkpoint on DeepH-format structures (inputs/dft/...): "
        "block MAE (raw and gauge-corrected; per structure, element pair and shell pair), orbital-energy "
        "or band errors, and predicted <target>_pred.h5 files.",
    )
    parser.add_argument("-m", "--model", required=True, help="frozen model folder (dfreeze) or checkpoint")
    parser.add_argument("-s", "--system", required=True, metavar="INPUTS_DIR",
                        help="folder holding dft/ (or a dft/ folder, or one structure folder)")
    parser.add_argument("-n", "--numb-test", type=int, default=0, help="structures to test (0: all)")
    parser.add_argument("-d", "--detail-file", metavar="DETAIL_PREFIX",
                        help="write PREFIX.<target>.out (per counted entry), PREFIX.orbital_energy.out, "
                        "PREFIX.summary.json, PREFIX.parity.png and PREFIX.bands/<sid>.png")
    parser.add_argument("-o", "--output-dir", metavar="OUTPUT_DIR",
                        help="write OUTPUT_DIR/dft/<sid>/<target>_pred.h5 (with POSCAR, info.json, overlap.h5), "
                        "and, without -d, OUTPUT_DIR/parity.png and OUTPUT_DIR/bands/<sid>.png")
    parser.add_argument("--split", metavar="SPLIT_JSON",
                        help="only the structures of one part of a split file (e.g. graphs/split.json)")
    parser.add_argument("--subset", default="test", help="which part of --split (default: %(default)s)")
    parser.add_argument("--data-dir-depth", type=int, default=None,
                        help="levels below dft/ (default: the model's training.dataset.data_dir_depth)")
    parser.add_argument("--k-grid", type=int, nargs=3, metavar=("K1", "K2", "K3"),
                        help="k-grid for band errors of crystals without a K_PATH file")
    parser.add_argument("--per-structure", action="store_true", help="print a row per structure")
    parser.add_argument("--no-physics", action="store_true", help="skip the eigenvalue errors")
    add_common_arguments(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, args.log_path)
    from deeph_tf.data.errors import DataFormatError
    from deeph_tf.infer.evaluate import evaluate, format_physics, select_structures
    from deeph_tf.infer.predict import Predictor
    from deeph_tf.train.checkpoint import CheckpointError

    try:
        predictor = Predictor.load(args.model)
    except (CheckpointError, ValueError, OSError) as error:
        print(f"dtest: cannot load the model {args.model}: {error}", file=sys.stderr)
        return 1
    depth = args.data_dir_depth
    if depth is None:
        depth = predictor.metadata.get("input", {}).get("training", {}).get("dataset", {}).get("data_dir_depth", 0)
    try:
        structures = select_structures(args.system, depth, args.split, args.subset, args.numb_test)
        report, errors = evaluate(predictor, structures, args.output_dir, args.detail_file,
                                  physics=not args.no_physics, k_grid=args.k_grid)
    except (DataFormatError, ValueError, FileNotFoundError) as error:
        print(f"dtest: {error}", file=sys.stderr)
        return 1
    print(f"# dtest: model {predictor.source}, {report.n_structures} structure(s) predicted, {report.n_scored} scored")
    if len(errors):
        print(errors.format_table(title=predictor.target, per_structure=args.per_structure))
    physics = format_physics(report)
    if physics:
        print(physics)
    for path in report.plots:
        logger.info("plot: %s", path)
    if args.output_dir:
        logger.info("predictions: %s/dft/<sid>/%s_pred.h5", args.output_dir, predictor.target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
