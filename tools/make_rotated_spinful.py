#!/usr/bin/env python
"""Make rotated copies of a spin-orbit (spinful) PySCF structure, and check them against SU(2) x SO(3).

Copy 0 is structure ``--index`` of the spinful generator (``tools/make_pyscf_dataset.py --spinful``:
the same displaced geometry, GKS with spin-orbit ECPs, same files). Copy k >= 1 is copy 0 moved
about its centroid by r' = Q_k (r - c) + c and recomputed from scratch by PySCF; Q_k is a uniformly
random rotation, and with ``--improper`` the last copy uses -Q (a rotation times the inversion).
Each copy holds ``rotation_matrix`` (Q, 3 x 3, row by row) and, for proper Q, ``euler_angle``
(z-y-z, radians, as DeepH-dock's rotated sets and ``tools/check_rotated_copies.py``).

The check (``--validate``): every block of copy k must equal the transformed block of copy 0,
H'_ij = (D^{1/2}(Q) (x) U_i(Q)) H_ij (D^{1/2}(Q) (x) U_j(Q))^dagger (``deeph_tf.so3.su2``; spin axial:
D^{1/2}(det(Q) Q)), for hamiltonian.h5 and density_matrix.h5, and U_i S U_j^T for overlap.h5.

Integration grid (``--grid-frame``): PySCF's atom-centred Lebedev grids are fixed to the lab axes,
so a rotated molecule sees a different grid. ``molecule`` (default) rotates every atomic grid with
the molecule (the Becke partition depends only on distances and the Lebedev grids are inversion
symmetric, so the whole grid moves with the atoms, for improper Q too): the copies are then exact
transforms of copy 0 up to the SCF convergence. ``lab`` keeps PySCF's default grid and measures the
grid's share (see the committed fixture's README).

    python tools/make_rotated_spinful.py --out DIR --molecule hi --n-rotations 2 --improper
    python tools/make_rotated_spinful.py --validate DIR
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

from deeph_tf.conventions import euler_zyz_to_matrix
from deeph_tf.data import DataFormatError, load_structure
from deeph_tf.data.rotation import compare_rotated_copy

from pyscf_data.folders import write_spinful_files
from pyscf_data.gks import run_gks_soc
from pyscf_data.molecules import molecule_names
from pyscf_data.plan import Settings, random_euler_angles, structure_geometry
from pyscf_data.validate import EULER_FILE, validate_blocks

logger = logging.getLogger("make_rotated_spinful")

#: Q of a copy relative to copy 0 (3 lines of 3 numbers).
ROTATION_FILE = "rotation_matrix"
#: Blocks compared, with their default tolerances (eV for H; D and S dimensionless).
TOLERANCES: Dict[str, float] = {"hamiltonian": 1e-6, "density_matrix": 1e-7, "overlap": 1e-10}


def rotate_about_centroid(positions: np.ndarray, q: np.ndarray) -> np.ndarray:
    """r' = Q (r - c) + c with c the centroid; positions [n, 3] (A)."""
    c = positions.mean(axis=0)
    return (positions - c) @ q.T + c


def generate(out: Path, settings: Settings, molecule: str, index: int, n_rotations: int, improper: bool,
             grid_frame: str) -> float:
    """Write ``out/dft/0..n_rotations``; returns the wall time (s)."""
    t0 = time.perf_counter()
    species, pos0, _ = structure_geometry(molecule, index, settings)
    rng = np.random.default_rng(settings.seed + 1_000_000 + index)  # not the stream of the displacements
    dft_dir = out / "dft"
    for k in range(n_rotations + 1):
        euler = None if k == 0 else random_euler_angles(rng)
        q = np.eye(3) if euler is None else euler_zyz_to_matrix(*euler)
        if improper and k == n_rotations and k > 0:
            q, euler = -q, None
        pos = rotate_about_centroid(pos0, q)
        result = run_gks_soc(species, pos, settings.xc, settings.basis, settings.ecp, settings.grid_level,
                             settings.conv_tol, q_frame=q if grid_frame == "molecule" else None)
        folder = dft_dir / str(k)
        comment = (f"{molecule} {settings.basis_label} seed={settings.seed + index} sigma={settings.sigma} "
                   f"copy {k} grid-frame={grid_frame} (tools/make_rotated_spinful.py)")
        write_spinful_files(folder, species, pos, np.eye(3) * settings.box, result, settings, comment)
        (folder / ROTATION_FILE).write_text("".join(" ".join(repr(float(v)) for v in row) + "\n" for row in q))
        if euler is not None:
            (folder / EULER_FILE).write_text(" ".join(repr(float(a)) for a in euler) + "\n")
        logger.info("copy %d: det Q = %+.0f, %d spin-orbitals, SCF |eig(F[D]) - mo_energy| = %.1e eV", k,
                    np.linalg.det(q), 2 * int(result["offsets"][-1]), result["scf_mo_energy_shift"])
    elapsed = time.perf_counter() - t0
    logger.info("wrote %d structures to %s in %.1f s", n_rotations + 1, dft_dir, elapsed)
    return elapsed


