"""The command line of ``python tools/make_cp2k_dataset.py`` (also ``python -m tools.cp2k_data``)."""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Optional, Sequence

from deeph_tf.data import DataFormatError

from .generate import generate
from .materials import MATERIALS
from .plan import Settings, plan
from .validate import MAX_WINDOW_ERROR_EV, WINDOW_EV, validate

logger = logging.getLogger("make_cp2k_dataset")
DESCRIPTION = "Generate real periodic DFT datasets (displaced supercells of crystals) in the DeepH format with CP2K."


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=DESCRIPTION, epilog="materials: " + "; ".join(
        f"{m.name} ({m.description})" for m in MATERIALS.values()))
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", type=Path, help="write OUT/dft/<material>-<k>/")
    mode.add_argument("--validate", type=Path, metavar="DIR",
                      help=f"check a dataset (DIR or DIR/dft): bands of the written blocks vs CP2K's own at the "
                           f"validation k-points (within E_F +- {WINDOW_EV:g} eV, occupied, all), Hermiticity, "
                           f"partners, and overlaps vs PySCF (--check-overlap)")
    p.add_argument("--material", default="hBN",
                   help="crystal, or molecule:<G2 name> (closed-shell, ase.collections.g2; in a cubic box at "
                        "Gamma, needs --block-radius > 0 and --supercell 1 1 1) (default hBN)")
    p.add_argument("--supercell", type=int, nargs=3, default=(2, 2, 1), metavar=("N1", "N2", "N3"),
                   help="repetitions of the primitive cell (default 2 2 1)")
    p.add_argument("--n-structures", type=int, default=1, help="number of structures (default 1)")
    p.add_argument("--start-index", type=int, default=0, help="index of the first structure (default 0)")
    p.add_argument("--seed", type=int, default=0, help="structure k uses seed + k (default 0)")
    p.add_argument("--sigma", type=float, default=0.05,
                   help="std of the Gaussian displacement per Cartesian coordinate, A (default 0.05)")
    p.add_argument("--basis", default="SZV-MOLOPT-SR-GTH", help="CP2K MOLOPT basis (default SZV-MOLOPT-SR-GTH)")
    p.add_argument("--potential", default="GTH-PBE", help="GTH pseudopotential (default GTH-PBE)")
    p.add_argument("--xc", default="PBE", help="functional (default PBE)")
    p.add_argument("--cutoff", type=float, default=300.0, help="plane-wave cutoff of the density grid, Ry (default 300)")
    p.add_argument("--kspacing", type=float, default=0.3,
                   help="largest SCF k-mesh spacing, 1/A with 2 pi (default 0.3; 1 point along vacuum)")
    p.add_argument("--eps-default", type=float, default=1e-12, help="CP2K EPS_DEFAULT (default 1e-12)")
    p.add_argument("--block-radius", type=float, default=0.0,
                   help="write only blocks of atom pairs within this distance, A (default 0: all CP2K has)")
    p.add_argument("--band-points", type=int, default=8, help="validation k-points per K_PATH segment (default 8)")
    p.add_argument("--workers", type=int, default=1, help="structures computed at once (default 1)")
    p.add_argument("--mpi-procs", type=int, default=os.cpu_count() or 1,
                   help="MPI ranks of each CP2K run (default: CPU count)")
    p.add_argument("--keep-cp2k-files", action="store_true",
                   help="keep each CP2K run (input, log, CSR and band files) in OUT/cp2k_runs/<sid>/")
    p.add_argument("--check-overlap", type=int, default=1, metavar="N",
                   help="--validate: compare S blocks of the first N structures with PySCF (default 1; 0 = skip)")
    p.add_argument("--max-window-error", type=float, default=MAX_WINDOW_ERROR_EV, metavar="EV",
                   help=f"--validate: fail above this band error within E_F +- {WINDOW_EV:g} eV (default %(default)g eV)")
    p.add_argument("-v", "--log-level", default="INFO", help="logging level (default INFO)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(message)s")
    logger.setLevel(args.log_level.upper())
    try:
        if args.validate is not None:
            s = validate(args.validate, check_overlap=args.check_overlap, max_window_error=args.max_window_error)
            logger.info("OK: %d structures; band error of the written blocks vs CP2K: within E_F +- %g eV "
                        "%.2e eV, occupied bands %.2e eV, all bands %.2e eV; Hermiticity %.1e eV%s",
                        s["n_structures"], WINDOW_EV, s["window_max"], s["occupied_max"], s["all_max"],
                        s["herm_max"], f"; |S - PySCF| {s['overlap_max']:.1e}" if "overlap_max" in s else "")
            if "molecule_max" in s:
                logger.info("molecules (Gamma): largest orbital-energy error over the occupied orbitals and the LUMO "
                            "%.2e eV", s["molecule_max"])
            return 0
        settings = Settings(out=args.out, material=args.material, supercell=tuple(args.supercell), seed=args.seed,
                            sigma=args.sigma, basis=args.basis, potential=args.potential, xc=args.xc,
                            cutoff=args.cutoff, kspacing=args.kspacing, eps_default=args.eps_default,
                            block_radius=args.block_radius, band_points=args.band_points,
                            mpi_procs=args.mpi_procs, keep_run=args.keep_cp2k_files)
        summary = generate(plan(settings, args.n_structures, args.start_index), settings, workers=args.workers)
    except (AssertionError, DataFormatError) as exc:
        logger.error("FAILED: %s", exc)
        return 1
    except (ValueError, FileNotFoundError) as exc:
        logger.error("error: %s", exc)
        return 2
    if summary["failed"]:
        logger.error("%d structures failed: %s", len(summary["failed"]), ", ".join(sorted(summary["failed"])))
        return 1
    return 0
