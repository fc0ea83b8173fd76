"""The command line of ``python tools/make_pyscf_dataset.py`` (also ``python -m tools.pyscf_data``)."""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Optional, Sequence

from deeph_tf.data import DataFormatError

from .generate import generate
from .molecules import MIX_MOLECULES, MOLECULES, SOC_MIX_MOLECULES, molecule_names, reoptimize
from .plan import Settings, plan
from .validate import validate

logger = logging.getLogger("make_pyscf_dataset")
#: The first line of ``--help``.
DESCRIPTION = "Generate real DFT datasets of small molecules in the DeepH unified format with PySCF."


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=f"molecules: {', '.join(MOLECULES)}; mix = {','.join(MIX_MOLECULES)}; "
                                       f"soc_mix = {','.join(SOC_MIX_MOLECULES)}")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", type=Path, help="write OUT/dft/<sid>/")
    mode.add_argument("--validate", type=Path, metavar="DIR",
                      help="check a dataset (DIR or DIR/dft): eigenvalues vs stored PySCF ones, Hermiticity, "
                           "force.h5 (see --check-forces)")
    mode.add_argument("--reoptimize", metavar="NAME",
                      help="rerun the equilibrium-geometry optimization of NAME from the embedded geometry "
                           "and print it (maintenance)")
    p.add_argument("--molecule", action="append", default=None,
                   help="molecule name, repeatable or comma list; 'mix' = the small test molecules, 'soc_mix' = hbr,hi,ibr (default water; hbr with --spinful)")
    p.add_argument("--n-structures", type=int, default=1, help="number of structures (default 1)")
    p.add_argument("--start-index", type=int, default=0, help="index of the first structure (default 0)")
    p.add_argument("--seed", type=int, default=0, help="structure k uses seed + k (default 0)")
    p.add_argument("--sigma", type=float, default=0.05,
                   help="std of the Gaussian displacement per Cartesian coordinate, A (default 0.05)")
    p.add_argument("--rotate", action="store_true", help="apply a uniformly random rotation per structure")
    p.add_argument("--xc", default="PBE", help="exchange-correlation functional (default PBE)")
    p.add_argument("--basis", default="def2-SVP", help="Gaussian basis (default def2-SVP)")
    p.add_argument("--grid-level", type=int, default=3, help="PySCF grid level 0-9 (default 3)")
    p.add_argument("--conv-tol", type=float, default=1e-10, help="SCF energy tolerance, Hartree (default 1e-10)")
    p.add_argument("--box", type=float, default=20.0, help="cubic POSCAR box edge, A (default 20)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="worker processes, one thread each; 1 = in this process (default: CPU count)")
    p.add_argument("--forces", action="store_true",
                   help="also compute the total energy and the analytic forces (grid response included) and "
                        "write force.h5 (eV, eV/A); a folder without force.h5 then counts as incomplete")
    p.add_argument("--check-forces", type=int, default=1, metavar="N",
                   help="--validate: compare the largest force component of the first N structures having "
                        "force.h5 with a central finite difference of PySCF energies (default 1; 0 = skip)")
    p.add_argument("--spinful", action="store_true",
                   help="spin-orbit-coupled data: PySCF GKS with spin-orbit ECPs (see --ecp); complex 2n x 2n "
                        "hamiltonian/density blocks, spin outer; needs a heavy atom (e.g. --molecule soc_mix)")
    p.add_argument("--ecp", default="stuttgart-so",
                   help="--spinful: spin-orbit ECPs and the basis of their elements, a preset (stuttgart-so: "
                        "Br ecpds28mdfso, I ecpds46mdfso, basis stuttgartdz; crenbl) or 'EL=ECP,...;BASIS'; "
                        "other elements use --basis (default stuttgart-so)")
    p.add_argument("--name-prefix", choices=("auto", "always", "never"), default="auto",
                   help="prefix folder names with the molecule: auto = when several molecules (default)")
    p.add_argument("-v", "--log-level", default="INFO", help="logging level (default INFO)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(message)s")
    logger.setLevel(args.log_level.upper())
    try:
        if args.validate is not None:
            summary = validate(args.validate, check_forces=args.check_forces)
            logger.info("OK: max |eig - PySCF| = %.1e eV, max Hermiticity deviation = %.1e",
                        summary["eig_err"], summary["herm_err"])
            if "tr_err" in summary:
                logger.info("OK: %d spinful structures; max time-reversal deviation (max |Im| of A, B_k) "
                            "%.1e eV (H), %.1e (D); largest spin-orbit element |B_k| %.3f eV",
                            summary["n_spinful"], summary["tr_err"], summary["tr_err_density_matrix"],
                            summary["so_max"])
            if "force_fd_err" in summary:
                logger.info("OK: %d force.h5 files; max |force - finite difference| = %.1e eV/A, "
                            "|energy - recomputed| = %.1e eV", summary["n_force_files"],
                            summary["force_fd_err"], summary["energy_fd_err"])
            return 0
        if args.reoptimize is not None:
            reoptimize(molecule_names([args.reoptimize])[0], args.xc, args.basis, args.grid_level)
            return 0
        molecules = molecule_names(args.molecule or (["hbr"] if args.spinful else ["water"]))
        if args.spinful and args.forces:
            raise ValueError("--forces is not available with --spinful (no GKS+SOC-ECP gradients here)")
        settings = Settings(out=args.out, xc=args.xc, basis=args.basis, grid_level=args.grid_level,
                            conv_tol=args.conv_tol, seed=args.seed, sigma=args.sigma, rotate=args.rotate,
                            box=args.box, forces=args.forces, spinful=args.spinful, ecp=args.ecp)
        tasks = plan(molecules, args.n_structures, args.start_index, args.name_prefix)
        summary = generate(tasks, settings, workers=args.workers)
    except (AssertionError, DataFormatError) as exc:
        logger.error("FAILED: %s", exc)
        return 1
    except ValueError as exc:
        logger.error("error: %s", exc)
        return 2
    if summary["failed"]:
        logger.error("%d structures failed: %s", len(summary["failed"]), ", ".join(sorted(summary["failed"])))
        return 1
    return 0

