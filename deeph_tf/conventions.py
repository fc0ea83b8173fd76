"""Every physical convention of deeph_tf, in one place.

Nothing else in the package hard-codes a unit, an orbital order, a rotation
convention or a mask threshold: import them from here. The facts below follow
the DeepH unified DFT format (``inputs/dft/<sid>/...``); ``docs/conventions.md``
states each of them with the test that checks it (sections "1. Data format",
"2. Orbitals and rotations", "3. Units and constants").

Units
    Energies in eV, lengths in Angstrom, everywhere inside the package. Units are
    converted only at I/O (e.g. PySCF's Hartree and Bohr in ``tools/``).

Orbital order inside a shell of angular momentum l
    m = -l, ..., l of the real spherical harmonics *without* the Condon-Shortley
    phase:  p = (y, z, x);  d = (xy, yz, z^2, xz, x^2-y^2);  f: m = -3..3.
    Shells follow ``elements_orbital_map`` (one l per radial shell, storage order).

Real spherical harmonics (``deeph_tf.so3.spherical_harmonics``)
    Y^l_m(r) for m > 0 is sqrt(2) (-1)^m Re Y_l^m, for m < 0 sqrt(2) (-1)^m Im Y_l^|m|,
    Y^l_0 = Y_l^0, with Y_l^m the standard complex (Condon-Shortley) harmonics.
    The (-1)^m removes the Condon-Shortley phase, so Y^1 is proportional to (y, z, x).
    Default normalization "component": sum_m Y^l_m(r_hat)^2 = 2l + 1.

Rotations
    A rotation matrix Q acts on Cartesian positions as r' = Q r (column vectors).
    Real Wigner-D matrices satisfy Y^l(Q r) = D^l(Q) Y^l(r); when atoms move by Q,
    every orbital block transforms as H'_ij = D^{l_i}(Q) H_ij D^{l_j}(Q)^T.
    Euler angles are z-y-z: Q = Rz(alpha) Ry(beta) Rz(gamma), the convention of the
    ``euler_angle`` files in DeepH-dock's rotated examples.

Hermiticity
    H_ij(R) = H_ji(-R)^T (conjugate transpose for complex, spinful data).

Masks and the gauge (DeepH's error tools)
    An entry counts if the element pair really has that orbital pair and the block is
    on-site or max |S| of that shell pair exceeds ``OVERLAP_MASK_THRESHOLD``.
    H and H + mu S describe the same physics; the gauge-corrected error removes the
    best mu = <dH, S> / <S, S> per structure.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Tuple

if TYPE_CHECKING:  # NumPy is imported where it is used: config and the CLIs import this module
    import numpy as np

#: 1 Hartree in eV: 27.2113845(23), CODATA 2002, the value of the DeepH converters (and OpenMX).
#: PySCF's ``pyscf.data.nist.HARTREE2EV`` is 27.21138602, CODATA 2014.
HARTREE_TO_EV: float = 27.2113845
#: 1 Bohr in Angstrom: 0.52917721092(17), CODATA 2010, the value of ``pyscf.data.nist.BOHR``.
BOHR_TO_ANGSTROM: float = 0.52917721092

#: Largest angular momentum the SO(3) tables are built for (orbitals up to g, outputs up to 2*4).
LMAX_SUPPORTED: int = 8

#: Shell letters used in orbital-type strings like ``s3p2d1``.
SHELL_LETTERS: str = "spdfghik"

#: max |S| above which an off-site shell-pair block counts in masks and metrics.
OVERLAP_MASK_THRESHOLD: float = 1e-10

#: Default tolerance (eV) when checking that a Hamiltonian read from disk is Hermitian.
HERMITICITY_TOLERANCE_EV: float = 1e-4

#: Angular-momentum label -> letter, e.g. 2 -> "d".
def shell_letter(l: int) -> str:
    """Letter of angular momentum ``l`` ("s", "p", "d", ...)."""
    if not 0 <= l < len(SHELL_LETTERS):
        raise ValueError(f"angular momentum l={l} outside 0..{len(SHELL_LETTERS) - 1}")
    return SHELL_LETTERS[l]


def pyscf_to_deeph_permutation(l: int) -> np.ndarray:
    """Indices that reorder one PySCF real-spherical shell into DeepH's m-order.

    ``deeph_shell = pyscf_shell[perm]``. PySCF stores p shells as (x, y, z) and every
    other l as m = -l..l; DeepH stores m = -l..l for all l, so p becomes (y, z, x).
    No sign changes are needed up to l = 4 (checked on rotated PySCF data in tests).

    Returns:
        int array of shape [2l+1].
    """
    import numpy as np

    if l == 1:
        return np.array([1, 2, 0])
    return np.arange(2 * l + 1)


def orbital_types_string(shell_ls) -> str:
    """Compact string of a list of shell l's, e.g. [0, 0, 1, 1, 2] -> "s2p2d1"."""
    counts: Dict[int, int] = {}
    for l in shell_ls:
        counts[int(l)] = counts.get(int(l), 0) + 1
    return "".join(f"{shell_letter(l)}{counts[l]}" for l in sorted(counts))


def euler_zyz_to_matrix(alpha: float, beta: float, gamma: float) -> np.ndarray:
    """Rotation matrix Q = Rz(alpha) Ry(beta) Rz(gamma), angles in radians, shape [3, 3]."""
    import numpy as np

    def rz(a: float) -> np.ndarray:
        c, s = np.cos(a), np.sin(a)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

    def ry(a: float) -> np.ndarray:
        c, s = np.cos(a), np.sin(a)
        return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])

    return rz(alpha) @ ry(beta) @ rz(gamma)


def matrix_to_euler_zyz(q: np.ndarray) -> Tuple[float, float, float]:
    """Inverse of :func:`euler_zyz_to_matrix` for one proper rotation [3, 3] (radians)."""
    import numpy as np

    q = np.asarray(q, dtype=np.float64)
    beta = float(np.arctan2(np.hypot(q[2, 0], q[2, 1]), q[2, 2]))
    if np.hypot(q[2, 0], q[2, 1]) > 1e-12:
        alpha = float(np.arctan2(q[1, 2], q[0, 2]))
        gamma = float(np.arctan2(q[2, 1], -q[2, 0]))
    elif q[2, 2] > 0:  # beta = 0: only alpha + gamma is defined
        alpha, gamma = float(np.arctan2(q[1, 0], q[0, 0])), 0.0
    else:  # beta = pi: only alpha - gamma is defined
        alpha, gamma = float(np.arctan2(-q[1, 0], -q[0, 0])), 0.0
    return alpha, beta, gamma
