"""Physics errors from (H, S): orbital energies of molecules, bands of periodic structures.

Energies in eV in, errors in meV out; k in reduced (fractional) coordinates of the
reciprocal lattice, R in lattice units.

Bloch sums
    A block is <phi_i(cell 0)| A |phi_j(cell R)>. With Bloch orbitals
    |j, k> = sum_R exp(2 pi i k.R) |phi_j(R)>, the k-space matrices are
    A_ij(k) = sum_R A_ij(R) exp(2 pi i k.R)  (:func:`deeph_tf.data.block_h5.blocks_to_dense`),
    Hermitian because A_ij(R) = A_ji(-R)^dagger. For real (time-reversal symmetric) data
    the opposite sign gives A(-k) = A(k)^*, with the same eigenvalues, so bands cannot
    tell the sign apart; the data check is physical instead: with this assembly
    MoTe2 (occupation 46) has exactly 23 and Si exactly 4 bands below the DFT Fermi
    energy at every k tested, with the Fermi energy inside the gap, and S(k) is positive
    definite (tests/infer/test_eigen.py).

Molecules (every R = 0)
    Generalized eigenvalues of the dense (H, S). Occupied orbitals: info.json
    ``occupation`` (electrons, spin degeneracy included) / 2 for spinless data
    (/ 1 for spinful); without it, the reference orbitals below ``fermi_energy_eV``;
    without both, an error. Compared: all occupied orbitals + the LUMO by default
    (the project's "orbital-energy MAE (occupied + LUMO)").

Periodic structures
    Band energies on a Gamma-centred k-grid, or along the folder's ``K_PATH``. Compared:
    every (k, band) whose *reference* energy lies within ``window_eV`` (default 2 eV) of
    the Fermi energy (info.json; else mid-gap from ``occupation``), matched by band
    index at the same k. The raw MAE is gauge-dependent (H + mu S shifts every band by
    mu); ``mae_shifted_meV`` removes the mean shift pred - ref over the compared
    entries and is reported next to it, clearly labelled.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.linalg

from deeph_tf.data.block_h5 import BlockSet, blocks_to_dense
from deeph_tf.data.structure import StructureFolder

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
EV_TO_MEV = 1000.0
K_PATH_FILENAME = "K_PATH"
#: Default half-width (eV) of the band window around the Fermi energy.
DEFAULT_BAND_WINDOW_EV = 2.0
#: Default k-points per periodic direction of the band grid.
DEFAULT_K_PER_DIRECTION = 4


# ---- dense / Bloch matrices ---------------------------------------------------------------
def is_molecule(blockset: BlockSet) -> bool:
    """True if every block has R = 0 (no periodic images)."""
    return not np.any(blockset.atom_pairs[:, :3])


def spinful_overlap(overlap: BlockSet) -> BlockSet:
    """Spinless overlap blocks as spinful ones, S (x) 1: [[S, 0], [0, S]] per block."""
    return BlockSet(overlap.atom_pairs, [np.kron(np.eye(2), b) for b in overlap.blocks])


class BlochSum:
    """A(k) = sum_R A(R) exp(2 pi i k.R), with the dense A(R) precomputed once.

    Equivalent to ``blocks_to_dense(blockset, offsets, k)``; faster for many k.

    Args:
        blockset: the blocks (float64 or complex128).
        orbital_offsets: [n_atoms + 1] row offsets of the atoms (spinful: doubled).
    """

    def __init__(self, blockset: BlockSet, orbital_offsets: Sequence[int]) -> None:
        self.orbital_offsets = np.asarray(orbital_offsets, dtype=np.int64)
        pairs = blockset.atom_pairs
        self.lattice_vectors, inverse = np.unique(pairs[:, :3], axis=0, return_inverse=True)
        inverse = np.asarray(inverse).reshape(-1)
        mats = []
        for r in range(len(self.lattice_vectors)):
            rows = np.nonzero(inverse == r)[0]
            subset = BlockSet(pairs[rows], [blockset.blocks[k] for k in rows])
            mats.append(blocks_to_dense(subset, self.orbital_offsets))  # plain sum of the R blocks
        n = int(self.orbital_offsets[-1])
        self.matrices = np.stack(mats) if mats else np.zeros((0, n, n), dtype=blockset.dtype)  # [nR, n, n]

    @property
    def size(self) -> int:
        return int(self.orbital_offsets[-1])

    def __call__(self, k_frac: Optional[Sequence[float]] = None) -> np.ndarray:
        """A(k), [n, n]; real at Gamma for real data, else complex128."""
        k = np.zeros(3) if k_frac is None else np.asarray(k_frac, dtype=np.float64).reshape(3)
        if not np.any(k):
            return self.matrices.sum(axis=0)
        phases = np.exp(2j * np.pi * (self.lattice_vectors @ k))
        # einsum, not tensordot: no multi-threaded BLAS call for these small products (thread
        # contention on busy machines made tensordot ~20x slower)
        return np.einsum("r,rij->ij", phases, self.matrices)


def _dense_operators(hamiltonian: BlockSet, overlap: BlockSet,
                     structure: StructureFolder) -> Tuple[BlochSum, BlochSum]:
    """Bloch sums of H and of S on H's rows (S (x) 1 for spinful H)."""
    spinful = structure.spinful
    offsets = structure.atom_orbital_offsets(spinful=spinful)
    s = spinful_overlap(overlap) if spinful else overlap
    return BlochSum(hamiltonian, offsets), BlochSum(s, offsets)


