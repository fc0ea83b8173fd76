#!/usr/bin/env python
"""Make a rotated-water fixture in the DeepH unified format with PySCF.

One water molecule (O-H 0.97 A, H-O-H 104.0 deg) in a 10 A cubic box, computed in
``n_rotations + 1`` orientations: folder 0 is the reference, folder k >= 1 is
folder 0 rotated about the molecule's centroid by Q = Rz(alpha) Ry(beta) Rz(gamma)
(r' = Q (r - c) + c), with "alpha beta gamma" (radians) in ``k/euler_angle``, like
DeepH-dock's ``water_rotated`` example. Each folder holds POSCAR, info.json,
overlap.h5, hamiltonian.h5 (converged Kohn-Sham Fock matrix F[D] in eV),
density_matrix.h5 (total density matrix D, trace(DS) = 10) and ``mo_energy_eV.txt``
(the orbital energies of (F[D], S) computed by PySCF, eV, one per line) for
``--validate``. Orbitals are in DeepH order (shells ascending in l, m = -l..l,
p = (y, z, x); ``docs/conventions.md``, "2. Orbitals and rotations"). The PySCF run, the
folder writer and the validation are those of the ``pyscf_data`` package beside this script.

Integration grid (``--grid-frame``): DFT grids are atom-centred Lebedev grids
fixed to the lab axes, so rotating the molecule does not rotate the grid and the
rotated copies carry a small grid error. Measured max |H_k - D H_0 D^T| over all
blocks and copies (PBE/def2-SVP, ``lab`` frame): level 3: 4e-5 eV, level 4: 1.6e-6 eV,
level 5: 1.3e-6 eV, level 6: 1.9e-7 eV. ``--grid-frame molecule`` (default) rotates
each atomic grid together with the molecule (the Becke partition depends only on
distances, so the whole grid rotates exactly), which makes copy k a rotation of
copy 0 to about 1e-12 eV (H), 1e-15 (S) and 1e-13 (D); the committed fixture can
therefore test equivariant code tightly. ``lab`` gives PySCF's default grid.

The committed fixture ``examples/water_rotated`` was made with::

    python tools/make_rotated_water.py --out examples/water_rotated --seed 0 --xc PBE \\
        --basis def2-SVP --n-rotations 3 --grid-level 5 --grid-frame molecule

and is checked with::

    python tools/make_rotated_water.py --validate examples/water_rotated/dft
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from deeph_tf.conventions import euler_zyz_to_matrix
from deeph_tf.data import DataFormatError

from pyscf_data.folders import write_dft_files
from pyscf_data.plan import random_euler_angles
from pyscf_data.scf import deeph_ao_order, run_dft  # noqa: F401  (deeph_ao_order: for the tests)
from pyscf_data.validate import EULER_FILE, rotation_deviation, validate_blocks  # noqa: F401

logger = logging.getLogger("make_rotated_water")

BOX_ANGSTROM = 10.0
OH_ANGSTROM = 0.97
HOH_DEGREES = 104.0


# ----------------------------------------------------------------------------- geometry
def water_geometry() -> Tuple[List[str], np.ndarray]:
    """Species and [3, 3] Cartesian positions (A) of the reference water, centroid at the box centre.

    The molecule lies in a generic orientation (not in a coordinate plane) so that no
    Cartesian component of any block vanishes by symmetry in copy 0.
    """
    half = np.deg2rad(HOH_DEGREES) / 2
    pos = np.array([[0.0, 0.0, 0.0],
                    [OH_ANGSTROM * np.sin(half), 0.0, OH_ANGSTROM * np.cos(half)],
                    [-OH_ANGSTROM * np.sin(half), 0.0, OH_ANGSTROM * np.cos(half)]])
    tilt = euler_zyz_to_matrix(0.3, 0.7, -0.4)
    pos = pos @ tilt.T
    pos += BOX_ANGSTROM / 2 - pos.mean(axis=0)
    return ["O", "H", "H"], pos


def rotate_about_centroid(positions: np.ndarray, q: np.ndarray) -> np.ndarray:
    """r' = Q (r - c) + c with c the centroid; positions [n, 3]."""
    c = positions.mean(axis=0)
    return (positions - c) @ q.T + c


