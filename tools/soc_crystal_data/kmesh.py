"""Bloch matrices on a k-mesh -> real-space DeepH blocks H(R), S(R) (minimum image, block radius).

PySCF's periodic matrices are Bloch sums A(k)_uv = sum_T e^{i k.T} <u(0)|A|v(T)> over the atoms at
the positions *as given* (no wrapping), which is DeepH's convention with the POSCAR positions
(``deeph_tf.infer.electronic.bloch``: A(k) = sum_R e^{2 pi i k_frac.R} A(R)). On the
unshifted M1 x M2 x M3 mesh k_frac = n / M the inverse is exact up to aliasing::

    sum_L A(R + M L) = (1 / N_k) sum_k e^{-2 pi i k_frac.R} A(k)

so each class {R + M L} of an atom pair (i, j) is assigned to its *minimum image* (the R with the
shortest |r_j + R.a - r_i|), which holds the class's sum to the extent that A decays within half
the M-supercell. Only pairs within ``radius`` are kept; ``radius`` must be below half the shortest
translation of the M-supercell, so every kept minimum image is unique (checked). The aliasing left
(blocks at |d + M L| >= M |a|_min - radius) is measured by the generator: the bands of the written
blocks against PySCF's own at k-points off the mesh.
"""
from __future__ import annotations

import itertools
from typing import Dict, Sequence, Tuple

import numpy as np

from deeph_tf.data import BlockSet

__all__ = ["mesh_k_frac", "mesh_index", "supercell_half_period", "minimum_image_blocks"]


def mesh_k_frac(mesh: Sequence[int]) -> np.ndarray:
    """[prod(mesh), 3] reduced k of the unshifted mesh (Gamma first), k_frac = n / M, n = 0..M-1."""
    grids = [np.arange(int(m)) / int(m) for m in mesh]
    return np.array(list(itertools.product(*grids)), dtype=np.float64)


def mesh_index(k_mesh: np.ndarray, k_frac: np.ndarray, tol: float = 1e-8) -> int:
    """Row of ``k_mesh`` [N, 3] equal to reduced ``k_frac`` [3] modulo reciprocal lattice vectors.

    Raises:
        ValueError: if ``k_frac`` is not on the mesh.
    """
    d = np.abs(np.mod(np.asarray(k_mesh) - np.asarray(k_frac) + 0.5, 1.0) - 0.5).max(axis=1)
    m = int(np.argmin(d))
    if d[m] > tol:
        raise ValueError(f"k-point {np.asarray(k_frac).tolist()} is not on the {len(k_mesh)}-point mesh")
    return m


def supercell_half_period(lattice: np.ndarray, mesh: Sequence[int]) -> float:
    """Half the shortest non-zero translation (A) of the M-supercell of ``lattice`` [3, 3] (rows a_i)."""
    sup = np.asarray(lattice, float) * np.asarray(mesh, float)[:, None]
    best = np.inf
    for n in itertools.product(range(-2, 3), repeat=3):
        if any(n):
            best = min(best, float(np.linalg.norm(np.asarray(n, float) @ sup)))
    return best / 2


