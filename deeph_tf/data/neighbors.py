"""Periodic radius neighbour lists (NumPy + SciPy only, no TensorFlow).

Convention (the same as the DeepH block files, docs/conventions.md, section "1. Data format"): an
edge ``(i, j, R)`` stands for the pair <phi_i(cell 0)| |phi_j(cell R)>, its vector is
``r_j + R @ lattice - r_i`` (Angstrom, pointing from atom i to the image of atom j),
and every edge ``(i, j, R)`` comes with its partner ``(j, i, -R)``.

Method: atoms are wrapped into the cell along the periodic axes, the wrapped cell is
replicated over every lattice shift that can hold a neighbour (the range per axis comes
from the cell's perpendicular heights, so skewed cells and cutoffs larger than the cell
are handled), images farther than the cutoff from the cell are dropped, and a
``scipy.spatial.cKDTree`` finds all pairs. Distances are then recomputed from the
original positions as ``(r_j - r_i) + R @ lattice``, which is exactly antisymmetric in
floating point, so the edge set is exactly symmetric even for pairs at the cutoff.
"""
from __future__ import annotations

import itertools
from typing import Sequence, Tuple, Union

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["radius_graph", "edge_vectors", "perpendicular_heights"]

PbcLike = Union[bool, Sequence[bool]]

#: Relative slack of the KD-tree search radius; exact filtering happens afterwards.
_SEARCH_SLACK = 1e-8


def _as_pbc(pbc: PbcLike) -> Tuple[bool, bool, bool]:
    if isinstance(pbc, (bool, np.bool_)):
        return (bool(pbc),) * 3
    try:
        flags = tuple(bool(p) for p in pbc)
    except TypeError:
        raise ValueError(f"pbc must be a bool or 3 bools, got {pbc!r}") from None
    if len(flags) != 3:
        raise ValueError(f"pbc must be a bool or 3 bools (one per lattice vector), got {pbc!r}")
    return flags  # type: ignore[return-value]


def _as_positions(positions) -> np.ndarray:
    pos = np.asarray(positions, dtype=np.float64)
    if pos.size == 0:
        pos = pos.reshape(0, 3)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"positions must have shape [n_atoms, 3] (Cartesian, Angstrom), got {pos.shape}")
    if not np.all(np.isfinite(pos)):
        raise ValueError("positions contain non-finite values")
    return pos


def _as_lattice(lattice, required: bool) -> np.ndarray:
    if lattice is None:
        if required:
            raise ValueError("lattice is required when any pbc axis is periodic")
        return np.zeros((3, 3))
    lat = np.asarray(lattice, dtype=np.float64)
    if lat.shape != (3, 3):
        raise ValueError(f"lattice must have shape [3, 3] (rows = lattice vectors, Angstrom), got {lat.shape}")
    if not np.all(np.isfinite(lat)):
        raise ValueError("lattice contains non-finite values")
    if required:
        scale = float(np.prod(np.linalg.norm(lat, axis=1)))
        det = float(np.linalg.det(lat))
        if scale == 0.0 or abs(det) <= 1e-10 * scale:
            raise ValueError(f"lattice is singular (det = {det:.3g} A^3) but pbc is on; rows must be "
                             f"three linearly independent lattice vectors in Angstrom")
    return lat


def perpendicular_heights(lattice) -> np.ndarray:
    """Distance between opposite faces of the cell, one per lattice vector.

    ``h_a = V / |a_b x a_c|`` (= 1 / |reciprocal vector a|), the quantity that bounds how
    many images along axis ``a`` a sphere of a given radius can reach.

    Args:
        lattice: [3, 3] Angstrom, rows are the lattice vectors (non-singular).

    Returns:
        [3] float64, Angstrom.
    """
    lat = _as_lattice(lattice, required=True)
    inv = np.linalg.inv(lat)  # columns are reciprocal vectors (without 2 pi)
    return 1.0 / np.linalg.norm(inv, axis=0)


def edge_vectors(positions, lattice, src, dst, shifts) -> np.ndarray:
    """Edge vectors ``r_dst + shifts @ lattice - r_src``.

    Computed as ``(r_dst - r_src) + shifts @ lattice``, which is exactly the negative of
    the partner edge's vector in floating point.

    Args:
        positions: [n_atoms, 3] Cartesian, Angstrom.
        lattice: [3, 3] Angstrom, rows are lattice vectors (may be ``None`` if every shift is 0).
        src, dst: [n_edges] atom indices.
        shifts: [n_edges, 3] integer lattice shifts R.

    Returns:
        [n_edges, 3] float64, Angstrom.
    """
    pos = _as_positions(positions)
    src = np.asarray(src, dtype=np.int64).reshape(-1)
    dst = np.asarray(dst, dtype=np.int64).reshape(-1)
    shifts = np.asarray(shifts)
    if shifts.size == 0:
        shifts = shifts.reshape(0, 3)
    if shifts.ndim != 2 or shifts.shape[1] != 3 or shifts.shape[0] != src.shape[0] or dst.shape != src.shape:
        raise ValueError(f"src {src.shape}, dst {dst.shape} and shifts {shifts.shape} must be "
                         f"[n_edges], [n_edges] and [n_edges, 3]")
    n = pos.shape[0]
    if src.size and (src.min() < 0 or dst.min() < 0 or src.max() >= n or dst.max() >= n):
        raise ValueError(f"edge atom index out of range 0..{n - 1}")
    nonzero = bool(np.any(shifts != 0))
    lat = _as_lattice(lattice, required=False) if (lattice is not None or nonzero) else np.zeros((3, 3))
    if nonzero and lattice is None:
        raise ValueError("lattice is required for non-zero shifts")
    return (pos[dst] - pos[src]) + shifts.astype(np.float64) @ lat