def write_structure(folder: Path, species: Sequence[str], positions: np.ndarray,
                    result: Dict[str, np.ndarray], xc: str, basis: str,
                    euler: Optional[Tuple[float, float, float]]) -> None:
    """Write one DeepH structure folder from :func:`run_dft` output (and its ``euler_angle`` file)."""
    write_dft_files(folder, species, positions, np.eye(3) * BOX_ANGSTROM, result, f"{xc}/{basis}",
                    comment=f"water {xc}/{basis} (tools/make_rotated_water.py)")
    if euler is not None:
        (folder / EULER_FILE).write_text(" ".join(repr(float(a)) for a in euler) + "\n")


def generate(out: Path, seed: int, xc: str, basis: str, n_rotations: int, grid_level: int,
             grid_frame: str) -> float:
    """Write ``out/dft/0..n_rotations``; returns the wall time in seconds."""
    t0 = time.perf_counter()
    species, pos0 = water_geometry()
    rng = np.random.default_rng(seed)
    dft_dir = out / "dft"
    for k in range(n_rotations + 1):
        euler = None if k == 0 else random_euler_angles(rng)
        q = np.eye(3) if euler is None else euler_zyz_to_matrix(*euler)
        pos = rotate_about_centroid(pos0, q)
        result = run_dft(species, pos, xc, basis, grid_level,
                         q_frame=q if grid_frame == "molecule" else None)
        write_structure(dft_dir / str(k), species, pos, result, xc, basis, euler)
        logger.info("structure %d: %d orbitals, SCF self-consistency |eig(F[D]) - mo_energy| = %.1e eV",
                    k, int(result["offsets"][-1]), result["scf_mo_energy_shift"])
    elapsed = time.perf_counter() - t0
    logger.info("wrote %d structures to %s in %.1f s", n_rotations + 1, dft_dir, elapsed)
    return elapsed


# ----------------------------------------------------------------------------- validate
def validate(root: Path, eig_tol: float = 1e-6, herm_tol: float = 1e-8,
             rotation_tol: Optional[float] = 1e-4) -> Dict[str, float]:
    """Check a generated fixture (:func:`pyscf_data.validate.validate_blocks`, logged here)."""
    return validate_blocks(root, eig_tol=eig_tol, herm_tol=herm_tol, rotation_tol=rotation_tol, log=logger)


# ----------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", type=Path, help="write OUT/dft/0..N")
    mode.add_argument("--validate", type=Path, metavar="DIR",
                      help="check a fixture (DIR or DIR/dft holding 0..N) and report")
    p.add_argument("--seed", type=int, default=0, help="seed of the random rotations (default 0)")
    p.add_argument("--xc", default="PBE", help="exchange-correlation functional (default PBE)")
    p.add_argument("--basis", default="def2-SVP", help="Gaussian basis (default def2-SVP)")
    p.add_argument("--n-rotations", type=int, default=3, help="rotated copies besides 0 (default 3)")
    p.add_argument("--grid-level", type=int, default=5, help="PySCF grid level 0-9 (default 5)")
    p.add_argument("--grid-frame", choices=("molecule", "lab"), default="molecule",
                   help="rotate the DFT grid with the molecule (exact equivariance) or keep "
                        "PySCF's lab-fixed grid (default molecule)")
    p.add_argument("--rotation-tol", type=float, default=1e-4,
                   help="--validate: max allowed deviation from exact rotation, eV (default 1e-4)")
    p.add_argument("-v", "--log-level", default="INFO", help="logging level (default INFO)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(message)s")
    try:
        if args.validate is not None:
            validate(args.validate, rotation_tol=args.rotation_tol)
        else:
            if args.n_rotations < 0:
                raise SystemExit("--n-rotations must be >= 0")
            generate(args.out, args.seed, args.xc, args.basis, args.n_rotations, args.grid_level,
                     args.grid_frame)
    except (AssertionError, DataFormatError) as exc:
        logger.error("FAILED: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