def generalized_eigenvalues(h: np.ndarray, s: np.ndarray, context: str = "") -> np.ndarray:
    """Ascending eigenvalues of h c = e s c ([n], eV), both symmetrized to be exactly Hermitian.

    Raises:
        ValueError: if s is not positive definite (names ``context``).
    """
    h = 0.5 * (h + h.conj().T)
    s = 0.5 * (s + s.conj().T)
    try:
        return scipy.linalg.eigh(h, s, eigvals_only=True)
    except np.linalg.LinAlgError as exc:
        raise ValueError(f"{context}: generalized eigenproblem failed, is the overlap positive definite? "
                         f"({exc})") from exc


def band_energies(hamiltonian: BlochSum, overlap: BlochSum, k_points: np.ndarray,
                  context: str = "") -> np.ndarray:
    """Eigenvalues at each k: [n_k, n_bands] eV, ascending per k."""
    k_points = np.asarray(k_points, dtype=np.float64).reshape(-1, 3)
    out = np.empty((len(k_points), hamiltonian.size), dtype=np.float64)
    for m, k in enumerate(k_points):
        out[m] = generalized_eigenvalues(hamiltonian(k), overlap(k), f"{context} at k = {k.tolist()}")
    return out


# ---- occupations --------------------------------------------------------------------------
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


# ---- molecules ----------------------------------------------------------------------------
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
    h, s = _dense_operators(hamiltonian, overlap, structure)
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


# ---- k-points -----------------------------------------------------------------------------
@dataclass(frozen=True)
class KPathSegment:
    """One line of a ``K_PATH`` file: ``n_points`` k from ``k_start`` to ``k_end`` (reduced, [3])."""

    n_points: int
    k_start: Tuple[float, float, float]
    k_end: Tuple[float, float, float]
    label_start: str
    label_end: str


def read_k_path(path: PathLike) -> List[KPathSegment]:
    """Parse a DeepH-dock ``K_PATH`` file.

    Each non-empty line (``#`` starts a comment): ``n_points k1 k2 k3 k1' k2' k3' label label'``,
    k in reduced coordinates; labels may be omitted.

    Raises:
        ValueError: naming the file and line.
    """
    path = Path(path)
    segments = []
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        tokens = line.split()
        try:
            if len(tokens) not in (7, 9):
                raise ValueError(f"{len(tokens)} fields")
            n = int(tokens[0])
            if n < 1:
                raise ValueError("n_points < 1")
            ks = [float(t) for t in tokens[1:7]]
        except ValueError as exc:
            raise ValueError(f"{path}:{lineno}: cannot parse {raw.strip()!r} ({exc}); expected "
                             f"'n_points k_start(3) k_end(3) label_start label_end'") from None
        labels = tokens[7:9] if len(tokens) == 9 else ["", ""]
        segments.append(KPathSegment(n, tuple(ks[:3]), tuple(ks[3:]), labels[0], labels[1]))  # type: ignore[arg-type]
    if not segments:
        raise ValueError(f"{path}: no k-path segment found")
    return segments


def reciprocal_lattice(lattice: np.ndarray) -> np.ndarray:
    """Rows b_i with a_i . b_j = 2 pi delta_ij (1/Angstrom), from rows a_i (Angstrom), [3, 3]."""
    return 2.0 * np.pi * np.linalg.inv(np.asarray(lattice, dtype=np.float64)).T


@dataclass
class KPathPoints:
    """Sampled path: ``k_frac`` [n, 3] reduced, ``distance`` [n] cumulative |dk| (1/Angstrom),
    ``tick_distance`` / ``tick_labels`` at segment ends (a jump shows as "X|Y")."""

    k_frac: np.ndarray
    distance: np.ndarray
    tick_distance: List[float]
    tick_labels: List[str]


