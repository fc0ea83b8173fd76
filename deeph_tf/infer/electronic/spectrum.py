"""Electronic structure of one structure from its (H, S) alone: bands, Fermi level, gap, DOS.

No DFT reference is needed: H may be predicted. :func:`electronic_structure` gives

* eigenvalues on a Gamma-centred k-grid and along a k-path (the ``k_path`` given, else the
  folder's ``K_PATH``, else ASE's path for the lattice: :mod:`~deeph_tf.infer.electronic.auto_path`);
  molecules (every R = 0): the orbital energies at Gamma, no path;
* the Fermi level of info.json ``occupation`` on the grid (the definition of
  :func:`~deeph_tf.infer.electronic.occupation.fermi_level_from_occupation`; never info.json's
  ``fermi_energy_eV``), VBM / CBM (HOMO / LUMO) over grid and path and the gap CBM - VBM
  (negative for a metal);
* a Gaussian-broadened DOS on the grid (states / eV / cell, spin degeneracy included).

Solvers: ``dense`` (every band, LAPACK) or ``sparse`` (:mod:`~deeph_tf.infer.electronic.sparse`:
the ``n_bands`` eigenvalues nearest E_F per k, band indices from the inertia); ``auto`` is
sparse above ``sparse_above`` orbitals (matrix size). A sparse run's default grid is Gamma
alone when every periodic lattice vector is at least :data:`SUPERCELL_LENGTH` (a supercell:
its Gamma point folds >= 4 k per direction of a 5 Angstrom cell), else the dense default
(:func:`~deeph_tf.infer.electronic.kpoints.default_k_grid`); a given ``k_grid`` is used as is.
A sparse DOS covers only the energies inside every k's window (6 sigma from its edges).
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from deeph_tf.data.block_h5 import BlockSet
from deeph_tf.data.structure import StructureFolder
from deeph_tf.infer.electronic.auto_path import DEFAULT_PATH_POINTS, automatic_k_path, periodic_directions
from deeph_tf.infer.electronic.bloch import band_energies, bloch_operators, is_molecule
from deeph_tf.infer.electronic.kpoints import (K_PATH_FILENAME, KPathPoints, KPathSegment, default_k_grid,
                                               k_grid_points, k_path_points, read_k_path)
from deeph_tf.infer.electronic.occupation import fermi_level_from_occupation, occupied_count
from deeph_tf.infer.electronic.sparse import eigenvalues_near, fermi_level_sparse, sparse_bloch_operators

logger = logging.getLogger(__name__)

__all__ = ["SOLVERS", "DEFAULT_SPARSE_ABOVE", "DEFAULT_NUM_BANDS", "DEFAULT_SIGMA_EV", "SUPERCELL_LENGTH",
           "KSpectrum", "ElectronicStructure", "choose_solver", "sparse_default_k_grid", "resolve_k_path",
           "gaussian_dos", "electronic_structure"]

PathLike = Union[str, "os.PathLike[str]"]
SOLVERS = ("auto", "dense", "sparse")
#: ``auto`` solves sparse above this many orbitals (matrix size, spinful doubled).
DEFAULT_SPARSE_ABOVE = 3000
#: Eigenvalues per k of a sparse solve (nearest E_F).
DEFAULT_NUM_BANDS = 40
#: Gaussian broadening of the DOS (eV).
DEFAULT_SIGMA_EV = 0.05
#: Angstrom: a sparse run samples Gamma only if every periodic lattice vector is at least this long.
SUPERCELL_LENGTH = 20.0


@dataclass
class KSpectrum:
    """Eigenvalues on a set of k: ``k_frac`` [n_k, 3] reduced, ``energies`` [n_k, n_bands] eV
    ascending per k, ``first_band`` [n_k] the 0-based band index of column 0 (dense: 0)."""

    k_frac: np.ndarray
    energies: np.ndarray
    first_band: np.ndarray

    def band(self, index: int) -> np.ndarray:
        """[n_k] energies (eV) of band ``index`` (0-based, whole spectrum); NaN where not computed."""
        col = int(index) - self.first_band
        ok = (col >= 0) & (col < self.energies.shape[1])
        out = np.full(len(self.k_frac), np.nan)
        out[ok] = self.energies[np.nonzero(ok)[0], col[ok]]
        return out

    def aligned(self) -> Tuple[int, np.ndarray]:
        """(first band index, [n_k, width] energies by band index, NaN where not computed)."""
        first = int(self.first_band.min())
        width = int((self.first_band + self.energies.shape[1]).max()) - first
        out = np.full((len(self.k_frac), width), np.nan)
        for m, (start, row) in enumerate(zip(self.first_band, self.energies)):
            out[m, start - first:start - first + len(row)] = row
        return first, out


@dataclass
class ElectronicStructure:
    """What :func:`electronic_structure` found for one structure (energies eV).

    Attributes:
        name / kind ("crystal" or "molecule") / solver ("dense" or "sparse").
        n_orbitals: matrix size (spinful: 2 x orbitals); spin_degeneracy: 2 spinless, 1 spinful.
        n_occupied: occupied bands (orbitals) per k, from info.json ``occupation``.
        fermi_energy_eV: from the occupation on the grid; fermi_method: how.
        k_grid / grid: the Gamma-centred grid and its eigenvalues.
        path / path_points / k_path_source / k_path_segments: the k-path's eigenvalues, its
            sampling, origin and segments (None for molecules or without a path).
        vbm_eV / cbm_eV / gap_eV: over grid and path (molecules: HOMO, LUMO, gap); None if
            not computed; gap_grid_eV / gap_path_eV per k-set.
        dos_energy_eV / dos: [n_e] energies and DOS (states / eV / cell); sigma_eV: broadening.
        seconds: wall time of the steps ("fermi", "grid", "path", "total").
    """

    name: str
    kind: str
    solver: str
    n_orbitals: int
    spin_degeneracy: int
    n_occupied: int
    fermi_energy_eV: float
    fermi_method: str
    k_grid: Tuple[int, int, int]
    grid: KSpectrum
    path: Optional[KSpectrum] = None
    path_points: Optional[KPathPoints] = None
    k_path_source: Optional[str] = None
    k_path_segments: Optional[List[KPathSegment]] = None
    vbm_eV: Optional[float] = None
    cbm_eV: Optional[float] = None
    gap_eV: Optional[float] = None
    gap_grid_eV: Optional[float] = None
    gap_path_eV: Optional[float] = None
    dos_energy_eV: np.ndarray = field(default_factory=lambda: np.zeros(0))
    dos: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sigma_eV: float = DEFAULT_SIGMA_EV
    seconds: Dict[str, float] = field(default_factory=dict)

    def summary(self) -> Dict[str, Any]:
        """JSON-ready scalars (no arrays): the per-structure entry of dband's summary.json."""
        out: Dict[str, Any] = {key: getattr(self, key) for key in (
            "kind", "solver", "n_orbitals", "n_occupied", "fermi_energy_eV", "fermi_method", "vbm_eV", "cbm_eV",
            "gap_eV", "gap_grid_eV", "gap_path_eV", "sigma_eV")}
        out["k_grid"] = list(self.k_grid)
        out["k_path"] = self.k_path_source
        out["n_bands"] = int(self.grid.energies.shape[1])
        if self.kind == "molecule":
            out.update(homo_eV=self.vbm_eV, lumo_eV=self.cbm_eV)
        out["seconds"] = dict(self.seconds)
        return out


