"""Rotating orbital blocks of a structure, and checking rotated copies of real data.

When atoms move by r' = Q r (``deeph_tf.conventions``), every block transforms as
H'_ij(R) = U_i(Q) H_ij(R) U_j(Q)^T, with U_a the block-diagonal direct sum of the real
Wigner-D matrices D^l(Q) over atom a's shells. This is the physical statement the SO(3)
core must reproduce on DFT data, and the basis of rotation augmentation.

Spinful blocks (2 n_i x 2 n_j, spin outer; hamiltonian / density matrix of a ``spinful``
structure) transform with the spin rotation as well:
H'_ij = (D^{1/2}(Q) (x) U_i(Q)) H_ij (D^{1/2}(Q) (x) U_j(Q))^dagger (:mod:`deeph_tf.so3.su2`; for an
improper Q the spin factor is D^{1/2}(det(Q) Q), spin being axial). The spinless overlap of a
spinful structure rotates as any spinless block.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Dict, Sequence, Tuple

import numpy as np

from deeph_tf.data import keys
from deeph_tf.data.block_h5 import BlockSet
from deeph_tf.data.structure import StructureFolder
from deeph_tf.so3.su2 import orbital_rotation_matrix, spinful_rotation_matrix

logger = logging.getLogger(__name__)


def _is_spinful_blockset(structure: StructureFolder, blocks: BlockSet) -> bool:
    """Whether ``blocks`` have the doubled (spinful) shapes of ``structure``; error if they fit neither."""
    counts = structure.atom_orbital_counts()
    spinful = None
    for (_, _, _, i, j), block in zip(blocks.atom_pairs, blocks.blocks):
        if block.shape == (counts[i], counts[j]):
            this = False
        elif block.shape == (2 * counts[i], 2 * counts[j]):
            this = True
        else:
            raise ValueError(f"{structure.path}: block {[int(i), int(j)]} has shape {block.shape}, expected "
                             f"{(int(counts[i]), int(counts[j]))} or, spinful, twice that")
        if spinful is not None and this != spinful:
            raise ValueError(f"{structure.path}: blocks mix spinless and spinful shapes")
        spinful = this
    if spinful and not structure.spinful:
        raise ValueError(f"{structure.path}: blocks have spinful (doubled) shapes but info.json says spinful: false")
    return bool(spinful)


def rotate_blocks(structure: StructureFolder, blocks: BlockSet, rotation: np.ndarray) -> BlockSet:
    """Blocks of ``structure`` after rotating its atoms by ``rotation`` ([3, 3], r' = Q r).

    Spinless blocks (real or complex) rotate as U_i B U_j^T; spinful blocks (shapes 2 n_i x 2 n_j
    in a ``spinful`` structure) as (D^{1/2} (x) U_i) B (D^{1/2} (x) U_j)^dagger, giving complex128.

    Raises:
        ValueError: if the block shapes fit neither the spinless nor the spinful layout.
    """
    spinful = _is_spinful_blockset(structure, blocks)
    per_species: Dict[str, np.ndarray] = {}
    for element in set(structure.species):
        shells = structure.elements_orbital_map[element]
        per_species[element] = (spinful_rotation_matrix(shells, rotation) if spinful
                                else orbital_rotation_matrix(shells, rotation))
    rotated = []
    for (_, _, _, i, j), block in zip(blocks.atom_pairs, blocks.blocks):
        u_i, u_j = per_species[structure.species[i]], per_species[structure.species[j]]
        rotated.append(u_i @ block @ u_j.conj().T)
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
        n_i, n_j = int(copy.atom_orbital_counts()[i]), int(copy.atom_orbital_counts()[j])
        spins = (0, 1) if diff.shape == (2 * n_i, 2 * n_j) else (0,)  # spinful: the four spin quadrants
        for li, rows in zip(copy.orbital_shells(i), copy.orbital_slices(i)):
            for lj, cols in zip(copy.orbital_shells(j), copy.orbital_slices(j)):
                pair_type = (li, lj) if li <= lj else (lj, li)
                worst_here = max(float(diff[rows.start + si * n_i:rows.stop + si * n_i,
                                            cols.start + sj * n_j:cols.stop + sj * n_j].max())
                                 for si in spins for sj in spins)
                by_pair[pair_type] = max(by_pair.get(pair_type, 0.0), worst_here)
    return RotationComparison(
        max_abs_error=worst,
        mean_abs_error=total / max(count, 1),
        max_abs_entry=biggest,
        max_abs_by_shell_pair=dict(sorted(by_pair.items())),
    )
