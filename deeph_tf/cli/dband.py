"""``dband -s INPUTS_DIR -o OUTPUT_DIR [-r REFERENCE_DIR]``: bands, Fermi level, gap and DOS from H and S.

No DFT reference is needed: the Hamiltonian may be predicted (``hamiltonian_pred.h5``, as
``dtest -o`` writes it). Dense or sparse (shift-invert, inertia-counted Fermi level) eigen-solves;
see :mod:`deeph_tf.workflows.band_structure` for the files and
:mod:`deeph_tf.infer.electronic.spectrum` for the physics. Parsing imports neither TensorFlow
nor NumPy; nothing here needs TensorFlow at all.
"""
from __future__ import annotations

import argparse
import logging
from typing import Any, Dict, Optional, Sequence

from deeph_tf.cli._common import add_common_arguments, positive_float, positive_int, run_command

logger = logging.getLogger("dband")
# Defaults of deeph_tf.infer.electronic.spectrum / auto_path, not imported: parsing stays light (tested equal).
DEFAULT_SIGMA_EV = 0.05
DEFAULT_NUM_BANDS = 40
DEFAULT_SPARSE_ABOVE = 3000
DEFAULT_PATH_POINTS = 120
DEFAULT_BAND_WINDOW_EV = 2.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dband",
        description="Electronic structure from predicted (or DFT) Hamiltonians, no DFT reference needed: bands "
        "along each structure's K_PATH (or --k-path, else ASE's path for the lattice), the Fermi level from "
        "info.json's occupation on a Gamma-centred k-grid, the gap (CBM - VBM, negative for metals) and a "
        "Gaussian DOS. Dense eigen-solves, or sparse ones for large cells (the --num-bands eigenvalues nearest "
        "E_F by shift-invert, the Fermi level by inertia counting). Writes OUTPUT_DIR/<sid>/bands.h5, "
        "bands.png, dos.png and OUTPUT_DIR/summary.json; with -r, band errors against the DFT H as dtest.")
    parser.add_argument("-s", "--system", required=True, metavar="INPUTS_DIR",
                        help="folder holding dft/ (or a dft/ folder, or one structure folder); each structure holds "
                        "POSCAR, info.json (with occupation), overlap.h5 (or overlap_pred.h5) and hamiltonian_pred.h5 "
                        "(preferred) or hamiltonian.h5")
    parser.add_argument("-o", "--output-dir", required=True, metavar="OUTPUT_DIR", help="where the results go")
    parser.add_argument("-r", "--reference", metavar="REFERENCE_DIR",
                        help="DFT structures (hamiltonian.h5 + overlap.h5) with the same ids: band / orbital-energy "
                        "errors as dtest reports them (dense solves only)")
    parser.add_argument("--hamiltonian", metavar="NAME",
                        help="Hamiltonian file of each structure (e.g. hamiltonian or hamiltonian_pred.h5; default: "
                        "hamiltonian_pred.h5, else hamiltonian.h5)")
    parser.add_argument("--data-dir-depth", type=int, default=None,
                        help="levels below dft/ (default: structure folders are searched)")
    parser.add_argument("--reference-depth", type=int, default=None,
                        help="levels below dft/ in REFERENCE_DIR (default: searched)")
    parser.add_argument("-n", "--numb-test", type=int, default=0, help="structures to solve (0: all)")
    parser.add_argument("--split", metavar="SPLIT_JSON", help="only the structures of one part of a split file")
    parser.add_argument("--subset", default="test", help="which part of --split (default: %(default)s)")
    parser.add_argument("--k-path", metavar="FILE", help="K_PATH file (DeepH-dock format) for every crystal "
                        "(default: each folder's K_PATH, else ASE's path for the lattice)")
    parser.add_argument("--no-path", action="store_true", help="no bands along a k-path (grid and DOS only)")
    parser.add_argument("--path-points", type=positive_int, default=DEFAULT_PATH_POINTS,
                        help="k-points of an automatic path (default: %(default)s)")
    parser.add_argument("--k-grid", type=positive_int, nargs=3, metavar=("K1", "K2", "K3"),
                        help="Gamma-centred k-grid of the Fermi level, gap and DOS (default: 4 along each periodic "
                        "direction, 1 along vacuum; sparse solves of cells >= 20 Angstrom along every periodic "
                        "direction: Gamma only)")
    parser.add_argument("--sigma", type=positive_float, default=DEFAULT_SIGMA_EV, metavar="EV",
                        help="Gaussian broadening of the DOS in eV (default: %(default)s)")
    parser.add_argument("--solver", choices=("auto", "dense", "sparse"), default="auto",
                        help="eigen-solver (default: %(default)s: sparse above --sparse-above orbitals)")
    parser.add_argument("--sparse-above", type=positive_int, default=DEFAULT_SPARSE_ABOVE, metavar="N",
                        help="--solver auto solves sparse above N orbitals (default: %(default)s)")
    parser.add_argument("--num-bands", type=positive_int, default=DEFAULT_NUM_BANDS,
                        help="eigenvalues per k of a sparse solve, nearest E_F (default: %(default)s)")
    parser.add_argument("--band-window", type=positive_float, default=DEFAULT_BAND_WINDOW_EV, metavar="EV",
                        help="with -r: compare bands within +-EV of the DFT Fermi energy (default: %(default)s)")
    parser.add_argument("--no-plots", action="store_true", help="write no PNGs")
    add_common_arguments(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_command("dband", build_parser(), argv, _run)


def _value(value: Optional[float], digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def format_table(structures: Dict[str, Dict[str, Any]]) -> str:
    """One row per structure: kind, solver, orbitals, E_F and gap (eV), seconds."""
    width = max([len("structure")] + [len(sid) for sid in structures])
    lines = [f"{'structure':<{width}}  {'kind':<8}  {'solver':<6}  {'orbitals':>8}  {'E_F (eV)':>10}  "
             f"{'gap (eV)':>10}  {'time (s)':>8}"]
    for sid, r in structures.items():
        lines.append(f"{sid:<{width}}  {r['kind']:<8}  {r['solver']:<6}  {r['n_orbitals']:>8d}  "
                     f"{_value(r['fermi_energy_eV']):>10}  {_value(r['gap_eV']):>10}  {r['time_s']:>8.2f}")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    from deeph_tf.infer.evaluate import format_physics
    from deeph_tf.infer.selection import select_structures
    from deeph_tf.workflows.band_structure import DbandOptions, run_dband

    if args.k_path:
        from deeph_tf.infer.electronic import read_k_path

        read_k_path(args.k_path)  # a missing or malformed file is bad input, before any solve
    structures = select_structures(args.system, args.data_dir_depth, args.split, args.subset, args.numb_test)
    options = DbandOptions(hamiltonian=args.hamiltonian, solver=args.solver, k_path=args.k_path,
                           k_grid=tuple(args.k_grid) if args.k_grid else None, use_path=not args.no_path,
                           n_bands=args.num_bands, sigma_eV=args.sigma, sparse_above=args.sparse_above,
                           path_points=args.path_points, band_window_eV=args.band_window, plots=not args.no_plots)
    report = run_dband(structures, args.output_dir, options, reference_dir=args.reference,
                       reference_depth=args.reference_depth)
    print(f"# dband: {len(report.structures)} structure(s) from {args.system}, results in {args.output_dir}")
    print(format_table(report.structures))
    if args.reference:
        physics = format_physics(report.evaluation_report())
        if physics:
            print(physics)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