def k_path_points(segments: Sequence[KPathSegment], lattice: np.ndarray) -> KPathPoints:
    """k-points along ``segments`` (each sampled with ``n_points``, both ends included)."""
    b = reciprocal_lattice(lattice)
    ks, dist, ticks, labels = [], [], [], []
    x = 0.0
    prev_end: Optional[np.ndarray] = None
    for seg in segments:
        start, end = np.asarray(seg.k_start), np.asarray(seg.k_end)
        pts = np.linspace(start, end, seg.n_points) if seg.n_points > 1 else start[None, :]
        if prev_end is None:
            ticks.append(x)
            labels.append(seg.label_start)
        elif not np.allclose(prev_end, start):
            labels[-1] = f"{labels[-1]}|{seg.label_start}"  # discontinuity: no distance added
        step = np.linalg.norm(np.diff(pts, axis=0) @ b, axis=1) if len(pts) > 1 else np.zeros(0)
        ks.append(pts)
        dist.append(x + np.concatenate([[0.0], np.cumsum(step)]))
        x = float(dist[-1][-1])
        ticks.append(x)
        labels.append(seg.label_end)
        prev_end = end
    return KPathPoints(np.concatenate(ks), np.concatenate(dist), ticks, labels)


def k_grid_points(grid: Sequence[int], gamma_centered: bool = True) -> np.ndarray:
    """Uniform grid [prod(grid), 3] of reduced k.

    ``gamma_centered``: k_a = m / n_a, m = 0..n_a-1 (Gamma included); otherwise the
    Monkhorst-Pack points (2m - n_a + 1) / (2 n_a), m = 0..n_a-1.
    """
    axes = []
    for n in grid:
        n = int(n)  # accepts NumPy integers
        if n < 1:
            raise ValueError(f"k-grid {list(grid)}: every entry must be >= 1")
        m = np.arange(n)
        axes.append(m / n if gamma_centered else (2 * m - n + 1) / (2.0 * n))
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([a.reshape(-1) for a in mesh], axis=1)


def default_k_grid(blockset: BlockSet, per_direction: int = DEFAULT_K_PER_DIRECTION) -> Tuple[int, int, int]:
    """``per_direction`` along lattice directions with R != 0 pairs, 1 along the others (vacuum)."""
    periodic = np.any(blockset.atom_pairs[:, :3] != 0, axis=0)
    return tuple(int(per_direction) if p else 1 for p in periodic)  # type: ignore[return-value]


# ---- bands --------------------------------------------------------------------------------
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
    (Gamma-centred, 4 per periodic direction, 1 along directions without R != 0).

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
    h_ref, s = _dense_operators(reference, overlap, structure)
    e_ref = band_energies(h_ref, s, k_frac, f"structure {name} (reference)")
    e_pred = None
    if prediction is not None:
        h_pred, _ = _dense_operators(prediction, overlap, structure)
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
    if n_occ is not None:
        result.gap_ref_eV = _gap(e_ref, n_occ)
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
    logger.debug("structure %s: bands on %s (%d k), %d compared, MAE %s meV", name, source, len(k_frac),
                 result.n_compared, result.mae_meV)
    return result


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


# ---- plotting -----------------------------------------------------------------------------
def _pretty_label(label: str) -> str:
    return "|".join("Γ" if part.upper() in ("GAMMA", "G", "\\GAMMA") else part for part in label.split("|"))


def plot_bands(path_result: BandErrors, png_path: PathLike, energy_range_eV: Optional[Tuple[float, float]] = None,
               title: Optional[str] = None) -> Path:
    """Write a band plot: DFT solid, prediction dashed, high-symmetry ticks, Fermi level.

    Args:
        path_result: from :func:`band_structure` (a k-path; a grid is plotted against k index).
        png_path: output file (PNG).
        energy_range_eV: y-limits (eV); default Fermi energy -4 / +4 eV (at least the window).

    Returns:
        the written path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    r = path_result
    x = r.distance if r.distance is not None else np.arange(len(r.k_frac), dtype=np.float64)
    fig = Figure(figsize=(6.0, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(x, r.energies_ref_eV, color="black", lw=1.0)
    ax.plot([], [], color="black", lw=1.0, label="DFT")
    if r.energies_pred_eV is not None:
        ax.plot(x, r.energies_pred_eV, color="tab:red", lw=1.0, ls="--")
        ax.plot([], [], color="tab:red", lw=1.0, ls="--", label="prediction")
    ax.axhline(r.fermi_energy_eV, color="tab:blue", lw=0.8, ls=":", label="Fermi level")
    for t in r.tick_distance:
        ax.axvline(t, color="grey", lw=0.5)
    if r.tick_distance:
        ax.set_xticks(r.tick_distance)
        ax.set_xticklabels([_pretty_label(l) for l in r.tick_labels])
    else:
        ax.set_xlabel("k-point index")
    half = max(4.0, r.window_eV)
    lo, hi = energy_range_eV if energy_range_eV is not None else (r.fermi_energy_eV - half, r.fermi_energy_eV + half)
    ax.set_ylim(lo, hi)
    ax.set_xlim(float(x[0]), float(x[-1]) if len(x) > 1 else float(x[0]) + 1.0)
    ax.set_ylabel("E (eV)")
    ax.set_title(title if title is not None else r.name)
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    png_path = Path(png_path)
    fig.savefig(png_path, dpi=120)
    logger.debug("wrote band plot %s", png_path)
    return png_path
