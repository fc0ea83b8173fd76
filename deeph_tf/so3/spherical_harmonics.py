"""Real spherical harmonics Y^l(r), l = 0..8, in DeepH's m-order.

Convention (see ``deeph_tf.conventions``): m = -l..l, no Condon-Shortley phase, so
Y^1(r) is proportional to (y, z, x) and Y^2 to (xy, yz, 3z^2 - r^2, xz, x^2 - y^2).

Normalization
    "component" (default): sum_m Y^l_m(r_hat)^2 = 2l + 1, every component is O(1).
    "integral": orthonormal on the unit sphere, integral of Y^l_m Y^l'_m' = delta.

Algorithm
    Stable three-term recurrences in Cartesian form (no trigonometric functions):
    (x + iy)^m = c_m + i s_m gives the azimuthal part, and the associated Legendre
    recurrence in z (written homogeneously with r^2) the polar part. The same code
    runs on NumPy arrays (float64 reference) and TensorFlow tensors (any float dtype,
    XLA-compatible, differentiable).

Zero vectors
    With ``normalize=True`` the input is divided by its length; a zero vector gives
    Y^0 = const and Y^l = 0 for l > 0, with finite (zero) gradients.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import List

import numpy as np

from deeph_tf.conventions import LMAX_SUPPORTED

NORMALIZATIONS = ("component", "integral")


@lru_cache(maxsize=None)
def _normalization_constants(lmax: int, normalization: str) -> tuple:
    """Per-(l, |m|) prefactors N_l^m so that Y = N * Q_l^m * (c_m or s_m)."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    table = []
    for l in range(lmax + 1):
        row = []
        for m in range(l + 1):
            n = math.sqrt((2 * l + 1) / (4 * math.pi) * math.factorial(l - m) / math.factorial(l + m))
            if m > 0:
                n *= math.sqrt(2.0)
            if normalization == "component":
                n *= math.sqrt(4 * math.pi)
            row.append(n)
        table.append(tuple(row))
    return tuple(table)


def _harmonics_from_components(x, y, z, r2, lmax: int, normalization: str) -> List[list]:
    """Y^l_m as nested lists [l][m + l] of arrays shaped like ``x``.

    x, y, z: Cartesian components (of a unit vector for spherical harmonics);
    r2: x^2 + y^2 + z^2 (1 for unit vectors, 0 at the origin), keeps the recurrences homogeneous.
    Works for NumPy arrays and TensorFlow tensors alike (only +, -, * with Python floats).
    """
    norms = _normalization_constants(lmax, normalization)
    # Azimuthal part: c_m + i s_m = (x + i y)^m.
    cos_parts = [None] * (lmax + 1)
    sin_parts = [None] * (lmax + 1)
    cos_parts[0], sin_parts[0] = x * 0.0 + 1.0, x * 0.0
    for m in range(1, lmax + 1):
        cos_parts[m] = x * cos_parts[m - 1] - y * sin_parts[m - 1]
        sin_parts[m] = x * sin_parts[m - 1] + y * cos_parts[m - 1]
    # Polar part Q_l^m(z, r2) = P_l^m(cos theta) / sin^m(theta) without Condon-Shortley phase.
    legendre = [[None] * (lmax + 1) for _ in range(lmax + 1)]
    for m in range(lmax + 1):
        double_factorial = float(np.prod(np.arange(2 * m - 1, 0, -2))) if m > 0 else 1.0
        legendre[m][m] = x * 0.0 + double_factorial
        if m + 1 <= lmax:
            legendre[m + 1][m] = (2 * m + 1) * z * legendre[m][m]
        for l in range(m + 2, lmax + 1):
            legendre[l][m] = ((2 * l - 1) * z * legendre[l - 1][m] - (l + m - 1) * r2 * legendre[l - 2][m]) / (
                l - m
            )
    out = []
    for l in range(lmax + 1):
        row = [None] * (2 * l + 1)
        row[l] = norms[l][0] * legendre[l][0]
        for m in range(1, l + 1):
            radial = norms[l][m] * legendre[l][m]
            row[l + m] = radial * cos_parts[m]
            row[l - m] = radial * sin_parts[m]
        out.append(row)
    return out


def _check_lmax(lmax: int) -> None:
    if not isinstance(lmax, (int, np.integer)) or not 0 <= lmax <= LMAX_SUPPORTED:
        raise ValueError(f"lmax must be an integer in 0..{LMAX_SUPPORTED}, got {lmax!r}")


def spherical_harmonics_numpy(
    lmax: int, vectors: np.ndarray, normalization: str = "component", normalize: bool = True
) -> np.ndarray:
    """NumPy float64 reference of :func:`spherical_harmonics`.

    Args:
        lmax: largest l, 0..8.
        vectors: [..., 3] Cartesian vectors (any length unit).
    Returns:
        [..., (lmax + 1)^2] with Y^l at columns l^2 .. (l + 1)^2 - 1.
    """
    _check_lmax(lmax)
    v = np.asarray(vectors, dtype=np.float64)
    if v.shape[-1] != 3:
        raise ValueError(f"vectors must have a last axis of size 3, got shape {v.shape}")
    if normalize:
        sq = np.sum(v * v, axis=-1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            v = np.where(sq > 0, v / np.sqrt(np.where(sq > 0, sq, 1.0)), 0.0)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    rows = _harmonics_from_components(x, y, z, x * x + y * y + z * z, lmax, normalization)
    return np.stack([c for row in rows for c in row], axis=-1)


def spherical_harmonics(lmax: int, vectors, normalization: str = "component", normalize: bool = True):
    """Real spherical harmonics of 3-vectors, as a TensorFlow op (XLA-compatible).

    Args:
        lmax: largest l, 0..8 (a Python int: it fixes the output width).
        vectors: [..., 3] float tensor (float32 or float64), e.g. edge vectors in Angstrom.
        normalization: "component" (sum_m Y_m^2 = 2l + 1) or "integral" (orthonormal).
        normalize: evaluate on vectors / |vectors| (spherical harmonics). With False the
            result is the solid harmonic |r|^l Y^l(r_hat), a polynomial in x, y, z.

    Returns:
        [..., (lmax + 1)^2] tensor of the input dtype; Y^l sits at columns l^2 .. (l+1)^2 - 1,
        ordered m = -l..l. Contract: Y^l(Q r) = D^l(Q) Y^l(r) (``deeph_tf.so3.wigner``).
    """
    import tensorflow as tf

    _check_lmax(lmax)
    v = tf.convert_to_tensor(vectors)
    if not v.dtype.is_floating:
        raise TypeError(f"vectors must be a float tensor, got {v.dtype}")
    if v.shape.rank is not None and v.shape[-1] is not None and v.shape[-1] != 3:
        raise ValueError(f"vectors must have a last axis of size 3, got shape {v.shape}")
    if normalize:
        sq = tf.reduce_sum(v * v, axis=-1, keepdims=True)
        nonzero = sq > 0
        # Double-where keeps gradients finite at the origin.
        safe = tf.where(nonzero, sq, tf.ones_like(sq))
        v = tf.where(nonzero, v * tf.math.rsqrt(safe), tf.zeros_like(v))
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    rows = _harmonics_from_components(x, y, z, x * x + y * y + z * z, lmax, normalization)
    return tf.stack([c for row in rows for c in row], axis=-1)

