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
p = (y, z, x)).

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

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(_REPO))

from deeph_tf.conventions import (HARTREE_TO_EV, euler_zyz_to_matrix,  # noqa: E402
                                  pyscf_to_deeph_permutation)
from deeph_tf.data import (DataFormatError, Poscar, blocks_from_dense,  # noqa: E402
                           blocks_to_dense, is_structure_folder, load_structure, write_block_h5,
                           write_info_json, write_poscar)
from deeph_tf.data.rotation import compare_rotated_copy  # noqa: E402

logger = logging.getLogger("make_rotated_water")

BOX_ANGSTROM = 10.0
OH_ANGSTROM = 0.97
HOH_DEGREES = 104.0
MO_ENERGY_FILE = "mo_energy_eV.txt"
EULER_FILE = "euler_angle"
BLOCK_NAMES = ("overlap", "hamiltonian", "density_matrix")


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


def random_euler_angles(rng: np.random.Generator) -> Tuple[float, float, float]:
    """Uniformly distributed rotation as z-y-z Euler angles (radians)."""
    alpha, gamma = rng.uniform(0.0, 2 * np.pi, size=2)
    beta = np.arccos(rng.uniform(-1.0, 1.0))
    return float(alpha), float(beta), float(gamma)


def rotate_about_centroid(positions: np.ndarray, q: np.ndarray) -> np.ndarray:
    """r' = Q (r - c) + c with c the centroid; positions [n, 3]."""
    c = positions.mean(axis=0)
    return (positions - c) @ q.T + c


# ----------------------------------------------------------------------------- orbitals
def deeph_ao_order(mol) -> Tuple[np.ndarray, Dict[str, List[int]], np.ndarray]:
    """Permutation of PySCF AOs into DeepH order, plus elements_orbital_map and atom offsets.

    PySCF (spherical) stores AOs atom by atom, shells in ``mol._bas`` order, each shell
    as ``nctr`` contractions of 2l+1 functions (p as x, y, z). DeepH wants, per atom,
    shells in ascending l (stable, so radial order is kept) and m = -l..l.

    Returns:
        perm: [nao] with ``deeph_matrix = pyscf_matrix[perm][:, perm]``.
        elements_orbital_map: one l per radial shell per element, storage order.
        offsets: [natm + 1] start of each atom's orbitals in DeepH order.
    """
    ao_loc = mol.ao_loc_nr()
    per_atom: List[List[Tuple[int, int]]] = [[] for _ in range(mol.natm)]  # (l, first AO)
    for ib in range(mol.nbas):
        l, nctr = mol.bas_angular(ib), mol.bas_nctr(ib)
        for c in range(nctr):
            per_atom[mol.bas_atom(ib)].append((l, int(ao_loc[ib]) + c * (2 * l + 1)))
    perm: List[int] = []
    eom: Dict[str, List[int]] = {}
    offsets = [0]
    for ia, shells in enumerate(per_atom):
        shells = sorted(shells, key=lambda s: s[0])  # stable: radial order kept within l
        ls = [l for l, _ in shells]
        sym = mol.atom_pure_symbol(ia)
        if sym in eom and eom[sym] != ls:
            raise ValueError(f"atoms of element {sym} have different shells: {eom[sym]} vs {ls}")
        eom[sym] = ls
        assert ls == sorted(ls), "elements_orbital_map must ascend in l"
        for l, start in shells:
            perm.extend(start + pyscf_to_deeph_permutation(l))
        offsets.append(len(perm))
    perm_arr = np.array(perm, dtype=np.int64)
    if sorted(perm) != list(range(mol.nao_nr())):
        raise AssertionError("AO permutation is not a permutation")
    return perm_arr, eom, np.array(offsets, dtype=np.int64)


# ----------------------------------------------------------------------------- PySCF
def _make_grids(mol, level: int, q_frame: Optional[np.ndarray]):
    """PySCF grids; with ``q_frame`` every atom-centred grid is rotated by it."""
    from pyscf import dft

    if q_frame is None:
        grids = dft.gen_grid.Grids(mol)
    else:
        class RotatedGrids(dft.gen_grid.Grids):
            """Atomic grids rotated with the molecule (Becke partition is rotation invariant)."""

            def gen_atomic_grids(self, mol, *args, **kwargs):
                tab = super().gen_atomic_grids(mol, *args, **kwargs)
                return {sym: (np.ascontiguousarray(coords @ q_frame.T), vol)
                        for sym, (coords, vol) in tab.items()}

        grids = RotatedGrids(mol)
    grids.level = level
    return grids


