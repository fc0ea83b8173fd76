"""Sparse H(k), S(k) and eigenvalues near an energy: electronic structure of large cells.

:class:`SparseBloch` assembles A(k) = sum_R A(R) exp(2 pi i k.R) (the sign of
:mod:`~deeph_tf.infer.electronic.bloch`) as a SciPy CSR matrix straight from the blocks
(float64 at Gamma for real data, else complex128). The factorization of K = H(k) - E S(k)
(:class:`ShiftedFactor`, SuperLU) serves two purposes at once:

* **inertia** (Sylvester's law; S positive definite): the number of generalized eigenvalues
  below E equals the number of negative eigenvalues of K. SuperLU in symmetric mode with
  diagonal pivots only (``diag_pivot_thresh=0``, ``SymmetricMode``, ordering on A + A^T)
  factors P K P^T = L U with U = D L^H, so the count is that of negative Re diag(U). Where
  SuperLU had to pivot off the diagonal (a zero pivot; checked from its permutations) the
  count would be invalid: E is moved by a tiny amount and the factorization redone.
* **shift-invert** Lanczos/Arnoldi (ARPACK through ``scipy.sparse.linalg.eigsh``; complex
  Hermitian matrices go to its ``eigs`` branch, which handles the M-inner product): the
  ``n`` eigenvalues nearest E, with OPinv = K^-1 from the same factors. With the inertia
  they get their global band indices.

:func:`fermi_level_sparse`: the Fermi level of ``n_occupied`` bands per k on a k-grid,
the same definition as :func:`~deeph_tf.infer.electronic.occupation.fermi_level_from_occupation`
(midpoint of the m-th and (m+1)-th of all grid eigenvalues, m = n_occupied n_k): a
safeguarded secant/bisection on E of the inertia summed over the grid until it is near m,
then the eigenvalues next to E, whose band indices the inertia gives, yield the exact
midpoint. Caveat: diagonal pivoting of an indefinite K has no growth bound; the counts are
checked against dense ones in the tests (tests/infer/test_dband.py), not at run time.
Energies in eV; k reduced.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from deeph_tf.data.block_h5 import BlockSet
from deeph_tf.data.structure import StructureFolder
from deeph_tf.infer.electronic.bloch import spinful_overlap

logger = logging.getLogger(__name__)

__all__ = ["SparseBloch", "sparse_bloch_operators", "ShiftedFactor", "SpectrumWindow", "count_below",
           "eigenvalues_near", "ranked_energy", "fermi_level_sparse"]

#: Tries with E nudged when SuperLU pivots off the diagonal or K is singular.
_NUDGE_TRIES = 4


class SparseBloch:
    """A(k) as a CSR matrix, the pattern and per-entry phases precomputed once.

    Blocks of equal shape are assembled together (vectorized row/column indices with the
    orbital offsets); entries of different R that land on one (row, col) are summed at each k.

    Args:
        blockset: the blocks (float64 or complex128).
        orbital_offsets: [n_atoms + 1] row offsets of the atoms (spinful: doubled).
    """

    def __init__(self, blockset: BlockSet, orbital_offsets: Sequence[int]) -> None:
        off = np.asarray(orbital_offsets, dtype=np.int64)
        self.orbital_offsets = off
        n = int(off[-1])
        pairs = blockset.atom_pairs
        shapes = np.array([b.shape for b in blockset.blocks], dtype=np.int64).reshape(-1, 2)
        sizes = np.diff(off)
        bad = np.nonzero((shapes[:, 0] != sizes[pairs[:, 3]]) | (shapes[:, 1] != sizes[pairs[:, 4]]))[0]
        if bad.size:
            k = int(bad[0])
            raise ValueError(f"block {pairs[k].tolist()} has shape {tuple(shapes[k])}, expected "
                             f"{(int(sizes[pairs[k, 3]]), int(sizes[pairs[k, 4]]))} from the orbital offsets")
        self.lattice_vectors, r_index = np.unique(pairs[:, :3], axis=0, return_inverse=True)
        r_index = np.asarray(r_index).reshape(-1)
        keys, values, r_of = [], [], []
        for shape in np.unique(shapes, axis=0):
            rows_n, cols_n = int(shape[0]), int(shape[1])
            sel = np.nonzero((shapes[:, 0] == rows_n) & (shapes[:, 1] == cols_n))[0]
            if rows_n * cols_n == 0:
                continue
            stacked = np.stack([blockset.blocks[k] for k in sel])  # [g, rows_n, cols_n]
            rows = off[pairs[sel, 3]][:, None, None] + np.arange(rows_n)[None, :, None]
            cols = off[pairs[sel, 4]][:, None, None] + np.arange(cols_n)[None, None, :]
            keys.append((rows * n + cols).reshape(-1))
            values.append(stacked.reshape(-1))
            r_of.append(np.repeat(r_index[sel], rows_n * cols_n))
        dtype = blockset.dtype
        key = np.concatenate(keys) if keys else np.zeros(0, np.int64)
        self.values = np.concatenate(values).astype(dtype, copy=False) if values else np.zeros(0, dtype)
        self.entry_r = (np.concatenate(r_of) if r_of else np.zeros(0, np.int64)).astype(np.int32)
        pattern, inverse = np.unique(key, return_inverse=True)
        self._inverse = np.asarray(inverse).reshape(-1)
        self._indices = (pattern % n).astype(np.int32)
        self._indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(pattern // n, minlength=n), out=self._indptr[1:])
        self.nnz = len(pattern)
        self.size = n

    def __call__(self, k_frac: Optional[Sequence[float]] = None) -> scipy.sparse.csr_matrix:
        """A(k), [n, n] CSR: float64 at Gamma for real data, else complex128."""
        k = np.zeros(3) if k_frac is None else np.asarray(k_frac, dtype=np.float64).reshape(3)
        if np.any(k):
            phases = np.exp(2j * np.pi * (self.lattice_vectors @ k))
            weighted = self.values * phases[self.entry_r]
        else:
            weighted = self.values
        data = np.bincount(self._inverse, weights=weighted.real, minlength=self.nnz)
        if np.iscomplexobj(weighted):
            data = data + 1j * np.bincount(self._inverse, weights=weighted.imag, minlength=self.nnz)
        return scipy.sparse.csr_matrix((data, self._indices, self._indptr), shape=(self.size, self.size))


def sparse_bloch_operators(hamiltonian: BlockSet, overlap: BlockSet,
                           structure: StructureFolder) -> Tuple[SparseBloch, SparseBloch]:
    """Sparse Bloch sums of H and of S on H's rows (S (x) 1 for spinful H)."""
    spinful = structure.spinful
    offsets = structure.atom_orbital_offsets(spinful=spinful)
    s = spinful_overlap(overlap) if spinful else overlap
    return SparseBloch(hamiltonian, offsets), SparseBloch(s, offsets)


