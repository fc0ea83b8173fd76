"""CP2K's per-image matrices -> DeepH blocks (R, i, j): cell shifts, units, block radius.

CP2K numbers its images relative to the atoms *wrapped into the cell* (reduced coordinates
rounded as Fortran's ANINT, i.e. into [-0.5, 0.5]); the DeepH block (R, i, j) is
<phi_i(cell 0)| A |phi_j(cell R)> for the positions as written in POSCAR. With
n_i = ANINT(f_i) the wrap of atom i, CP2K's image R' of pair (i, j) is DeepH's
R = R' + n_i - n_j (checked against PySCF's analytic overlaps in the tests).
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

from deeph_tf.conventions import HARTREE_TO_EV
from deeph_tf.data import BlockSet

__all__ = ["wrap_shifts", "image_blocks", "within_radius", "pair_distances"]


def wrap_shifts(positions: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    """[n_atoms, 3] int: Fortran ANINT of the reduced coordinates (half away from zero)."""
    frac = np.asarray(positions, float) @ np.linalg.inv(np.asarray(lattice, float))
    return (np.sign(frac) * np.floor(np.abs(frac) + 0.5)).astype(np.int64)


def pair_distances(atom_pairs: np.ndarray, positions: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    """[n_pairs] |r_j + R.L - r_i| (A) of rows [R1, R2, R3, i, j]."""
    pairs = np.asarray(atom_pairs, dtype=np.int64)
    vec = positions[pairs[:, 4]] + pairs[:, :3] @ lattice - positions[pairs[:, 3]]
    return np.linalg.norm(vec, axis=1)


def image_blocks(cells: np.ndarray, matrices: Dict[str, np.ndarray], offsets: Sequence[int],
                 positions: np.ndarray, lattice: np.ndarray, radius: float = 0.0,
                 scale: Dict[str, float] = None) -> Tuple[Dict[str, BlockSet], float]:
    """Cut every image matrix into atom-pair blocks in DeepH's convention.

    Args:
        cells: [n_images, 3] CP2K image cells R'.
        matrices: name -> [n_images, n_orb, n_orb]; a block is kept where any matrix is non-zero
            (CP2K's neighbour-list sparsity) and, with ``radius`` > 0, the pair distance <= radius.
        offsets: [n_atoms + 1] orbital offsets.
        scale: name -> factor applied to the entries (e.g. Hartree -> eV for "hamiltonian").

    Returns:
        (name -> BlockSet with the same atom_pairs, ordered by R then i then j; the largest
        distance (A) of a kept pair).
    """
    off = np.asarray(offsets, dtype=np.int64)
    n_atoms = len(off) - 1
    shift = wrap_shifts(positions, lattice)
    names = list(matrices)
    scale = {name: 1.0 for name in names} | dict(scale or {})
    keys: List[Tuple[int, int, int, int, int]] = []
    cut: Dict[str, List[np.ndarray]] = {name: [] for name in names}
    for image, cell in enumerate(np.asarray(cells, dtype=np.int64)):
        for i in range(n_atoms):
            for j in range(n_atoms):
                rows, cols = slice(off[i], off[i + 1]), slice(off[j], off[j + 1])
                blocks = {name: matrices[name][image, rows, cols] for name in names}
                if not any(np.any(b != 0) for b in blocks.values()):
                    continue
                r = cell + shift[i] - shift[j]
                keys.append((int(r[0]), int(r[1]), int(r[2]), i, j))
                for name in names:
                    cut[name].append(np.array(blocks[name]) * scale[name])
    pairs = np.array(keys, dtype=np.int64).reshape(-1, 5)
    order = np.lexsort((pairs[:, 4], pairs[:, 3], pairs[:, 2], pairs[:, 1], pairs[:, 0]))
    out = {name: BlockSet(atom_pairs=pairs[order], blocks=[cut[name][k] for k in order]) for name in names}
    return within_radius(out, positions, lattice, radius)


def within_radius(blocksets: Dict[str, BlockSet], positions: np.ndarray, lattice: np.ndarray,
                  radius: float) -> Tuple[Dict[str, BlockSet], float]:
    """The blocks of pairs within ``radius`` (A; <= 0 keeps all) of :func:`image_blocks` output,
    in the same order, and the largest kept distance (A)."""
    first = next(iter(blocksets.values()))
    dist = pair_distances(first.atom_pairs, positions, lattice)
    keep = np.nonzero(dist <= radius)[0] if radius > 0 else np.arange(len(dist))
    out = {name: BlockSet(b.atom_pairs[keep], [b.blocks[k] for k in keep]) for name, b in blocksets.items()}
    return out, float(dist[keep].max()) if len(keep) else 0.0


def hamiltonian_scale() -> Dict[str, float]:
    """Entry factors for :func:`image_blocks`: the Kohn-Sham matrix Hartree -> eV."""
    return {"hamiltonian": HARTREE_TO_EV}