def choose_solver(solver: str, size: int, sparse_above: int = DEFAULT_SPARSE_ABOVE) -> str:
    """"dense" or "sparse": ``solver`` itself, or for "auto" sparse when ``size`` > ``sparse_above``."""
    if solver not in SOLVERS:
        raise ValueError(f"solver {solver!r}: expected one of {', '.join(SOLVERS)}")
    if solver != "auto":
        return solver
    return "sparse" if size > sparse_above else "dense"


def sparse_default_k_grid(blockset: BlockSet, lattice: np.ndarray,
                          supercell_length: float = SUPERCELL_LENGTH) -> Tuple[int, int, int]:
    """(1, 1, 1) if every periodic lattice vector is >= ``supercell_length`` Angstrom, else
    :func:`default_k_grid`."""
    periodic = periodic_directions(blockset)
    lengths = np.linalg.norm(np.asarray(lattice, dtype=np.float64), axis=1)
    if all(length >= supercell_length for length, p in zip(lengths, periodic) if p):
        return (1, 1, 1)
    return default_k_grid(blockset)


def resolve_k_path(structure: StructureFolder, hamiltonian: BlockSet,
                   k_path: Union[None, PathLike, Sequence[KPathSegment]] = None,
                   n_points: int = DEFAULT_PATH_POINTS) -> Optional[Tuple[str, List[KPathSegment]]]:
    """(source, segments) of the path: ``k_path`` (file or segments), the folder's ``K_PATH``, or
    ASE's path ("automatic (ASE)"); None for a molecule. ImportError without ASE (see auto_path)."""
    if k_path is None and (structure.path / K_PATH_FILENAME).is_file():
        k_path = structure.path / K_PATH_FILENAME
    if k_path is not None:
        if isinstance(k_path, (str, os.PathLike)):
            return f"K_PATH {k_path}", read_k_path(k_path)
        return "k-path", list(k_path)
    if is_molecule(hamiltonian):
        return None
    return "automatic (ASE)", automatic_k_path(structure.poscar.lattice, periodic_directions(hamiltonian), n_points)


