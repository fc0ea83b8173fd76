"""Orbital energies of molecules (every R = 0): predicted vs reference H on the same S.

Generalized eigenvalues of the dense (H, S). Occupied orbitals: info.json ``occupation``
(electrons, spin degeneracy included) / 2 for spinless data (/ 1 for spinful); without it,
the reference orbitals below ``fermi_energy_eV``; without both, an error. Compared: all
occupied orbitals + the LUMO by default (the project's "orbital-energy MAE (occupied +
LUMO)"). Energies in eV, errors in meV.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np

from deeph_tf.data.block_h5 import BlockSet
from deeph_tf.data.structure import StructureFolder
from deeph_tf.infer.electronic.bloch import bloch_operators, generalized_eigenvalues, is_molecule
from deeph_tf.infer.electronic.occupation import occupied_count
from deeph_tf.infer.metrics import EV_TO_MEV

logger = logging.getLogger(__name__)

__all__ = ["MolecularOrbitalErrors", "orbital_energies", "molecular_orbital_errors"]


@dataclass
class MolecularOrbitalErrors:
    """Orbital-energy errors of one molecule (energies eV, errors meV, pred - ref signed).

    Attributes:
        name: structure id.
        n_orbitals / n_occupied: orbital counts.
        orbital_indices: [w] 0-based indices of the compared orbitals (ascending energy).
        energies_ref_eV / energies_pred_eV: [w] the compared orbital energies.
        mae_meV / max_abs_meV: over the compared orbitals (raw, gauge-dependent).
        mean_shift_meV: mean(pred - ref); mae_shifted_meV: MAE after removing it.
        homo_*, lumo_*, gap_*: eV (None without a LUMO); *_error_meV signed.
    """

    name: str
    n_orbitals: int
    n_occupied: int
    orbital_indices: np.ndarray
    energies_ref_eV: np.ndarray
    energies_pred_eV: np.ndarray
    mae_meV: float
    max_abs_meV: float
    mean_shift_meV: float
    mae_shifted_meV: float
    homo_ref_eV: float
    homo_pred_eV: float
    homo_error_meV: float
    lumo_ref_eV: Optional[float] = None
    lumo_pred_eV: Optional[float] = None
    lumo_error_meV: Optional[float] = None
    gap_ref_eV: Optional[float] = None
    gap_pred_eV: Optional[float] = None
    gap_error_meV: Optional[float] = None

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict (arrays as lists)."""
        out: Dict[str, Any] = {"kind": "molecule"}
        for key, value in self.__dict__.items():
            out[key] = value.tolist() if isinstance(value, np.ndarray) else value
        return out


def orbital_energies(hamiltonian: BlockSet, overlap: BlockSet, structure: StructureFolder) -> np.ndarray:
    """Molecular orbital energies [n_orbitals] (eV, ascending) of the dense (H, S) (all R summed: Gamma)."""
    h, s = bloch_operators(hamiltonian, overlap, structure)
    return generalized_eigenvalues(h(), s(), f"structure {structure.name}")


def molecular_orbital_errors(
    prediction: BlockSet,
    reference: BlockSet,
    overlap: BlockSet,
    structure: StructureFolder,
    n_occupied_window: Optional[int] = None,
    n_virtual: int = 1,
    name: Optional[str] = None,
) -> MolecularOrbitalErrors:
    """Orbital energies of the predicted vs the reference Hamiltonian of a molecule.

    Args:
        prediction / reference: H blocks (eV); overlap: S blocks of the structure.
        structure: gives orbitals and occupation (see :func:`occupied_count`).
        n_occupied_window: compare the highest this many occupied orbitals (HOMO
            included); None: all occupied.
        n_virtual: compare this many unoccupied orbitals from the LUMO up (default 1).
        name: label; default the folder name.

    Raises:
        ValueError: no occupation information, or a non-positive-definite overlap.
    """
    name = structure.name if name is None else name
    if not is_molecule(reference):
        logger.warning("structure %s has periodic images; molecular orbitals use the Gamma-point sum", name)
    e_ref = orbital_energies(reference, overlap, structure)
    e_pred = orbital_energies(prediction, overlap, structure)
    n = len(e_ref)
    n_occ = occupied_count(structure, e_ref)
    if not 0 < n_occ <= n:
        raise ValueError(f"structure {name}: {n_occ} occupied orbitals but only {n} orbitals")
    first = 0 if n_occupied_window is None else max(0, n_occ - int(n_occupied_window))
    last = min(n, n_occ + max(0, int(n_virtual)))
    idx = np.arange(first, last)
    diff = e_pred[idx] - e_ref[idx]
    shift = float(diff.mean())
    homo_r, homo_p = float(e_ref[n_occ - 1]), float(e_pred[n_occ - 1])
    result = MolecularOrbitalErrors(
        name=name, n_orbitals=n, n_occupied=n_occ, orbital_indices=idx,
        energies_ref_eV=e_ref[idx], energies_pred_eV=e_pred[idx],
        mae_meV=EV_TO_MEV * float(np.abs(diff).mean()), max_abs_meV=EV_TO_MEV * float(np.abs(diff).max()),
        mean_shift_meV=EV_TO_MEV * shift, mae_shifted_meV=EV_TO_MEV * float(np.abs(diff - shift).mean()),
        homo_ref_eV=homo_r, homo_pred_eV=homo_p, homo_error_meV=EV_TO_MEV * (homo_p - homo_r))
    if n_occ < n:
        lumo_r, lumo_p = float(e_ref[n_occ]), float(e_pred[n_occ])
        result.lumo_ref_eV, result.lumo_pred_eV = lumo_r, lumo_p
        result.lumo_error_meV = EV_TO_MEV * (lumo_p - lumo_r)
        result.gap_ref_eV, result.gap_pred_eV = lumo_r - homo_r, lumo_p - homo_p
        result.gap_error_meV = EV_TO_MEV * ((lumo_p - homo_p) - (lumo_r - homo_r))
    logger.debug("structure %s: orbital-energy MAE %.4g meV over %d orbitals, gap error %s meV", name,
                 result.mae_meV, len(idx), result.gap_error_meV)
    return result
