"""Real Clebsch-Gordan coefficients in DeepH's real-harmonic basis, l1, l2, L <= 8.

``clebsch_gordan(l1, l2, L)`` returns C of shape [2l1+1, 2l2+1, 2L+1] with

    (a (x) b)_L[M] = sum_{m1, m2} C[m1, m2, M] a[m1] b[m2]

Contract (tests/so3/test_clebsch_gordan.py):
    * equivariance: (D^l1 a (x) D^l2 b)_L = D^L (a (x) b)_L for every rotation;
    * orthogonality: sum_{m1 m2} C^L[m1, m2, M] C^L'[m1, m2, M'] = delta_LL' delta_MM', and
      sum_{L, M} C^L[m1, m2, M] C^L[m1', m2', M] = delta_m1m1' delta_m2m2'.

Computed once in float64: complex Condon-Shortley coefficients from Racah's formula in
exact rational arithmetic, then the unitary change of basis to the real harmonics of
``deeph_tf.so3.spherical_harmonics``. Cached per (l1, l2, L); callers get a copy in the
dtype they ask for. Never computed inside a training step.
"""
from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

import numpy as np

from deeph_tf.conventions import LMAX_SUPPORTED


def _check_triplet(l1: int, l2: int, l3: int) -> None:
    for name, value in (("l1", l1), ("l2", l2), ("L", l3)):
        if not isinstance(value, (int, np.integer)) or not 0 <= value <= LMAX_SUPPORTED:
            raise ValueError(f"{name} must be an integer in 0..{LMAX_SUPPORTED}, got {value!r}")
    if not abs(l1 - l2) <= l3 <= l1 + l2:
        raise ValueError(f"L={l3} is not in |l1-l2|..l1+l2 for l1={l1}, l2={l2}: coefficients vanish")


def _complex_cg(j1: int, m1: int, j2: int, m2: int, j3: int, m3: int) -> float:
    """<j1 m1 j2 m2 | j3 m3> with the Condon-Shortley phase (Racah's formula, exact rationals)."""
    if m1 + m2 != m3 or abs(m1) > j1 or abs(m2) > j2 or abs(m3) > j3:
        return 0.0
    f = math.factorial
    prefactor = Fraction(
        (2 * j3 + 1) * f(j3 + j1 - j2) * f(j3 - j1 + j2) * f(j1 + j2 - j3),
        f(j1 + j2 + j3 + 1),
    ) * (f(j3 + m3) * f(j3 - m3) * f(j1 - m1) * f(j1 + m1) * f(j2 - m2) * f(j2 + m2))
    total = Fraction(0)
    for k in range(0, j1 + j2 - j3 + 1):
        denominators = (j1 + j2 - j3 - k, j1 - m1 - k, j2 + m2 - k, j3 - j2 + m1 + k, j3 - j1 - m2 + k)
        if min(denominators) < 0:
            continue
        term = Fraction((-1) ** k, f(k) * math.prod(f(d) for d in denominators))
        total += term
    if total == 0:
        return 0.0
    return math.copysign(math.sqrt(prefactor * total * total), total)


@lru_cache(maxsize=None)
def complex_to_real_matrix(l: int) -> np.ndarray:
    """U^l with Y_real = U Y_complex, [2l+1 (real m), 2l+1 (complex m)] complex128, unitary.

    Real m > 0: (( -1)^m Y^m + Y^-m) / sqrt2;  real m < 0: i (Y^-|m| - (-1)^|m| Y^|m|) / sqrt2.
    """
    u = np.zeros((2 * l + 1, 2 * l + 1), dtype=np.complex128)
    s = 1 / math.sqrt(2)
    u[l, l] = 1.0
    for m in range(1, l + 1):
        sign = (-1) ** m
        u[l + m, l + m] = sign * s
        u[l + m, l - m] = s
        u[l - m, l - m] = 1j * s
        u[l - m, l + m] = -1j * sign * s
    return u


@lru_cache(maxsize=None)
def _real_cg_float64(l1: int, l2: int, l3: int) -> np.ndarray:
    complex_cg = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1))
    for m1 in range(-l1, l1 + 1):
        for m2 in range(-l2, l2 + 1):
            m3 = m1 + m2
            if abs(m3) <= l3:
                complex_cg[l1 + m1, l2 + m2, l3 + m3] = _complex_cg(l1, m1, l2, m2, l3, m3)
    u1, u2, u3 = complex_to_real_matrix(l1), complex_to_real_matrix(l2), complex_to_real_matrix(l3)
    real = np.einsum("ai,bj,ck,ijk->abc", u1.conj(), u2.conj(), u3, complex_cg)
    # The result is real or purely imaginary (a global phase): keep the non-vanishing part.
    if np.abs(real.imag).max() > np.abs(real.real).max():
        real = real * -1j
    if np.abs(real.imag).max() > 1e-12:
        raise RuntimeError(f"real Clebsch-Gordan ({l1},{l2},{l3}) is not real: bug in the basis change")
    result = np.ascontiguousarray(real.real)
    # Fix the overall sign deterministically: first entry of largest magnitude is positive.
    flat = result.reshape(-1)
    pivot = flat[np.argmax(np.abs(flat) > np.abs(flat).max() * (1 - 1e-9))]
    result = result if pivot > 0 else -result
    result.setflags(write=False)
    return result


def clebsch_gordan(l1: int, l2: int, big_l: int, dtype=np.float64) -> np.ndarray:
    """Real Clebsch-Gordan tensor C[m1, m2, M], shape [2l1+1, 2l2+1, 2L+1] (a fresh copy).

    Args:
        l1, l2: angular momenta of the two inputs (0..8).
        big_l: output angular momentum, |l1 - l2| <= L <= l1 + l2 (and <= 8).
        dtype: NumPy dtype of the returned copy (float64 default; float32 for TF constants).
    """
    _check_triplet(l1, l2, big_l)
    return _real_cg_float64(int(l1), int(l2), int(big_l)).astype(dtype, copy=True)