def _hermitian(a: scipy.sparse.spmatrix) -> scipy.sparse.csc_matrix:
    return (0.5 * (a + a.conj().T)).tocsc()


class ShiftedFactor:
    """SuperLU factors of K = H - E S (both made exactly Hermitian unless ``hermitian``
    says they are); see the module docstring.

    Attributes:
        energy: E (eV) actually factored (nudged by ~1e-9 relative if needed).
        n_below: generalized eigenvalues of (H, S) below ``energy`` (inertia of K).
    """

    def __init__(self, h: scipy.sparse.spmatrix, s: scipy.sparse.spmatrix, energy: float,
                 context: str = "", hermitian: bool = False) -> None:
        h, s = (h.tocsc(), s.tocsc()) if hermitian else (_hermitian(h), _hermitian(s))
        self.h, self.s = h, s
        e = float(energy)
        for attempt in range(_NUDGE_TRIES):
            try:
                lu = scipy.sparse.linalg.splu((h - e * s).tocsc(), permc_spec="MMD_AT_PLUS_A",
                                              diag_pivot_thresh=0.0, options={"SymmetricMode": True})
            except RuntimeError as exc:  # exactly singular: E is an eigenvalue
                logger.debug("%s: H - E S singular at E = %.12g eV (%s); nudging E", context, e, exc)
            else:
                if np.array_equal(lu.perm_r, lu.perm_c):  # diagonal pivots only: U = D L^H
                    diagonal = lu.U.diagonal()  # lu.U is a copy, made once here
                    self.lu, self.energy, self._dtype = lu, e, diagonal.dtype
                    self.n_below = int(np.count_nonzero(diagonal.real < 0.0))
                    return
                logger.debug("%s: off-diagonal pivot at E = %.12g eV; nudging E", context, e)
            e += (attempt + 1) * 1e-9 * max(1.0, abs(e))
        raise ValueError(f"{context}: cannot factor H - E S near E = {energy} eV with diagonal pivots "
                         f"(is the overlap positive definite?)")

    def solve(self, x: np.ndarray) -> np.ndarray:
        """K^-1 x."""
        return self.lu.solve(np.asarray(x, dtype=self._dtype))


def count_below(h: scipy.sparse.spmatrix, s: scipy.sparse.spmatrix, energy: float, context: str = "") -> int:
    """Number of generalized eigenvalues of (H, S) below ``energy`` (eV), from the inertia of H - E S."""
    return ShiftedFactor(h, s, energy, context).n_below


@dataclass
class SpectrumWindow:
    """The eigenvalues of one k nearest ``sigma``.

    Attributes:
        energies: [n] eV, ascending.
        first_band: 0-based index of ``energies[0]`` in the whole ascending spectrum.
        n_below: eigenvalues of the whole spectrum below ``sigma``.
        sigma: the shift (eV).
    """

    energies: np.ndarray
    first_band: int
    n_below: int
    sigma: float