def gaussian_dos(energies: np.ndarray, sigma_eV: float = DEFAULT_SIGMA_EV, degeneracy: float = 2.0,
                 energy_range: Optional[Tuple[float, float]] = None,
                 max_points: int = 200001) -> Tuple[np.ndarray, np.ndarray]:
    """Gaussian-broadened DOS of ``energies`` [n_k, n_bands] (eV; equal k weights).

    DOS(E) = degeneracy / n_k * sum_{k, n} exp(-(E - e_kn)^2 / 2 sigma^2) / (sqrt(2 pi) sigma), on a
    grid of step sigma / 5 over ``energy_range`` (default min - 5 sigma .. max + 5 sigma; at most
    ``max_points``). Each level is summed over +-6 sigma only (relative error < 2e-8).

    Returns:
        (energies [n_e] eV, DOS [n_e] states / eV / cell).
    """
    e = np.asarray(energies, dtype=np.float64)
    n_k = e.shape[0] if e.ndim == 2 else 1
    e = e[np.isfinite(e)].ravel()
    sigma = float(sigma_eV)
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0 eV, got {sigma_eV}")
    if e.size == 0:
        return np.zeros(0), np.zeros(0)
    lo, hi = energy_range if energy_range is not None else (e.min() - 5 * sigma, e.max() + 5 * sigma)
    if not hi > lo:
        return np.zeros(0), np.zeros(0)
    n_e = int(min(max_points, np.ceil((hi - lo) / (sigma / 5.0)) + 1))
    grid = np.linspace(lo, hi, n_e)
    step = grid[1] - grid[0] if n_e > 1 else 1.0
    half = int(np.ceil(6 * sigma / step))
    start = np.floor((e - lo) / step).astype(np.int64) - half  # [M]
    idx = start[:, None] + np.arange(2 * half + 2)[None, :]  # [M, W]
    ok = (idx >= 0) & (idx < n_e)
    weights = np.exp(-0.5 * ((grid[np.clip(idx, 0, n_e - 1)] - e[:, None]) / sigma) ** 2)
    dos = np.bincount(idx[ok], weights=weights[ok], minlength=n_e)
    return grid, dos * degeneracy / (n_k * np.sqrt(2 * np.pi) * sigma)


def _extreme(spectra: Sequence[Optional[KSpectrum]], band: int, top: bool) -> Optional[float]:
    values = np.concatenate([s.band(band) for s in spectra if s is not None])
    if not np.any(np.isfinite(values)):
        return None
    return float(np.nanmax(values) if top else np.nanmin(values))


