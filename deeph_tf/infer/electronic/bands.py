"""Band energies of periodic structures, their errors near the Fermi energy, and the dispatch
between molecules and crystals (:func:`physics_errors`).

:func:`band_structure`: bands on one set of k (a Gamma-centred grid or a k-path, e.g. the
folder's ``K_PATH``); :func:`crystal_bands`: both, as dtest reports them. Compared: every
(k, band) whose *reference* energy lies within ``window_eV`` (default 2 eV) of the Fermi
energy (info.json; else mid-gap from ``occupation``), matched by band index at the same k.
The raw MAE is gauge-dependent (H + mu S shifts every band by mu); ``mae_shifted_meV``
removes the mean shift pred - ref over the compared entries and is reported next to it,
clearly labelled. On a grid the Fermi level of the predicted and of the reference bands is
also found from the electron count (:func:`fermi_level_from_occupation`), never copied from
info.json. Energies in eV, errors in meV.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from deeph_tf.data.block_h5 import BlockSet
from deeph_tf.data.structure import StructureFolder
from deeph_tf.infer.electronic.bloch import band_energies, bloch_operators, is_molecule
from deeph_tf.infer.electronic.kpoints import (K_PATH_FILENAME, KPathSegment, default_k_grid, k_grid_points,
                                               k_path_points, read_k_path)
from deeph_tf.infer.electronic.molecules import MolecularOrbitalErrors, molecular_orbital_errors
from deeph_tf.infer.electronic.occupation import fermi_level_from_occupation, occupied_count
from deeph_tf.infer.metrics import EV_TO_MEV

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_BAND_WINDOW_EV", "BandErrors", "CrystalBands", "band_structure", "crystal_bands",
           "physics_errors"]

PathLike = Union[str, "os.PathLike[str]"]
#: Default half-width (eV) of the band window around the Fermi energy.
DEFAULT_BAND_WINDOW_EV = 2.0


@dataclass
class BandErrors:
    """Bands of one periodic structure, reference vs prediction (energies eV, errors meV).

    Attributes:
        name: structure id.
        k_source: "K_PATH <file>", "k-path" or "grid AxBxC".
        k_frac: [n_k, 3] reduced k-points.
        distance: [n_k] path coordinate (1/Angstrom) for a path, else None.
        tick_distance / tick_labels: high-symmetry points of a path (empty for grids).
        energies_ref_eV / energies_pred_eV: [n_k, n_bands]; pred None if not given.
        fermi_energy_eV / fermi_source: the window centre and where it came from.
        window_eV: half-width of the compared window around the Fermi energy.
        n_compared: compared (k, band) entries (reference energy inside the window).
        mae_meV / max_abs_meV: raw errors over them (gauge-dependent).
        mean_shift_meV: mean(pred - ref); mae_shifted_meV: MAE after removing it.
        n_occupied: occupied bands (None if unknown); gap_*: CBM - VBM over these k (eV;
            negative when bands overlap, i.e. a metal).
        fermi_pred_eV / fermi_ref_occupation_eV: grids only (else None): the Fermi level of
            the predicted / reference bands from ``n_occupied``; fermi_error_meV: pred - ref.
    """

    name: str
    k_source: str
    k_frac: np.ndarray
    distance: Optional[np.ndarray]
    tick_distance: List[float]
    tick_labels: List[str]
    energies_ref_eV: np.ndarray
    energies_pred_eV: Optional[np.ndarray]
    fermi_energy_eV: float
    fermi_source: str
    window_eV: float
    n_compared: int = 0
    mae_meV: Optional[float] = None
    max_abs_meV: Optional[float] = None
    mean_shift_meV: Optional[float] = None
    mae_shifted_meV: Optional[float] = None
    n_occupied: Optional[int] = None
    gap_ref_eV: Optional[float] = None
    gap_pred_eV: Optional[float] = None
    gap_error_meV: Optional[float] = None
    fermi_pred_eV: Optional[float] = None
    fermi_ref_occupation_eV: Optional[float] = None
    fermi_error_meV: Optional[float] = None

    def to_dict(self, arrays: bool = False) -> Dict[str, Any]:
        """JSON-ready dict; the k-points and energies only with ``arrays``."""
        big = {"k_frac", "distance", "energies_ref_eV", "energies_pred_eV"}
        out: Dict[str, Any] = {"kind": "bands", "n_k": int(len(self.k_frac))}
        for key, value in self.__dict__.items():
            if key in big and not arrays:
                continue
            out[key] = value.tolist() if isinstance(value, np.ndarray) else value
        return out


def _gap(energies: np.ndarray, n_occ: int) -> Optional[float]:
    if not 0 < n_occ < energies.shape[1]:
        return None
    return float(energies[:, n_occ].min() - energies[:, n_occ - 1].max())


def band_structure(
    prediction: Optional[BlockSet],
    reference: BlockSet,
    overlap: BlockSet,
    structure: StructureFolder,
    k_path: Union[None, PathLike, Sequence[KPathSegment]] = None,
    k_grid: Optional[Sequence[int]] = None,
    use_k_path_file: bool = True,
    window_eV: float = DEFAULT_BAND_WINDOW_EV,
    name: Optional[str] = None,
) -> BandErrors:
    """Reference (and predicted) bands and their errors near the Fermi energy.

    k-points, first that applies: ``k_path`` (file or segments); ``k_grid``; the
    folder's ``K_PATH`` file if ``use_k_path_file``; the :func:`default_k_grid`
    (Gamma-centred, 4 per periodic direction, 1 along directions without R != 0). On a grid
    (not a path) with a known occupation, also the Fermi levels from the electron count.
    ``window_eV``: half-width (eV) of the compared window around the Fermi energy.

    Raises:
        ValueError: no Fermi energy and no occupation, or a singular overlap.
    """
    name = structure.name if name is None else name
    lattice = structure.poscar.lattice
    distance, ticks, labels = None, [], []
    if k_path is None and k_grid is None and use_k_path_file and (structure.path / K_PATH_FILENAME).is_file():
        k_path = structure.path / K_PATH_FILENAME
    if k_path is not None:
        if isinstance(k_path, (str, os.PathLike)):
            source = f"K_PATH {k_path}"
            segments = read_k_path(k_path)
        else:
            source, segments = "k-path", list(k_path)
        pts = k_path_points(segments, lattice)
        k_frac, distance, ticks, labels = pts.k_frac, pts.distance, pts.tick_distance, pts.tick_labels
    else:
        grid = tuple(k_grid) if k_grid is not None else default_k_grid(reference)
        source = "grid " + "x".join(str(int(g)) for g in grid)
        k_frac = k_grid_points(grid)
    h_ref, s = bloch_operators(reference, overlap, structure)
    e_ref = band_energies(h_ref, s, k_frac, f"structure {name} (reference)")
    e_pred = None
    if prediction is not None:
        h_pred, _ = bloch_operators(prediction, overlap, structure)
        e_pred = band_energies(h_pred, s, k_frac, f"structure {name} (prediction)")

    try:
        n_occ: Optional[int] = occupied_count(structure, e_ref)
    except ValueError:
        n_occ = None
    fermi = structure.fermi_energy_eV
    fermi_source = "info.json"
    if fermi is None:
        if n_occ is None or not 0 < n_occ < e_ref.shape[1]:
            raise ValueError(f"structure {name}: info.json has neither fermi_energy_eV nor occupation; "
                             f"cannot place the band window")
        fermi = 0.5 * (float(e_ref[:, n_occ - 1].max()) + float(e_ref[:, n_occ].min()))
        fermi_source = "mid-gap from occupation"
    result = BandErrors(name=name, k_source=source, k_frac=k_frac, distance=distance, tick_distance=ticks,
                        tick_labels=labels, energies_ref_eV=e_ref, energies_pred_eV=e_pred,
                        fermi_energy_eV=float(fermi), fermi_source=fermi_source, window_eV=float(window_eV),
                        n_occupied=n_occ)
    is_grid = k_path is None
    if n_occ is not None:
        result.gap_ref_eV = _gap(e_ref, n_occ)
        if is_grid and 0 < n_occ < e_ref.shape[1]:
            result.fermi_ref_occupation_eV = fermi_level_from_occupation(e_ref, n_occ)
    if e_pred is not None:
        sel = np.abs(e_ref - fermi) <= window_eV
        result.n_compared = int(sel.sum())
        if result.n_compared:
            diff = (e_pred - e_ref)[sel]
            shift = float(diff.mean())
            result.mae_meV = EV_TO_MEV * float(np.abs(diff).mean())
            result.max_abs_meV = EV_TO_MEV * float(np.abs(diff).max())
            result.mean_shift_meV = EV_TO_MEV * shift
            result.mae_shifted_meV = EV_TO_MEV * float(np.abs(diff - shift).mean())
        else:
            logger.warning("structure %s: no reference band within %.3g eV of the Fermi energy %.4g eV",
                           name, window_eV, fermi)
        if n_occ is not None:
            result.gap_pred_eV = _gap(e_pred, n_occ)
            if result.gap_ref_eV is not None and result.gap_pred_eV is not None:
                result.gap_error_meV = EV_TO_MEV * (result.gap_pred_eV - result.gap_ref_eV)
            if result.fermi_ref_occupation_eV is not None:
                result.fermi_pred_eV = fermi_level_from_occupation(e_pred, n_occ)
                result.fermi_error_meV = EV_TO_MEV * (result.fermi_pred_eV - result.fermi_ref_occupation_eV)
    logger.debug("structure %s: bands on %s (%d k), %d compared, MAE %s meV", name, source, len(k_frac),
                 result.n_compared, result.mae_meV)
    return result


@dataclass
class CrystalBands:
    """One crystal's bands on its k-path (None without one) and on a k-grid (see :class:`BandErrors`)."""

    name: str
    path: Optional[BandErrors]
    grid: BandErrors

    @property
    def main(self) -> BandErrors:
        """The headline result: the path where there is one, else the grid."""
        return self.path if self.path is not None else self.grid

    def to_dict(self, arrays: bool = False) -> Dict[str, Any]:
        """``kind``, ``name``, the grid's Fermi levels (eV; error meV), ``k_path`` (None) and ``k_grid``."""
        g = self.grid
        return {"kind": "bands", "name": self.name, "fermi_energy_eV": g.fermi_energy_eV,
                "fermi_source": g.fermi_source, "window_eV": g.window_eV, "n_occupied": g.n_occupied,
                "fermi_pred_eV": g.fermi_pred_eV, "fermi_ref_occupation_eV": g.fermi_ref_occupation_eV,
                "fermi_error_meV": g.fermi_error_meV,
                "k_path": None if self.path is None else self.path.to_dict(arrays),
                "k_grid": g.to_dict(arrays)}