def eigenvalues_near(h: scipy.sparse.spmatrix, s: scipy.sparse.spmatrix, sigma: float, n: int,
                     context: str = "", tol: float = 1e-12, hermitian: bool = False,
                     factor: Optional[ShiftedFactor] = None) -> SpectrumWindow:
    """The ``n`` generalized eigenvalues of (H, S) nearest ``sigma`` (eV), with their band indices.

    Shift-invert ARPACK with K = H - sigma S factored once (:class:`ShiftedFactor`, or the
    ``factor`` given, whose energy is then sigma); ``n`` must be < size - 1 (ARPACK); ``tol``:
    ARPACK's relative tolerance on 1 / (e - sigma) (0: machine precision); the error in e is
    about tol |e - sigma|, 1e-11 eV at 10 eV from sigma.
    """
    size = h.shape[0]
    if not 0 < n < size - 1:
        raise ValueError(f"{context}: {n} eigenvalues of a {size} x {size} problem: need 0 < n < {size - 1} "
                         f"(use the dense solver)")
    factor = ShiftedFactor(h, s, sigma, context, hermitian) if factor is None else factor
    dtype = np.result_type(factor.h.dtype, factor.s.dtype)
    op_inv = scipy.sparse.linalg.LinearOperator((size, size), matvec=factor.solve, dtype=dtype)
    rng = np.random.default_rng(size)
    v0 = rng.standard_normal(size)
    if np.issubdtype(dtype, np.complexfloating):
        v0 = v0 + 1j * rng.standard_normal(size)
    ncv = min(size, max(2 * n + 1, n + 20))
    values = scipy.sparse.linalg.eigsh(factor.h, k=n, M=factor.s, sigma=factor.energy, which="LM",
                                       OPinv=op_inv, v0=v0, ncv=ncv, tol=tol, return_eigenvectors=False)
    energies = np.sort(np.asarray(values).real)
    below = int(np.count_nonzero(energies < factor.energy))
    return SpectrumWindow(energies, factor.n_below - below, factor.n_below, factor.energy)


def _diagonal_guess(h: scipy.sparse.spmatrix, s: scipy.sparse.spmatrix, n_occupied: int) -> float:
    """Starting E: the n_occupied-th smallest Rayleigh quotient H_ii / S_ii (eV)."""
    q = np.sort(h.diagonal().real / s.diagonal().real)
    return float(q[min(max(n_occupied - 1, 0), len(q) - 1)])


def ranked_energy(windows: Sequence[SpectrumWindow], rank: int, size: int) -> Optional[float]:
    """The ``rank``-th smallest (1-based) eigenvalue over all k of the windows (all at one sigma).

    None where the windows cannot tell: some k's window stops short of it (a window holds a
    contiguous run of its spectrum around sigma, so the union is exact near sigma).
    """
    below = sum(w.n_below for w in windows)
    if rank > below:  # the (rank - below)-th smallest above sigma
        d = rank - below
        for w in windows:
            n_above = int(np.count_nonzero(w.energies >= w.sigma))
            if w.first_band + len(w.energies) < size and n_above < d:
                return None
        values = np.sort(np.concatenate([w.energies[w.energies >= w.sigma] for w in windows]))
    else:  # the (below - rank + 1)-th largest below sigma
        d = below - rank + 1
        for w in windows:
            n_under = int(np.count_nonzero(w.energies < w.sigma))
            if w.first_band > 0 and n_under < d:
                return None
        values = -np.sort(-np.concatenate([w.energies[w.energies < w.sigma] for w in windows]))
    return float(values[d - 1]) if d <= len(values) else None


def _window_hint(window: SpectrumWindow, target: int) -> Optional[float]:
    """Where the target-th eigenvalue should be, from one window that does not reach it: its edge
    plus the distance the window's own level density gives (eV); None if the window holds it."""
    e, n = window.energies, len(window.energies)
    density = (n - 1) / max(float(e[-1] - e[0]), 1e-12)  # levels per eV
    if target <= window.first_band:
        return float(e[0]) - (window.first_band - target + 0.5) / density
    if target + 1 > window.first_band + n:
        return float(e[-1]) + (target + 1 - window.first_band - n + 0.5) / density
    return None


