"""``dtest -m MODEL -s INPUTS_DIR [-n N] [-d PREFIX] [-o OUTPUT_DIR]``: errors and predictions.

A Hamiltonian-type model is scored on DeepH structure folders: block errors and eigenvalues
(orbital energies of molecules; bands of crystals along their ``K_PATH`` (or ``--k-path``) and
on a k-grid (``--k-grid``), within ``--band-window`` eV of E_F, with the Fermi level from the
electron count). A force field (target ``energy_force``) on any labelled system (DeepH folders
with force.h5 or dpdata formats, ``--fmt``), with DeePMD-kit's printout and detail files.
"""
from __future__ import annotations

import argparse
import logging
from typing import Optional, Sequence

from deeph_tf.cli._common import add_common_arguments, positive_float, run_command

logger = logging.getLogger("dtest")
#: deeph_tf.infer.electronic.DEFAULT_BAND_WINDOW_EV, not imported: parsing stays light (tested equal).
DEFAULT_BAND_WINDOW_EV = 2.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dtest",
        description="Evaluate a frozen model or checkpoint on DeepH-format structures (inputs/dft/...): "
        "block MAE (raw and gauge-corrected; per structure, element pair and shell pair), orbital-energy "
        "errors of molecules, band errors of crystals (along K_PATH and on a k-grid: MAE raw and with the mean "
        "shift removed, gap error, predicted vs DFT Fermi level from the occupation), and predicted "
        "<target>_pred.h5 files. A force field (energy_force) is tested on "
        "any labelled system (force.h5 or dpdata formats): energy, force and virial MAE/RMSE as dp test.",
    )
    parser.add_argument("-m", "--model", required=True, help="frozen model folder (dfreeze) or checkpoint")
    parser.add_argument("-s", "--system", required=True, metavar="INPUTS_DIR",
                        help="folder holding dft/ (or a dft/ folder, or one structure folder); for a force field "
                        "also any system dpdata reads (deepmd/npy folder, .hdf5, OUTCAR, ...)")
    parser.add_argument("--fmt", default=None,
                        help="format of -s for a force field: deeph or a dpdata format (default: guessed)")
    parser.add_argument("-n", "--numb-test", type=int, default=0, help="structures to test (0: all)")
    parser.add_argument("-d", "--detail-file", metavar="DETAIL_PREFIX",
                        help="write PREFIX.<target>.out (per counted entry), PREFIX.orbital_energy.out, "
                        "PREFIX.summary.json, PREFIX.parity.png and PREFIX.bands/<sid>.png; for a force field "
                        "PREFIX.e.out, PREFIX.e_peratom.out, PREFIX.f.out (and PREFIX.v.out) as DeePMD-kit")
    parser.add_argument("-o", "--output-dir", metavar="OUTPUT_DIR",
                        help="write OUTPUT_DIR/dft/<sid>/<target>_pred.h5 (with POSCAR, info.json, overlap.h5), "
                        "and, without -d, OUTPUT_DIR/parity.png and OUTPUT_DIR/bands/<sid>.png; for a force field "
                        "the predicted labels as a deepmd/npy system in OUTPUT_DIR")
    parser.add_argument("--split", metavar="SPLIT_JSON",
                        help="only the structures of one part of a split file (e.g. graphs/split.json)")
    parser.add_argument("--subset", default="test", help="which part of --split (default: %(default)s)")
    parser.add_argument("--data-dir-depth", type=int, default=None,
                        help="levels below dft/ (default: the model's training.dataset.data_dir_depth)")
    parser.add_argument("--k-grid", type=int, nargs=3, metavar=("K1", "K2", "K3"),
                        help="Gamma-centred k-grid of every crystal's band errors and Fermi level (default: 4 "
                        "along each periodic direction, 1 along vacuum)")
    parser.add_argument("--k-path", metavar="FILE",
                        help="K_PATH file (DeepH-dock format) for every crystal's band errors and plot, besides the "
                        "grid (default: each structure folder's own K_PATH, if any)")
    parser.add_argument("--band-window", type=positive_float, default=DEFAULT_BAND_WINDOW_EV, metavar="EV",
                        help="compare bands whose DFT energy is within +-EV eV of the Fermi energy of info.json "
                        "(default: %(default)s)")
    parser.add_argument("--per-structure", action="store_true", help="print a row per structure")
    parser.add_argument("--no-physics", action="store_true", help="skip the eigenvalue errors")
    add_common_arguments(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_command("dtest", build_parser(), argv, _run)


def _run(args: argparse.Namespace) -> int:
    from deeph_tf.infer.evaluate import evaluate, format_physics
    from deeph_tf.infer.selection import select_structures
    from deeph_tf.artifacts.checkpoint import CheckpointError
    from deeph_tf.infer.predict import Predictor

    if args.k_path:
        from deeph_tf.infer.electronic import read_k_path

        read_k_path(args.k_path)  # a missing or malformed file is bad input, before the model loads
    try:
        predictor = Predictor.load(args.model)
    except (ValueError, OSError) as error:
        raise CheckpointError(f"cannot load the model {args.model}: {error}") from error
    depth = args.data_dir_depth
    if depth is None:
        depth = predictor.metadata.get("input", {}).get("training", {}).get("dataset", {}).get("data_dir_depth", 0)
    if predictor.is_energy_model:
        return _test_force_field(predictor, args, depth)
    structures = select_structures(args.system, depth, args.split, args.subset, args.numb_test)
    report, errors = evaluate(predictor, structures, args.output_dir, args.detail_file,
                              physics=not args.no_physics, k_grid=args.k_grid, k_path=args.k_path,
                              band_window_eV=args.band_window)
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


def _test_force_field(predictor, args, depth) -> int:
    """dtest of an energy_force model (DeePMD's dp test output)."""
    from deeph_tf.data.ff_graphs import load_labeled_systems
    from deeph_tf.infer.force_field_eval import evaluate_frames, format_summary, write_details
    from deeph_tf.infer.selection import select_by_split

    frames = [item for system in load_labeled_systems(args.system, args.fmt, depth, require_labels=False)
              for item in system]
    frames = select_by_split(frames, args.split, args.subset, args.numb_test, where=f"in {args.system}")
    results, predicted = evaluate_frames(predictor, frames)
    print(f"# dtest: model {predictor.source}, {len(frames)} structure(s) predicted, {len(results.names)} scored")
    if results.names:
        summary = results.summary()
        print(format_summary(summary))
        if args.detail_file:
            for path in write_details(args.detail_file, results, summary):
                logger.info("wrote %s", path)
    if args.output_dir:
        from deeph_tf.data.labeled import write_deepmd_npy

        written = write_deepmd_npy(predicted, args.output_dir, overwrite=True)
        logger.info("predicted labels: %s", ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