def crystal_bands(
    prediction: Optional[BlockSet],
    reference: BlockSet,
    overlap: BlockSet,
    structure: StructureFolder,
    k_path: Union[None, PathLike, Sequence[KPathSegment]] = None,
    k_grid: Optional[Sequence[int]] = None,
    window_eV: float = DEFAULT_BAND_WINDOW_EV,
    name: Optional[str] = None,
) -> CrystalBands:
    """:func:`band_structure` on a k-path and on a k-grid.

    Path: ``k_path`` (file or segments), else the folder's ``K_PATH`` file, else none.
    Grid: ``k_grid`` (3 ints), default :func:`default_k_grid`; Gamma-centred.
    """
    name = structure.name if name is None else name
    if k_path is None and (structure.path / K_PATH_FILENAME).is_file():
        k_path = structure.path / K_PATH_FILENAME
    path = None
    if k_path is not None:
        path = band_structure(prediction, reference, overlap, structure, k_path=k_path, window_eV=window_eV, name=name)
    grid = tuple(k_grid) if k_grid is not None else default_k_grid(reference)
    return CrystalBands(name, path, band_structure(prediction, reference, overlap, structure, k_grid=grid,
                                                   window_eV=window_eV, name=name))


def physics_errors(
    prediction: BlockSet,
    reference: BlockSet,
    overlap: BlockSet,
    structure: StructureFolder,
    **kwargs: Any,
) -> Union[MolecularOrbitalErrors, BandErrors]:
    """:func:`molecular_orbital_errors` if every R = 0, else :func:`band_structure` (kwargs passed on)."""
    if is_molecule(reference):
        return molecular_orbital_errors(prediction, reference, overlap, structure, **kwargs)
    return band_structure(prediction, reference, overlap, structure, **kwargs)
