"""Rotating orbital blocks of a structure, and checking rotated copies of real data.

When atoms move by r' = Q r (``deeph_tf.conventions``), every block transforms as
H'_ij(R) = U_i(Q) H_ij(R) U_j(Q)^T, with U_a the block-diagonal direct sum of the real
Wigner-D matrices D^l(Q) over atom a's shells. This is the physical statement the SO(3)
core must reproduce on DFT data, and the basis of rotation augmentation.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Dict, Sequence, Tuple

import numpy as np

from deeph_tf.data import keys
from deeph_tf.data.block_h5 import BlockSet
from deeph_tf.data.structure import StructureFolder
from deeph_tf.so3.wigner import wigner_D_numpy

logger = logging.getLogger(__name__)


def orbital_rotation_matrix(shells: Sequence[int], rotation: np.ndarray) -> np.ndarray:
    """U(Q) = direct sum of D^l(Q) over ``shells`` (one l per radial shell); [n_orb, n_orb] float64."""
    sizes = [2 * int(l) + 1 for l in shells]
    u = np.zeros((sum(sizes), sum(sizes)))
    start = 0
    for l, size in zip(shells, sizes):
        u[start : start + size, start : start + size] = wigner_D_numpy(int(l), rotation)
        start += size
    return u


def rotate_blocks(structure: StructureFolder, blocks: BlockSet, rotation: np.ndarray) -> BlockSet:
    """Blocks of ``structure`` after rotating its atoms by ``rotation`` ([3, 3], r' = Q r).

    Raises:
        ValueError: for complex (spinful) blocks, whose spin part would need SU(2) matrices.
    """
    if blocks.is_complex:
        raise ValueError(
            f"{structure.path}: rotating spinful (complex) blocks needs spin rotations as well; "
            "only spinless real blocks are supported"
        )
    per_species: Dict[str, np.ndarray] = {}
    for element in set(structure.species):
        per_species[element] = orbital_rotation_matrix(structure.elements_orbital_map[element], rotation)
    rotated = []
    for (_, _, _, i, j), block in zip(blocks.atom_pairs, blocks.blocks):
        u_i, u_j = per_species[structure.species[i]], per_species[structure.species[j]]
        rotated.append(u_i @ block @ u_j.T)
    return BlockSet(atom_pairs=blocks.atom_pairs.copy(), blocks=rotated)


@dataclass
class RotationComparison:
    """How well ``copy`` equals ``reference`` rotated by Q, over all matched blocks.

    Attributes:
        max_abs_error: max |B_copy - U B_ref U^T| (units of the blocks, eV for H).
        mean_abs_error: mean of the same over all entries.
        max_abs_by_shell_pair: worst error per (l_i, l_j) shell-pair type, e.g. (1, 2) for p-d.
        max_abs_entry: largest |B_copy| entry, for scale.
    """

    max_abs_error: float
    mean_abs_error: float
    max_abs_entry: float
    max_abs_by_shell_pair: Dict[Tuple[int, int], float] = field(default_factory=dict)


def compare_rotated_copy(
    reference: StructureFolder, copy: StructureFolder, rotation: np.ndarray, name: str = keys.HAMILTONIAN
) -> RotationComparison:
    """Compare ``copy``'s ``name`` blocks with ``reference``'s rotated by ``rotation``.

    Both structures must list the same atoms in the same order (DeepH-dock's rotated sets do).
    """
    if reference.species != copy.species:
        raise ValueError(
            f"{copy.path}: atoms {copy.species} differ from the reference {reference.path}: {reference.species}"
        )
    predicted = rotate_blocks(reference, reference.read_blocks(name), rotation)
    actual = copy.read_blocks(name)
    actual_index = actual.pair_index()
    total, count, worst, biggest = 0.0, 0, 0.0, 0.0
    by_pair: Dict[Tuple[int, int], float] = {}
    for key, block in zip(predicted.keys(), predicted.blocks):
        if key not in actual_index:
            raise ValueError(f"{copy.block_path(name)}: atom pair {list(key)} of the reference is missing")
        other = actual.blocks[actual_index[key]]
        diff = np.abs(other - block)
        total += float(diff.sum())
        count += diff.size
        worst = max(worst, float(diff.max()))
        biggest = max(biggest, float(np.abs(other).max()))
        i, j = key[3], key[4]
        for li, rows in zip(copy.orbital_shells(i), copy.orbital_slices(i)):
            for lj, cols in zip(copy.orbital_shells(j), copy.orbital_slices(j)):
                pair_type = (li, lj) if li <= lj else (lj, li)
                by_pair[pair_type] = max(by_pair.get(pair_type, 0.0), float(diff[rows, cols].max()))
    return RotationComparison(
        max_abs_error=worst,
        mean_abs_error=total / max(count, 1),
        max_abs_entry=biggest,
        max_abs_by_shell_pair=dict(sorted(by_pair.items())),
    )