def read_rotation(folder: Path) -> np.ndarray:
    """Q [3, 3] of a copy (``rotation_matrix``)."""
    q = np.loadtxt(folder / ROTATION_FILE, ndmin=2)
    if q.shape != (3, 3):
        raise AssertionError(f"{folder / ROTATION_FILE}: expected 3 x 3 numbers, got shape {q.shape}")
    return q


def compare_copies(root: Path, tolerances: Optional[Dict[str, float]] = None) -> Dict[str, float]:
    """max |copy k - transformed copy 0| per block file over all copies; AssertionError above ``tolerances``.

    Returns:
        {"<name>": max deviation over the copies (eV for H), "n_copies"}.
    """
    tolerances = dict(TOLERANCES if tolerances is None else tolerances)
    dft_dir = root / "dft" if (root / "dft").is_dir() else root
    copies = sorted((p for p in dft_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
    if len(copies) < 2 or copies[0].name != "0":
        raise AssertionError(f"{dft_dir}: expected copies 0, 1, ... (found {[p.name for p in copies]})")
    reference = load_structure(copies[0])
    out: Dict[str, float] = {"n_copies": float(len(copies) - 1)}
    for folder in copies[1:]:
        copy, q = load_structure(folder), read_rotation(folder)
        for name, tol in tolerances.items():
            result = compare_rotated_copy(reference, copy, q, name)
            out[name] = max(out.get(name, 0.0), result.max_abs_error)
            logger.info("copy %s (det Q %+.0f) %s: max |copy - rotated 0| = %.1e (largest entry %.2f), by shell "
                        "pair %s", folder.name, np.linalg.det(q), name, result.max_abs_error, result.max_abs_entry,
                        ", ".join(f"{'spdf'[a]}-{'spdf'[b]} {v:.1e}" for (a, b), v in
                                  result.max_abs_by_shell_pair.items()))
            if result.max_abs_error > tol:
                raise AssertionError(f"{folder / (name + '.h5')}: differs from copy 0 transformed by Q by "
                                     f"{result.max_abs_error:.2e} > {tol}")
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", type=Path, help="write OUT/dft/0..N")
    mode.add_argument("--validate", type=Path, metavar="DIR", help="check copies DIR/dft/0..N")
    p.add_argument("--molecule", default="hi", help="spinful molecule (default hi)")
    p.add_argument("--index", type=int, default=0, help="structure index of copy 0's displacement (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of displacements and rotations (default 0)")
    p.add_argument("--sigma", type=float, default=0.05, help="displacement std, A (default 0.05)")
    p.add_argument("--n-rotations", type=int, default=2, help="rotated copies besides 0 (default 2)")
    p.add_argument("--improper", action="store_true", help="the last copy uses -Q (rotation x inversion)")
    p.add_argument("--xc", default="PBE")
    p.add_argument("--basis", default="def2-SVP", help="basis of elements without a spin-orbit ECP")
    p.add_argument("--ecp", default="stuttgart-so", help="spin-orbit ECP preset or spec (see make_pyscf_dataset)")
    p.add_argument("--grid-level", type=int, default=3)
    p.add_argument("--conv-tol", type=float, default=1e-11, help="SCF energy tolerance, Hartree (default 1e-11)")
    p.add_argument("--grid-frame", choices=("molecule", "lab"), default="molecule",
                   help="rotate the DFT grid with the molecule (default) or keep PySCF's lab grid")
    p.add_argument("--hamiltonian-tol", type=float, default=TOLERANCES["hamiltonian"],
                   help=f"--validate: max |H_k - rotated H_0|, eV (default {TOLERANCES['hamiltonian']})")
    p.add_argument("-v", "--log-level", default="INFO")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(message)s")
    try:
        if args.validate is not None:
            validate_blocks(args.validate, rotation_tol=None, log=logger)
            tolerances = dict(TOLERANCES, hamiltonian=args.hamiltonian_tol)
            summary = compare_copies(args.validate, tolerances)
            logger.info("OK: %d copies; max deviation from the SU(2) x SO(3) transform of copy 0: H %.1e eV, "
                        "D %.1e, S %.1e", summary["n_copies"], summary["hamiltonian"], summary["density_matrix"],
                        summary["overlap"])
        else:
            if args.n_rotations < 1:
                raise ValueError("--n-rotations must be >= 1")
            molecule = molecule_names([args.molecule])[0]
            settings = Settings(out=args.out, xc=args.xc, basis=args.basis, grid_level=args.grid_level,
                                conv_tol=args.conv_tol, seed=args.seed, sigma=args.sigma, spinful=True,
                                ecp=args.ecp)
            generate(args.out, settings, molecule, args.index, args.n_rotations, args.improper, args.grid_frame)
    except (AssertionError, DataFormatError) as exc:
        logger.error("FAILED: %s", exc)
        return 1
    except ValueError as exc:
        logger.error("error: %s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
