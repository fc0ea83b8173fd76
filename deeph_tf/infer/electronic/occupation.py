"""Occupation: how many orbitals (bands) are occupied (info.json ``occupation``, else the Fermi
energy) and the Fermi level that this electron count gives on a k-grid."""
from __future__ import annotations

import logging
import math
from typing import Optional

import numpy as np

from deeph_tf.data.structure import StructureFolder

logger = logging.getLogger(__name__)

__all__ = ["fermi_level_from_occupation", "occupied_count"]


def occupied_count(structure: StructureFolder, reference_energies: Optional[np.ndarray] = None) -> int:
    """Number of occupied orbitals (bands) of one spin channel (spinful: of all).

    From info.json ``occupation`` / spin degeneracy (2 spinless, 1 spinful); a
    fractional result (odd electron count) is rounded up, with a warning. Without
    ``occupation``: the count of ``reference_energies`` (any shape ending in bands; all
    k must agree) below ``fermi_energy_eV``.

    Raises:
        ValueError: neither key is usable, or the count below E_F varies with k (metal).
    """
    degeneracy = 1 if structure.spinful else 2
    occupation = structure.info.get("occupation")
    if occupation is not None:
        n = float(occupation) / degeneracy
        if abs(n - round(n)) > 1e-6:
            logger.warning("structure %s: occupation %s is not a multiple of %d; counting %d occupied orbitals "
                           "(the highest singly occupied)", structure.name, occupation, degeneracy, math.ceil(n))
            return int(math.ceil(n - 1e-6))
        return int(round(n))
    fermi = structure.fermi_energy_eV
    if fermi is None or reference_energies is None:
        raise ValueError(f"structure {structure.name}: info.json has no 'occupation' "
                         f"{'and fermi_energy_eV is null' if fermi is None else 'and no reference energies given'}; "
                         f"cannot tell which orbitals are occupied (add 'occupation', the electron count)")
    e = np.asarray(reference_energies).reshape(-1, np.shape(reference_energies)[-1])
    counts = np.unique((e < fermi).sum(axis=1))
    if len(counts) != 1:
        raise ValueError(f"structure {structure.name}: without 'occupation' the count below the Fermi energy "
                         f"({fermi} eV) varies with k ({counts.min()}..{counts.max()}): a metal has no "
                         f"fixed number of occupied bands")
    return int(counts[0])


def fermi_level_from_occupation(energies: np.ndarray, n_occupied: int) -> float:
    """Fermi level (eV) that holds ``n_occupied`` bands per k on a uniform grid (equal k weights).

    All ``energies`` [n_k, n_bands] (eV) are sorted; with m = n_occupied * n_k the result is the
    midpoint between the m-th and the (m+1)-th: mid-gap over the grid for an insulator, the
    filling level for a metal (bands crossing it are partly filled). Spinless bands count once
    per spin channel, so ``n_occupied`` is :func:`occupied_count`.

    Raises:
        ValueError: ``n_occupied`` is not in 1 .. n_bands - 1.
    """
    e = np.asarray(energies, dtype=np.float64)
    if e.ndim != 2:
        raise ValueError(f"energies must be [n_k, n_bands], got shape {e.shape}")
    if not 0 < n_occupied < e.shape[1]:
        raise ValueError(f"{n_occupied} occupied bands of {e.shape[1]}: no Fermi level between them")
    m = int(n_occupied) * e.shape[0]
    top = np.partition(e.ravel(), (m - 1, m))
    return 0.5 * float(top[m - 1] + top[m])