def run_dft(species: Sequence[str], positions: np.ndarray, xc: str, basis: str, grid_level: int,
            q_frame: Optional[np.ndarray], conv_tol: float = 1e-11) -> Dict[str, np.ndarray]:
    """Restricted Kohn-Sham for one geometry (positions in A).

    Returns (DeepH orbital order, eV where energies): ``hamiltonian`` F[D], ``overlap``,
    ``density_matrix`` D (both spins), ``mo_energy`` (eigenvalues of (F[D], S) from
    PySCF's ``eig``), ``offsets``, ``elements_orbital_map``, ``nelectron``, plus
    ``scf_mo_energy_shift``: max |eig(F[D]) - mf.mo_energy| (self-consistency, eV).
    """
    from pyscf import dft, gto

    mol = gto.M(atom=[(s, tuple(p)) for s, p in zip(species, positions)], basis=basis,
                unit="Angstrom", charge=0, spin=0, cart=False, verbose=0)
    mf = dft.RKS(mol)
    mf.xc = xc
    mf.grids = _make_grids(mol, grid_level, q_frame)
    mf.conv_tol = conv_tol
    mf.conv_tol_grad = np.sqrt(conv_tol) / 10
    mf.max_cycle = 200
    mf.init_guess = "minao"
    mf.kernel()
    if not mf.converged:
        raise RuntimeError(f"SCF did not converge for {xc}/{basis}")
    dm = mf.make_rdm1()
    s = mf.get_ovlp()
    fock = mf.get_fock(dm=dm)  # h1e + veff[dm]: no DIIS, damping or level shift
    mo_energy, _ = mf.eig(fock, s)
    perm, eom, offsets = deeph_ao_order(mol)
    idx = np.ix_(perm, perm)
    return {
        "hamiltonian": fock[idx] * HARTREE_TO_EV,
        "overlap": s[idx],
        "density_matrix": dm[idx],
        "mo_energy": np.asarray(mo_energy) * HARTREE_TO_EV,
        "scf_mo_energy_shift": float(np.max(np.abs(mo_energy - mf.mo_energy))) * HARTREE_TO_EV,
        "offsets": offsets,
        "elements_orbital_map": eom,
        "nelectron": mol.nelectron,
    }


def write_structure(folder: Path, species: Sequence[str], positions: np.ndarray,
                    result: Dict[str, np.ndarray], xc: str, basis: str,
                    euler: Optional[Tuple[float, float, float]]) -> None:
    """Write one DeepH structure folder from :func:`run_dft` output."""
    folder.mkdir(parents=True, exist_ok=True)
    lattice = np.eye(3) * BOX_ANGSTROM
    write_poscar(folder / "POSCAR", Poscar(lattice=lattice, species=list(species), positions=positions,
                                           comment=f"water {xc}/{basis} (tools/make_rotated_water.py)"))
    e = result["mo_energy"]
    nocc = result["nelectron"] // 2
    fermi = float((e[nocc - 1] + e[nocc]) / 2)
    offsets = result["offsets"]
    write_info_json(folder / "info.json", {
        "atoms_quantity": len(species),
        "orbits_quantity": int(offsets[-1]),
        "orthogonal_basis": False,
        "spinful": False,
        "fermi_energy_eV": fermi,
        "elements_orbital_map": result["elements_orbital_map"],
        "occupation": int(result["nelectron"]),
        "basis": f"{xc}/{basis}",
    })
    for name in BLOCK_NAMES:
        matrix = result[name]
        matrix = (matrix + matrix.T) / 2  # remove last-bit asymmetry of the AO integrals / Fock build
        write_block_h5(folder / f"{name}.h5", blocks_from_dense(matrix, offsets))
    (folder / MO_ENERGY_FILE).write_text("".join(f"{float(v)!r}\n" for v in e))
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
def _dft_folders(root: Path) -> List[Path]:
    """Structure folders directly under ``root`` (or ``root/dft``), sorted numerically when possible."""
    if (root / "dft").is_dir() and not is_structure_folder(root):
        root = root / "dft"
    folders = [p for p in root.iterdir() if is_structure_folder(p)]
    return sorted(folders, key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))


def rotation_deviation(ref, other, q: np.ndarray, name: str) -> Dict[Tuple[int, int], float]:
    """max |other - D ref D^T| per (l_i, l_j) shell-pair type over all blocks, for block file ``name``."""
    return compare_rotated_copy(ref, other, q, name).max_abs_by_shell_pair