def minimum_image_blocks(matrices_k: Dict[str, np.ndarray], k_frac: np.ndarray, mesh: Sequence[int],
                         offsets: Dict[str, np.ndarray], positions: np.ndarray, lattice: np.ndarray,
                         radius: float, real: Sequence[str] = ()) -> Tuple[Dict[str, BlockSet], Dict[str, float]]:
    """Real-space blocks of Bloch matrices sampled on the full unshifted ``mesh``.

    Args:
        matrices_k: name -> [N_k, n, n] A(k) (any dtype), rows in DeepH atom order.
        k_frac: [N_k, 3] reduced k of the rows of every matrix: exactly the points of
            :func:`mesh_k_frac` (``mesh``), in any order.
        mesh: (M1, M2, M3).
        offsets: name -> [n_atoms + 1] row offsets of each atom in that matrix (spinful: doubled).
        positions: [n_atoms, 3] A, as given to the DFT code; lattice: [3, 3] A, rows a_i.
        radius: keep pairs with |r_j + R.a - r_i| <= radius (A); must be < the half period.
        real: names whose real-space blocks are real (the overlap): their imaginary part, zero up
            to round-off, is dropped.

    Returns:
        (name -> BlockSet, the same atom_pairs for every name, ordered by R then i then j, every
        (R, i, j) with its (-R, j, i); {"max_distance", "half_period", "max_imag"}), ``max_imag``
        the largest imaginary part dropped from the ``real`` ones.

    Raises:
        ValueError: if ``k_frac`` is not the mesh or ``radius`` >= the half period.
    """
    mesh = tuple(int(m) for m in mesh)
    k_frac = np.asarray(k_frac, np.float64)
    want = mesh_k_frac(mesh)
    reduced = np.mod(np.round(k_frac * np.asarray(mesh), 8), np.asarray(mesh))
    if len(k_frac) != len(want) or len({tuple(r) for r in reduced}) != len(want) or \
            np.abs(reduced - np.round(reduced)).max() > 1e-6:
        raise ValueError(f"k-points are not the full unshifted {mesh} mesh ({len(k_frac)} points)")
    half = supercell_half_period(lattice, mesh)
    if radius >= half:
        raise ValueError(f"block radius {radius} A is not below half the {mesh} supercell's shortest period "
                         f"({half:.2f} A): minimum images would not be unique; use a denser band mesh")
    positions = np.asarray(positions, float)
    lattice = np.asarray(lattice, float)
    n_atoms = len(positions)
    classes = np.array(list(itertools.product(*[range(m) for m in mesh])), dtype=np.int64)  # [N_R, 3]
    shifts = np.array(list(itertools.product((-1, 0, 1), repeat=3)), dtype=np.int64) * np.asarray(mesh)
    keys, dist_of = [], []
    for i in range(n_atoms):
        for j in range(n_atoms):
            cand = classes[:, None, :] + shifts[None, :, :]                      # [N_R, 27, 3]
            d = np.linalg.norm(positions[j] + cand @ lattice - positions[i], axis=-1)
            best = cand[np.arange(len(classes)), np.argmin(d, axis=1)]
            dmin = d.min(axis=1)
            for r, dist in zip(best[dmin <= radius], dmin[dmin <= radius]):
                keys.append((int(r[0]), int(r[1]), int(r[2]), i, j))
                dist_of.append(float(dist))
    pairs = np.array(keys, dtype=np.int64).reshape(-1, 5)
    order = np.lexsort((pairs[:, 4], pairs[:, 3], pairs[:, 2], pairs[:, 1], pairs[:, 0]))
    pairs = pairs[order]
    # A(R) for every needed R at once: [N_R_used, n, n] per matrix
    r_used, r_index = np.unique(pairs[:, :3], axis=0, return_inverse=True)
    phase = np.exp(-2j * np.pi * (k_frac @ r_used.T)) / len(k_frac)             # [N_k, N_R_used]
    out: Dict[str, BlockSet] = {}
    max_imag = 0.0
    for name, a_k in matrices_k.items():
        a_k = np.asarray(a_k)
        a_r = np.einsum("kr,kuv->ruv", phase, a_k)
        if name in real:
            max_imag = max(max_imag, float(np.abs(a_r.imag).max()))
            a_r = a_r.real
        off = np.asarray(offsets[name], dtype=np.int64)
        blocks = [a_r[r, off[i]:off[i + 1], off[j]:off[j + 1]].copy()
                  for r, (i, j) in zip(np.asarray(r_index).reshape(-1), pairs[:, 3:])]
        out[name] = BlockSet(atom_pairs=pairs, blocks=blocks)
    stats = {"max_distance": float(max(dist_of)) if dist_of else 0.0, "half_period": half, "max_imag": max_imag}
    return out, stats
