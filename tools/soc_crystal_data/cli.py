"""Options of ``tools/make_soc_crystal_dataset.py`` (see the package docstring)."""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Optional, Sequence

from .generate import Settings, generate, plan

logger = logging.getLogger("make_soc_crystal_dataset")


def build_parser() -> argparse.ArgumentParser:
    d = Settings(out=Path("."))
    p = argparse.ArgumentParser(prog="make_soc_crystal_dataset.py",
                                description="Periodic spin-orbit (two-component GKS + SO-ECP) DFT data with PySCF, "
                                            "in the DeepH format (spinful blocks H(R), S(R)).")
    p.add_argument("--out", type=Path, help="dataset folder (structures go to OUT/dft/<sid>)")
    p.add_argument("--validate", type=Path, metavar="DIR", help="check a written dataset and exit")
    p.add_argument("--material", default=d.material, help="crystal of tools/cp2k_data/materials.py (default %(default)s)")
    p.add_argument("--supercell", type=int, nargs=3, default=list(d.supercell))
    p.add_argument("--n-structures", type=int, default=1)
    p.add_argument("--start-index", type=int, default=0)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--sigma", type=float, default=d.sigma, help="displacement per coordinate, A (default %(default)s)")
    p.add_argument("--xc", default=d.xc)
    p.add_argument("--basis", default=d.basis, help="basis of the elements without an SO-ECP (GTH)")
    p.add_argument("--pseudo", default=d.pseudo, help="GTH pseudopotential of the elements without an SO-ECP")
    p.add_argument("--ecp", default=d.ecp, help="spin-orbit ECP preset or 'EL=ECP,...;BASIS' (tools/pyscf_data/gks.py)")
    p.add_argument("--exp-to-discard", type=float, default=d.exp_to_discard,
                   help="drop primitives with smaller exponents, Bohr^-2 (default %(default)s)")
    p.add_argument("--conv-tol", type=float, default=d.conv_tol)
    p.add_argument("--scf-mesh", type=int, nargs=3, default=list(d.scf_mesh), help="SCF k-mesh (unshifted)")
    p.add_argument("--band-mesh", type=int, nargs=3, default=list(d.band_mesh),
                   help="mesh of F[D](k) for the back-transform to H(R); a multiple of --scf-mesh")
    p.add_argument("--block-radius", type=float, default=d.block_radius,
                   help="write pairs within this distance, A (below half the band-mesh supercell period)")
    p.add_argument("--workers", type=int, default=1, help="processes, one thread each (default %(default)s)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    if args.validate is not None:
        from .validate import validate

        print(json.dumps(validate(args.validate), indent=2))
        return 0
    if args.out is None:
        raise SystemExit("--out DIR is required (or --validate DIR)")
    from cp2k_data.materials import is_molecule_name

    if is_molecule_name(args.material):
        raise SystemExit(f"--material {args.material}: this generator makes crystals; spin-orbit molecules come "
                         "from tools/make_pyscf_dataset.py --spinful")
    if list(args.scf_mesh) == [1, 1, 1]:
        raise SystemExit("--scf-mesh 1 1 1: PySCF 2.14's Gamma-only KGKS with spin-orbit terms fails (a complex J "
                         "added to a real V_xc); use at least 2 k-points")
    if any(b % s for b, s in zip(args.band_mesh, args.scf_mesh)):
        raise SystemExit(f"--band-mesh {args.band_mesh} must be a multiple of --scf-mesh {args.scf_mesh} "
                         "(the SCF k-points are checked on it)")
    settings = Settings(out=args.out, material=args.material, supercell=tuple(args.supercell), sigma=args.sigma,
                        seed=args.seed, xc=args.xc, basis=args.basis, pseudo=args.pseudo, ecp=args.ecp,
                        exp_to_discard=args.exp_to_discard, conv_tol=args.conv_tol, scf_mesh=tuple(args.scf_mesh),
                        band_mesh=tuple(args.band_mesh), block_radius=args.block_radius)
    summary = generate(plan(settings, args.n_structures, args.start_index), settings, args.workers)
    return 1 if summary["failed"] else 0
