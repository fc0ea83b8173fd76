"""Spin-orbit metrics of spinful Hamiltonians: SOC-induced level shifts and multiplet splittings.

For a spinful H = I_2 (x) A + i sum_k sigma_k (x) B_k (:mod:`deeph_tf.so3.spin_blocks`) two
spectra are taken at one k-point (default Gamma, all R summed: a molecule's levels; for crystals
:func:`high_symmetry_points` gives the corners of the K_PATH, where band splittings are read):

- the full levels e_n: generalized eigenvalues of (H, S (x) I_2), 2N of them (Kramers pairs);
- the scalar-relativistic levels e0_n: those of (A, S), N of them, each counted twice (spin).

**SOC shift** of level n: d_n = e_n - e0_n (both sorted ascending). It is the part of the level
that spin-orbit coupling moves; errors of the scalar part that move e_n and e0_n alike cancel.
Levels compared: every occupied level and the lowest unoccupied Kramers pair (2 levels), as
the orbital-energy metric of :mod:`~deeph_tf.infer.electronic.molecules` does (info.json
``occupation`` counts electrons; spinful: one electron per level). ``shift_mae_meV`` is the
MAE of d_n (predicted vs DFT) over those levels.

**Multiplet splittings**: DFT scalar levels within ``degeneracy_tol_eV`` of each other form a
multiplet (a p-like pi shell of a linear molecule: 2 orbitals x 2 spins = 4 levels); those of
at least 4 levels (an orbital degeneracy, which SOC can lift) among the compared levels give a
splitting, max - min of the full levels with the same indices (e.g. 2 Pi_3/2 - 2 Pi_1/2 of HBr's
Br 4p pi, about 0.3 eV). The same indices are used for the prediction. ``splitting_mae_meV``
is the MAE over multiplets; ``largest_splitting_*`` the largest of them (the heavy-atom p
manifold where there is one). Structures without orbital degeneracy have no multiplet (None).
At a time-reversal-invariant k (Gamma, X, L, M, ...) every level is a Kramers pair; elsewhere
Kramers pairs split (by SOC), so a "multiplet" there also holds the SOC spin splitting of one
band. Energies in eV, errors in meV.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from deeph_tf.data.block_h5 import BlockSet
from deeph_tf.data.structure import StructureFolder
from deeph_tf.infer.electronic.bloch import BlochSum, generalized_eigenvalues
from deeph_tf.infer.electronic.occupation import occupied_count
from deeph_tf.so3.spin_blocks import split_spinful

logger = logging.getLogger(__name__)

__all__ = ["DEGENERACY_TOLERANCE_EV", "SpinOrbitErrors", "SpinOrbitSpectrum", "scalar_part", "spin_orbit_levels",
           "spin_orbit_errors", "spin_orbit_errors_at", "high_symmetry_points"]

EV_TO_MEV = 1000.0
#: Scalar levels closer than this form one multiplet (eV).
DEGENERACY_TOLERANCE_EV = 1e-3


def scalar_part(blocks: BlockSet) -> BlockSet:
    """The spinless scalar parts A [n_i, n_j] (real) of spinful blocks [2n_i, 2n_j]."""
    return BlockSet(blocks.atom_pairs, [split_spinful(b)[0] for b in blocks.blocks])


def high_symmetry_points(segments) -> List[Tuple[str, np.ndarray]]:
    """(label, reduced k [3]) of every distinct corner of K_PATH ``segments`` (first-seen order).

    Corners whose labels are missing are named by their coordinates.
    """
    out: List[Tuple[str, np.ndarray]] = []
    for seg in segments:
        for label, k in ((seg.label_start, seg.k_start), (seg.label_end, seg.k_end)):
            k = np.asarray(k, dtype=np.float64)
            if any(np.allclose(k, other, atol=1e-8) for _, other in out):
                continue
            out.append((label or "(" + ",".join(f"{v:g}" for v in k) + ")", k))
    return out


class SpinOrbitSpectrum:
    """Bloch sums of one spinful H, of its scalar part A and of S, built once; levels at any k.

    ``overlap_of`` reuses the overlap sums of another spectrum of the same structure (the
    prediction's and the reference's share S).
    """

    def __init__(self, hamiltonian: BlockSet, overlap: BlockSet, structure: StructureFolder,
                 overlap_of: Optional["SpinOrbitSpectrum"] = None) -> None:
        offsets = structure.atom_orbital_offsets(spinful=True)
        spinless = structure.atom_orbital_offsets(spinful=False)
        self.name = structure.name
        self._h = BlochSum(hamiltonian, offsets)
        self._a = BlochSum(scalar_part(hamiltonian), spinless)
        if overlap_of is not None:
            self._s2, self._s = overlap_of._s2, overlap_of._s
        else:
            s_spinful = BlockSet(overlap.atom_pairs, [np.kron(np.eye(2), b) for b in overlap.blocks])
            self._s2, self._s = BlochSum(s_spinful, offsets), BlochSum(overlap, spinless)

    def levels(self, k_frac: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
        """(full levels [2N], scalar levels [2N], each scalar level twice) at reduced ``k_frac`` [3]
        (default Gamma), eV, ascending."""
        context = f"structure {self.name}" + ("" if k_frac is None else f" at k = {np.asarray(k_frac).tolist()}")
        full = generalized_eigenvalues(self._h(k_frac), self._s2(k_frac), context)
        scalar = generalized_eigenvalues(self._a(k_frac), self._s(k_frac), context + " (scalar part)")
        return full, np.repeat(scalar, 2)


def spin_orbit_levels(hamiltonian: BlockSet, overlap: BlockSet, structure: StructureFolder,
                      k_frac: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """(full levels [2N], scalar levels [2N], each scalar level twice) at reduced ``k_frac`` [3]
    (default Gamma), eV, ascending (:class:`SpinOrbitSpectrum`)."""
    return SpinOrbitSpectrum(hamiltonian, overlap, structure).levels(k_frac)


def _multiplets(levels: np.ndarray, tolerance: float, minimum: int = 4) -> List[np.ndarray]:
    """Index groups of sorted ``levels`` whose neighbours are within ``tolerance`` (at least ``minimum``)."""
    groups, start = [], 0
    for n in range(1, len(levels) + 1):
        if n == len(levels) or levels[n] - levels[n - 1] > tolerance:
            if n - start >= minimum:
                groups.append(np.arange(start, n))
            start = n
    return groups


@dataclass
class SpinOrbitErrors:
    """Spin-orbit errors of one structure (energies eV, errors meV; see the module docstring).

    Attributes:
        name: structure id (``<sid>@<label>`` at a k-point other than the default Gamma).
        k_label / k_frac: the k-point ("Gamma", [0, 0, 0] by default).
        level_indices: [w] compared levels (0-based, ascending energy, spin included).
        shifts_ref_eV / shifts_pred_eV: [w] SOC shifts e_n - e0_n.
        shift_mae_meV / shift_max_abs_meV: over the compared levels.
        splittings_ref_eV / splittings_pred_eV: one per multiplet (may be empty).
        multiplet_levels: the level indices of each multiplet.
        splitting_mae_meV: MAE over the multiplets (None without one).
        largest_splitting_ref_eV / largest_splitting_pred_eV: of the multiplet with the largest
            DFT splitting (None without one).
    """

    name: str
    level_indices: np.ndarray
    shifts_ref_eV: np.ndarray
    shifts_pred_eV: np.ndarray
    shift_mae_meV: float
    shift_max_abs_meV: float
    splittings_ref_eV: List[float] = field(default_factory=list)
    splittings_pred_eV: List[float] = field(default_factory=list)
    multiplet_levels: List[List[int]] = field(default_factory=list)
    splitting_mae_meV: Optional[float] = None
    largest_splitting_ref_eV: Optional[float] = None
    largest_splitting_pred_eV: Optional[float] = None
    k_label: str = "Gamma"
    k_frac: List[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])

    def to_dict(self) -> Dict[str, Any]:
        return {key: (value.tolist() if isinstance(value, np.ndarray) else value) for key, value in self.__dict__.items()}


def spin_orbit_errors(prediction: BlockSet, reference: BlockSet, overlap: BlockSet, structure: StructureFolder,
                      name: Optional[str] = None, n_virtual: int = 2,
                      degeneracy_tol_eV: float = DEGENERACY_TOLERANCE_EV, k_frac: Optional[np.ndarray] = None,
                      k_label: str = "Gamma") -> SpinOrbitErrors:
    """SOC shifts and multiplet splittings of the predicted vs the DFT spinful H of one structure
    at one k-point (:func:`spin_orbit_errors_at`; the record is named ``name``).

    Args:
        prediction / reference: spinful H blocks (complex [2n_i, 2n_j], eV); overlap: spinless S.
        structure: a spinful structure (occupation or Fermi energy gives the occupied levels).
        n_virtual: unoccupied levels compared from the LUMO up (2: the lowest Kramers pair).
        degeneracy_tol_eV: scalar levels this close form a multiplet.
        k_frac / k_label: the k-point (reduced, default Gamma) and its name.

    Raises:
        ValueError: the structure is not spinful, lacks occupation information, or S is singular.
    """
    name = structure.name if name is None else name
    result = spin_orbit_errors_at(prediction, reference, overlap, structure, [(k_label, k_frac)], name=name,
                                  n_virtual=n_virtual, degeneracy_tol_eV=degeneracy_tol_eV)[0]
    result.name = name
    return result


def spin_orbit_errors_at(prediction: BlockSet, reference: BlockSet, overlap: BlockSet, structure: StructureFolder,
                         points: Sequence[Tuple[str, Optional[np.ndarray]]], name: Optional[str] = None,
                         n_virtual: int = 2, degeneracy_tol_eV: float = DEGENERACY_TOLERANCE_EV
                         ) -> List[SpinOrbitErrors]:
    """:func:`spin_orbit_errors` at each (label, reduced k or None for Gamma) of ``points``, the Bloch
    sums built once; records named ``name`` at a None point, ``<name>@<label>`` elsewhere.

    Raises:
        ValueError: as :func:`spin_orbit_errors`.
    """
    name = structure.name if name is None else name
    if not structure.spinful:
        raise ValueError(f"structure {name}: spin-orbit metrics need spinful data (info.json spinful true)")
    ref_spectrum = SpinOrbitSpectrum(reference, overlap, structure)
    pred_spectrum = SpinOrbitSpectrum(prediction, overlap, structure, overlap_of=ref_spectrum)
    out = []
    for k_label, k_frac in points:
        record = name if k_frac is None else f"{name}@{k_label}"
        out.append(_errors_at(record, ref_spectrum.levels(k_frac), pred_spectrum.levels(k_frac), structure,
                              n_virtual, degeneracy_tol_eV, k_frac, k_label))
    return out


def _errors_at(name: str, ref_levels: Tuple[np.ndarray, np.ndarray], pred_levels: Tuple[np.ndarray, np.ndarray],
               structure: StructureFolder, n_virtual: int, degeneracy_tol_eV: float, k_frac: Optional[np.ndarray],
               k_label: str) -> SpinOrbitErrors:
    """The record of one k-point from the (full, scalar) levels of the reference and the prediction."""
    (full_ref, scalar_ref), (full_pred, scalar_pred) = ref_levels, pred_levels
    n_occ = occupied_count(structure, full_ref)
    if not 0 < n_occ <= len(full_ref):
        raise ValueError(f"structure {name}: {n_occ} occupied levels but {len(full_ref)} levels")
    idx = np.arange(0, min(len(full_ref), n_occ + max(0, int(n_virtual))))
    shift_ref, shift_pred = (full_ref - scalar_ref)[idx], (full_pred - scalar_pred)[idx]
    error = np.abs(shift_pred - shift_ref)
    result = SpinOrbitErrors(name=name, level_indices=idx, shifts_ref_eV=shift_ref, shifts_pred_eV=shift_pred,
                             shift_mae_meV=EV_TO_MEV * float(error.mean()),
                             shift_max_abs_meV=EV_TO_MEV * float(error.max()), k_label=k_label,
                             k_frac=[0.0, 0.0, 0.0] if k_frac is None else [float(v) for v in k_frac])
    for group in _multiplets(scalar_ref[idx], degeneracy_tol_eV):
        levels = idx[group]
        result.multiplet_levels.append(levels.tolist())
        result.splittings_ref_eV.append(float(full_ref[levels].max() - full_ref[levels].min()))
        result.splittings_pred_eV.append(float(full_pred[levels].max() - full_pred[levels].min()))
    if result.multiplet_levels:
        ref, pred = np.asarray(result.splittings_ref_eV), np.asarray(result.splittings_pred_eV)
        result.splitting_mae_meV = EV_TO_MEV * float(np.abs(pred - ref).mean())
        largest = int(np.argmax(ref))
        result.largest_splitting_ref_eV, result.largest_splitting_pred_eV = float(ref[largest]), float(pred[largest])
    logger.debug("structure %s: SOC shift MAE %.4g meV over %d levels, %d multiplet(s)", name, result.shift_mae_meV,
                 len(idx), len(result.multiplet_levels))
    return result
