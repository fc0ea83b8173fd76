"""Supercells by tiling a cell's own blocks: exact band folding, large test systems.

An N1 x N2 x N3 supercell of a cell with ``n`` atoms has atom ``a + n * c`` for atom ``a`` of
the cell translated by ``t`` (lattice units of the cell), ``c = (t1 * N2 + t2) * N3 + t3``.
Block (R, i, j) of the cell becomes, for every t, block (R', i + n c(t), j + n c(t')) with
``t + R = N * R' + t'`` (``0 <= t' < N``, componentwise); each (t, R, i, j) gives a distinct
supercell pair, so no block is summed and Hermitian partners stay partners. The supercell's
H(K) at reduced K then holds exactly the cell's eigenvalues at k = (K + m) / N, m over the
N1 x N2 x N3 translations (band folding): e.g. its Gamma point holds the cell's k in
{0, 1/N, ...}. Lattice rows in Angstrom, positions Cartesian Angstrom.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Sequence, Tuple

import numpy as np

from deeph_tf.data.block_h5 import BlockSet
from deeph_tf.data.poscar import Poscar
from deeph_tf.data.structure import StructureFolder

__all__ = ["translations", "tile_blocks", "tile_structure"]


def _reps(reps: Sequence[int]) -> np.ndarray:
    out = np.asarray(reps, dtype=np.int64).reshape(-1)
    if out.shape != (3,) or np.any(out < 1):
        raise ValueError(f"reps must be 3 integers >= 1, got {list(reps)}")
    return out


def translations(reps: Sequence[int]) -> np.ndarray:
    """[N1 N2 N3, 3] int64 cell translations t in supercell-atom order (t3 fastest)."""
    n = _reps(reps)
    mesh = np.meshgrid(*(np.arange(int(k)) for k in n), indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=1)


def tile_blocks(blocks: BlockSet, lattice: np.ndarray, positions: np.ndarray,
                reps: Sequence[int]) -> Tuple[BlockSet, np.ndarray, np.ndarray]:
    """The supercell's blocks, lattice and positions (module docstring for the atom order).

    Args:
        blocks: the cell's blocks (any operator; spinful or not).
        lattice: [3, 3] cell lattice rows (Angstrom).
        positions: [n_atoms, 3] Cartesian positions (Angstrom).
        reps: (N1, N2, N3) repetitions along the lattice vectors.

    Returns:
        (blocks of the supercell, ordered by translation then cell pair; [3, 3] supercell
        lattice rows N_a a_a; [n_atoms N1 N2 N3, 3] positions).
    """
    n_rep = _reps(reps)
    lattice = np.asarray(lattice, dtype=np.float64).reshape(3, 3)
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    n_atoms = len(positions)
    t = translations(n_rep)  # [T, 3]
    pairs = blocks.atom_pairs  # [P, 5]
    shifted = t[:, None, :] + pairs[None, :, :3]  # [T, P, 3] = N R' + t'
    r_super = np.floor_divide(shifted, n_rep)
    t_end = shifted - r_super * n_rep
    cell = lambda v: (v[..., 0] * n_rep[1] + v[..., 1]) * n_rep[2] + v[..., 2]  # noqa: E731
    i_super = pairs[None, :, 3] + n_atoms * cell(t)[:, None]
    j_super = pairs[None, :, 4] + n_atoms * cell(t_end)
    new_pairs = np.concatenate([r_super, i_super[..., None], j_super[..., None]], axis=2).reshape(-1, 5)
    new_blocks = list(blocks.blocks) * len(t)  # the same arrays, shared (read-only use)
    super_lattice = lattice * n_rep[:, None]
    super_positions = (positions[None, :, :] + (t @ lattice)[:, None, :]).reshape(-1, 3)
    return BlockSet(new_pairs, new_blocks), super_lattice, super_positions


def tile_structure(structure: StructureFolder, blocks: Mapping[str, BlockSet],
                   reps: Sequence[int]) -> Tuple[Poscar, Dict[str, Any], Dict[str, BlockSet]]:
    """A supercell structure: (POSCAR, info.json dict, {name: tiled blocks}).

    info.json: atoms and orbitals multiplied, ``occupation`` scaled by N1 N2 N3 and
    ``fermi_energy_eV`` kept (the same crystal); write it with
    :func:`deeph_tf.data.structure.write_structure_folder`.
    """
    n_rep = _reps(reps)
    factor = int(np.prod(n_rep))
    poscar = structure.poscar
    tiled: Dict[str, BlockSet] = {}
    lattice = positions = None
    for name, bs in blocks.items():
        tiled[name], lattice, positions = tile_blocks(bs, poscar.lattice, poscar.positions, n_rep)
    if lattice is None:
        lattice = poscar.lattice * n_rep[:, None]
        positions = (poscar.positions[None] + (translations(n_rep) @ poscar.lattice)[:, None]).reshape(-1, 3)
    reps_text = "x".join(str(int(v)) for v in n_rep)
    new_poscar = Poscar(lattice, list(poscar.species) * factor, positions,
                        comment=f"{poscar.comment.strip()} tiled {reps_text}")
    info = dict(structure.info)
    info["atoms_quantity"] = int(info["atoms_quantity"]) * factor
    info["orbits_quantity"] = int(info["orbits_quantity"]) * factor
    if info.get("occupation") is not None:
        info["occupation"] = info["occupation"] * factor
    return new_poscar, info, tiled