def fermi_level_sparse(hamiltonian: SparseBloch, overlap: SparseBloch, k_points: np.ndarray, n_occupied: int,
                       n_window: int = 40, tol_eV: float = 1e-6, start_eV: Optional[float] = None,
                       context: str = "", max_steps: int = 100) -> Tuple[float, List[SpectrumWindow]]:
    """Fermi level (eV) of ``n_occupied`` bands per k on the grid ``k_points`` [n_k, 3] (equal weights).

    The definition of :func:`~deeph_tf.infer.electronic.occupation.fermi_level_from_occupation`:
    the midpoint of the m-th and (m+1)-th of all grid eigenvalues, m = n_occupied n_k. A
    safeguarded secant/bisection on E of the inertia summed over k (one factorization per k
    and step) brings the count within a quarter window of m; then the ``n_window`` eigenvalues
    nearest E at each k (shift-invert on the same factors for a single k) give the m-th and
    (m+1)-th exactly. Where a single k's window falls short, the next E is placed where its
    level density puts the m-th; otherwise the search goes on to the exact count m, or to a
    bracket narrower than ``tol_eV`` around a level at E_F, and the windows there are widened
    (doubled) until they hold both; only if even size - 2 eigenvalues do not, the energy of
    the search is returned. ``start_eV``: first trial energy (default from the diagonal of
    H(Gamma), S(Gamma)).

    Returns:
        (E_F, the windows of the last trial E per k, >= ``n_window`` eigenvalues each, all of
        one size: the grid's eigenvalues near E_F).

    Raises:
        ValueError: ``n_occupied`` outside 1 .. size - 1, or a failed factorization.
    """
    k_points = np.asarray(k_points, dtype=np.float64).reshape(-1, 3)
    labels = [f"{context} at k = {k.tolist()}" for k in k_points]
    matrices = [(_hermitian(hamiltonian(k)), _hermitian(overlap(k))) for k in k_points]
    size = hamiltonian.size
    if not 0 < n_occupied < size:
        raise ValueError(f"{context}: {n_occupied} occupied bands of {size}: no Fermi level between them")
    target = int(n_occupied) * len(k_points)
    n_win = max(2, min(int(n_window), size - 2))
    close = max(0, n_win // 4) * len(k_points)
    single = len(k_points) == 1  # keep the factors for the eigenvalues (memory: one k only)

    def windows_at(e: float, n: int, factors: Optional[List[ShiftedFactor]] = None) -> List[SpectrumWindow]:
        factors = factors or [None] * len(matrices)  # type: ignore[list-item]
        return [eigenvalues_near(h, s, e, n, label, hermitian=True, factor=f)
                for (h, s), label, f in zip(matrices, labels, factors)]

    def resolved(windows: List[SpectrumWindow]) -> Optional[float]:
        homo, lumo = ranked_energy(windows, target, size), ranked_energy(windows, target + 1, size)
        return None if homo is None or lumo is None else 0.5 * (homo + lumo)

    e = _diagonal_guess(*matrices[0], n_occupied) if start_eV is None else float(start_eV)
    lo: Optional[Tuple[float, int]] = None
    hi: Optional[Tuple[float, int]] = None
    step, last_width, tried = 1.0, np.inf, False
    for n_steps in range(1, max_steps + 1):
        factors = [ShiftedFactor(h, s, e, label, hermitian=True) for (h, s), label in zip(matrices, labels)]
        count = sum(f.n_below for f in factors)
        logger.debug("%s: E = %.9f eV: %d below (target %d)", context, e, count, target)
        hint = None
        tried = abs(count - target) <= close
        if tried:
            windows = windows_at(e, n_win, factors if single else None)
            fermi = resolved(windows)
            if fermi is not None:
                logger.debug("%s: E_F after %d inertia steps", context, n_steps)
                return fermi, windows
            hint = _window_hint(windows[0], target) if single else None
        del factors
        if count == target:
            break
        if count < target:
            lo = (e, count)
        else:
            hi = (e, count)
        if lo is None or hi is None:  # expand towards the target
            e = (e + step if hi is None else e - step) if hint is None else hint
            step *= 2.0
            continue
        width = hi[0] - lo[0]
        if width <= tol_eV:
            break
        e_mid = 0.5 * (lo[0] + hi[0])
        e_sec = lo[0] + (target - lo[1]) * width / (hi[1] - lo[1]) if hint is None else hint
        use_secant = hint is not None or width < 0.5 * last_width  # else bisect: the bracket at least halves
        last_width = width
        e = e_sec if use_secant and lo[0] + 1e-3 * width < e_sec < hi[0] - 1e-3 * width else e_mid
    else:
        raise ValueError(f"{context}: no Fermi level after {max_steps} inertia steps")
    n_try = min(2 * n_win, size - 2) if tried else n_win
    while True:  # E: the count is m, or a level at E_F; windows as wide as it takes to see both sides
        windows = windows_at(e, n_try)
        fermi = resolved(windows)
        if fermi is not None:
            return fermi, windows
        if n_try >= size - 2:
            logger.warning("%s: eigenvalue windows miss a neighbour of E_F; using the inertia energy", context)
            return e, windows
        n_try = min(2 * n_try, size - 2)