def radius_graph(positions, lattice, cutoff: float, pbc: PbcLike = (True, True, True),
                 include_self_image: bool = False) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All ordered pairs ``(i, j, R)`` with ``|r_j + R @ lattice - r_i| < cutoff``.

    Args:
        positions: [n_atoms, 3] Cartesian positions, Angstrom (need not lie inside the cell).
        lattice: [3, 3] Angstrom, rows are the lattice vectors. Must be non-singular if any
            axis is periodic; ignored (may be ``None``) when no axis is.
        cutoff: radius in Angstrom, > 0. The comparison is strict (``<``).
        pbc: periodicity per lattice vector (or one bool for all). Along a non-periodic
            axis only ``R_a = 0`` occurs; with all three False this is a molecular graph.
        include_self_image: also return the on-site entries ``(i, i, R = 0)`` (zero vector),
            e.g. to compare with the atom_pairs of a DeepH block file, which list on-site
            blocks. By default they are excluded, and they are the only pairs excluded:
            periodic images of the atom itself (``i == j``, ``R != 0``) are always kept.

    Returns:
        ``(src, dst, shifts)``: ``src`` = i and ``dst`` = j, int64 [n_edges]; ``shifts`` = R,
        int64 [n_edges, 3] in lattice units. Sorted by (src, dst, R1, R2, R3). Every
        ``(i, j, R)`` comes with ``(j, i, -R)``.

    Raises:
        ValueError: bad shapes, non-finite values, non-positive cutoff, bad pbc, or a
            singular lattice while some axis is periodic.
    """
    pos = _as_positions(positions)
    flags = _as_pbc(pbc)
    try:
        cutoff = float(cutoff)
    except (TypeError, ValueError):
        raise ValueError(f"cutoff must be a positive number (Angstrom), got {cutoff!r}") from None
    if not np.isfinite(cutoff) or cutoff <= 0:
        raise ValueError(f"cutoff must be a positive finite number (Angstrom), got {cutoff!r}")
    periodic = np.array(flags, dtype=bool)
    lat = _as_lattice(lattice, required=bool(periodic.any()))
    n = pos.shape[0]

    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.int64))
    if n == 0:
        return empty

    # Wrap into the cell along periodic axes: pos = wrapped + k @ lattice.
    if periodic.any():
        frac = np.linalg.solve(lat.T, pos.T).T
        k = np.where(periodic[None, :], np.floor(frac), 0.0)
        wrapped = pos - k @ lat
        frac_w = frac - k
        heights = perpendicular_heights(lat)
        n_img = np.where(periodic, np.ceil(cutoff / heights), 0).astype(np.int64)
    else:
        k = np.zeros((n, 3))
        wrapped = pos
        frac_w = np.zeros((n, 3))
        heights = np.full(3, np.inf)
        n_img = np.zeros(3, np.int64)

    # Replicate the wrapped cell; keep images whose fractional coordinates along periodic
    # axes lie within cutoff/h of [0, 1) (others cannot be within cutoff of any centre).
    ranges = [np.arange(-m, m + 1) for m in n_img]
    image_shifts = np.array(list(itertools.product(*ranges)), dtype=np.int64)  # [n_shift, 3]
    margin = np.where(periodic, cutoff / np.where(periodic, heights, 1.0), np.inf) * (1 + 1e-6) + 1e-9
    img_frac = frac_w[None, :, :] + image_shifts[:, None, :]  # [n_shift, n, 3]
    keep = np.all((img_frac >= -margin) & (img_frac < 1.0 + margin), axis=2)
    shift_idx, atom_idx = np.nonzero(keep)
    img_pos = wrapped[atom_idx] + image_shifts[shift_idx].astype(np.float64) @ lat

    # Candidate pairs within cutoff (with a tiny slack); exact test below.
    search = cutoff * (1.0 + _SEARCH_SLACK) + 1e-9
    centres = cKDTree(wrapped)
    images = cKDTree(img_pos)
    pairs = centres.sparse_distance_matrix(images, search, output_type="ndarray")
    if pairs.size == 0:
        return empty
    i = pairs["i"].astype(np.int64)
    img = pairs["j"].astype(np.int64)
    j = atom_idx[img]
    # r_j = wrapped_j + k_j L; image = wrapped_j + S L  =>  R = S - k_j + k_i.
    R = image_shifts[shift_idx[img]] + np.rint(k[i] - k[j]).astype(np.int64)

    vec = (pos[j] - pos[i]) + R.astype(np.float64) @ lat
    dist2 = np.einsum("ij,ij->i", vec, vec)
    onsite = (i == j) & np.all(R == 0, axis=1)
    ok = dist2 < cutoff * cutoff
    ok &= ~onsite
    i, j, R = i[ok], j[ok], R[ok]
    if include_self_image:
        ar = np.arange(n, dtype=np.int64)
        i = np.concatenate([i, ar])
        j = np.concatenate([j, ar])
        R = np.concatenate([R, np.zeros((n, 3), np.int64)])
    order = np.lexsort((R[:, 2], R[:, 1], R[:, 0], j, i))
    return i[order], j[order], np.ascontiguousarray(R[order])