def validate(root: Path, eig_tol: float = 1e-6, herm_tol: float = 1e-8,
             rotation_tol: Optional[float] = 1e-4) -> Dict[str, float]:
    """Check a generated fixture; raise AssertionError on the first failure.

    For every structure: it loads (POSCAR/info.json/blocks consistent); every block
    file is Hermitian to ``herm_tol`` (eV for H); the generalized eigenvalues of (H, S)
    from disk equal ``mo_energy_eV.txt`` to ``eig_tol`` eV; trace(D S) equals the
    occupation. For copies with ``euler_angle``: the max deviation of H, S and D from
    the exact rotation of copy 0, reported per shell-pair type (s-s, s-p, p-p, ...),
    must stay below ``rotation_tol`` eV (None: report only).

    Returns:
        summary numbers: max eigenvalue error, max Hermiticity error, and
        ``rot_<name>_<li><lj>`` max deviations in the units of each file.
    """
    import scipy.linalg

    folders = _dft_folders(Path(root))
    if not folders:
        raise AssertionError(f"no structure folders under {root}")
    summary: Dict[str, float] = {"eig_err": 0.0, "herm_err": 0.0}
    structures = {p.name: load_structure(p) for p in folders}
    ref = structures.get("0")
    for name, st in structures.items():
        off = st.atom_orbital_offsets()
        mats = {}
        for block_name in BLOCK_NAMES:
            if not st.has_blocks(block_name):
                continue
            bs = st.read_blocks(block_name)
            herm = bs.max_hermiticity_deviation()
            summary["herm_err"] = max(summary["herm_err"], herm)
            if herm > herm_tol:
                raise AssertionError(f"{st.block_path(block_name)}: not Hermitian, max dev {herm:.2e} > {herm_tol}")
            mats[block_name] = blocks_to_dense(bs, off)
        eig = scipy.linalg.eigh(mats["hamiltonian"], mats["overlap"], eigvals_only=True)
        ref_file = st.path / MO_ENERGY_FILE
        if not ref_file.is_file():
            raise AssertionError(f"{ref_file}: missing (written by the generator)")
        ref_eig = np.loadtxt(ref_file, ndmin=1)
        if ref_eig.shape != eig.shape:
            raise AssertionError(f"{ref_file}: {ref_eig.shape[0]} energies for {eig.shape[0]} orbitals")
        err = float(np.max(np.abs(eig - ref_eig)))
        summary["eig_err"] = max(summary["eig_err"], err)
        if err > eig_tol:
            raise AssertionError(f"{st.path}: eigenvalues of (H, S) differ from PySCF's by {err:.2e} eV > {eig_tol}")
        if "density_matrix" in mats:
            n_el = float(np.trace(mats["density_matrix"] @ mats["overlap"]))
            occ = st.info.get("occupation")
            if occ is not None and abs(n_el - occ) > 1e-6:
                raise AssertionError(f"{st.path}: trace(D S) = {n_el} but occupation = {occ}")
        logger.info("%s: %d orbitals, eigenvalues %.3f..%.3f eV, |eig - PySCF| = %.1e eV, Fermi %.4f eV",
                    name, eig.size, eig[0], eig[-1], err, st.fermi_energy_eV or float("nan"))
        euler_file = st.path / EULER_FILE
        if ref is None or name == "0" or not euler_file.is_file():
            continue
        q = euler_zyz_to_matrix(*np.loadtxt(euler_file, ndmin=1)[:3])
        for block_name in BLOCK_NAMES:
            if not st.has_blocks(block_name):
                continue
            dev = rotation_deviation(ref, st, q, block_name)
            for (li, lj), v in dev.items():
                key = f"rot_{block_name}_{'spdf'[li]}{'spdf'[lj]}"
                summary[key] = max(summary.get(key, 0.0), v)
            worst = max(dev.values())
            logger.info("%s vs rotated 0, %s: max dev %s", name, block_name,
                        ", ".join(f"{'spdf'[li]}-{'spdf'[lj]} {v:.1e}" for (li, lj), v in dev.items()))
            if rotation_tol is not None and worst > rotation_tol:
                raise AssertionError(f"{st.path}/{block_name}.h5: deviates from the rotated copy 0 by "
                                     f"{worst:.2e} > {rotation_tol}")
    logger.info("validated %d structures: max |eig - PySCF| %.1e eV, max Hermiticity dev %.1e",
                len(structures), summary["eig_err"], summary["herm_err"])
    return summary


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