def electronic_structure(
    hamiltonian: BlockSet,
    overlap: BlockSet,
    structure: StructureFolder,
    solver: str = "auto",
    k_path: Union[None, PathLike, Sequence[KPathSegment]] = None,
    k_grid: Optional[Sequence[int]] = None,
    use_path: bool = True,
    n_bands: int = DEFAULT_NUM_BANDS,
    sigma_eV: float = DEFAULT_SIGMA_EV,
    sparse_above: int = DEFAULT_SPARSE_ABOVE,
    path_points: int = DEFAULT_PATH_POINTS,
    name: Optional[str] = None,
) -> ElectronicStructure:
    """Bands, Fermi level, gap and DOS of (``hamiltonian``, ``overlap``) (module docstring).

    Args:
        hamiltonian / overlap: blocks (eV / dimensionless) of ``structure``.
        solver: "auto", "dense" or "sparse"; ``sparse_above``: the auto threshold (orbitals).
        k_path: a ``K_PATH`` file or segments (default: the folder's, else ASE's); ``use_path``
            False: no path. ``path_points``: k-points of an automatic path.
        k_grid: 3 ints (default: see the module docstring); molecules: Gamma.
        n_bands: eigenvalues per k of a sparse solve (at most size - 2).
        sigma_eV: DOS broadening (eV).

    Raises:
        ValueError: no ``occupation`` in info.json, a bad solver, or a failed eigen-solve.
        ImportError: an automatic path without ASE.
    """
    t_start = time.perf_counter()
    name = structure.name if name is None else name
    molecule = is_molecule(hamiltonian)
    n_occ = occupied_count(structure)
    size = int(structure.atom_orbital_offsets(spinful=structure.spinful)[-1])
    chosen = choose_solver(solver, size, sparse_above)
    if molecule:
        grid_shape: Tuple[int, int, int] = (1, 1, 1)
    elif k_grid is not None:
        grid_shape = tuple(int(g) for g in k_grid)  # type: ignore[assignment]
    else:
        grid_shape = (sparse_default_k_grid(hamiltonian, structure.poscar.lattice) if chosen == "sparse"
                      else default_k_grid(hamiltonian))
    path_def = resolve_k_path(structure, hamiltonian, k_path, path_points) if use_path and not molecule else None
    points = k_path_points(path_def[1], structure.poscar.lattice) if path_def is not None else None
    k_grid_frac = k_grid_points(grid_shape)
    seconds: Dict[str, float] = {}
    context = f"structure {name}"
    if chosen == "dense":
        h, s = bloch_operators(hamiltonian, overlap, structure)
        t = time.perf_counter()
        e_grid = band_energies(h, s, k_grid_frac, context)
        grid = KSpectrum(k_grid_frac, e_grid, np.zeros(len(k_grid_frac), dtype=np.int64))
        try:
            fermi = fermi_level_from_occupation(e_grid, n_occ)
        except ValueError as exc:
            raise ValueError(f"{context}: {exc}") from None
        seconds["grid"] = seconds["fermi"] = time.perf_counter() - t
        method = "midpoint of the grid's n_occ * n_k-th and next eigenvalue"
        path = None
        if points is not None:
            t = time.perf_counter()
            path = KSpectrum(points.k_frac, band_energies(h, s, points.k_frac, context),
                             np.zeros(len(points.k_frac), dtype=np.int64))
            seconds["path"] = time.perf_counter() - t
        dos_range = None
    else:
        h, s = sparse_bloch_operators(hamiltonian, overlap, structure)
        n_win = min(int(n_bands), size - 2)
        if n_win < n_bands:
            logger.info("%s: %d orbitals: %d eigenvalues per k (not %d)", context, size, n_win, n_bands)
        t = time.perf_counter()
        fermi, windows = fermi_level_sparse(h, s, k_grid_frac, n_occ, n_window=n_win, context=context)
        seconds["fermi"] = seconds["grid"] = time.perf_counter() - t
        grid = KSpectrum(k_grid_frac, np.stack([w.energies for w in windows]),
                         np.array([w.first_band for w in windows], dtype=np.int64))
        method = "inertia of H - E S on the grid + shift-invert eigenvalues next to E_F"
        path = None
        if points is not None:
            t = time.perf_counter()
            path_windows = [eigenvalues_near(h(k), s(k), fermi, n_win, f"{context} at k = {k.tolist()}")
                            for k in points.k_frac]
            path = KSpectrum(points.k_frac, np.stack([w.energies for w in path_windows]),
                             np.array([w.first_band for w in path_windows], dtype=np.int64))
            seconds["path"] = time.perf_counter() - t
        lo, hi = float(grid.energies[:, 0].max()), float(grid.energies[:, -1].min())
        dos_range = (lo + 6 * sigma_eV, hi - 6 * sigma_eV)
    degeneracy = 1 if structure.spinful else 2
    dos_e, dos = gaussian_dos(grid.energies, sigma_eV, degeneracy, dos_range)
    result = ElectronicStructure(
        name=name, kind="molecule" if molecule else "crystal", solver=chosen, n_orbitals=size,
        spin_degeneracy=degeneracy, n_occupied=n_occ, fermi_energy_eV=float(fermi), fermi_method=method,
        k_grid=grid_shape, grid=grid, path=path, path_points=points,
        k_path_source=None if path_def is None else path_def[0],
        k_path_segments=None if path_def is None else path_def[1], dos_energy_eV=dos_e, dos=dos,
        sigma_eV=float(sigma_eV), seconds=seconds)
    result.vbm_eV, result.cbm_eV = _extreme([grid, path], n_occ - 1, True), _extreme([grid, path], n_occ, False)
    if result.vbm_eV is not None and result.cbm_eV is not None:
        result.gap_eV = result.cbm_eV - result.vbm_eV
    for attr, spectrum in (("gap_grid_eV", grid), ("gap_path_eV", path)):
        if spectrum is not None:
            vbm, cbm = _extreme([spectrum], n_occ - 1, True), _extreme([spectrum], n_occ, False)
            setattr(result, attr, None if vbm is None or cbm is None else cbm - vbm)
    seconds["total"] = time.perf_counter() - t_start
    logger.debug("%s: %s solve, E_F %.6f eV, gap %s eV, %.3g s", context, chosen, fermi, result.gap_eV,
                 seconds["total"])
    return result
