"""SO(3)/O(3) math in DeepH's real-harmonic basis (m = -l..l, no Condon-Shortley phase).

* :mod:`~deeph_tf.so3.irreps`: ``Irrep``, ``Irreps`` ("64x0e+32x1o+16x2e").
* :mod:`~deeph_tf.so3.spherical_harmonics`: Y^l(r), l <= 8, NumPy reference and TF op.
* :mod:`~deeph_tf.so3.wigner`: real Wigner-D matrices, Y^l(Q r) = D^l(Q) Y^l(r).
* :mod:`~deeph_tf.so3.clebsch_gordan`: real Clebsch-Gordan tensors, cached in float64.
* :mod:`~deeph_tf.so3.block_coupling`: orbital block <-> direct sum of irreps.

Importing this package does not import TensorFlow; the TF ops import it when called.
"""
from deeph_tf.so3.block_coupling import OrbitalBlockCoupling, ShellPairCoupling
from deeph_tf.so3.clebsch_gordan import clebsch_gordan
from deeph_tf.so3.irreps import Irrep, Irreps, MulIrrep, coupled_irreps, irreps_of_block_layout
from deeph_tf.so3.spherical_harmonics import spherical_harmonics, spherical_harmonics_numpy
from deeph_tf.so3.wigner import (
    edge_alignment_angles,
    wigner_D,
    wigner_D_from_euler,
    wigner_D_numpy,
    z_rotation_D,
)

__all__ = [
    "Irrep",
    "Irreps",
    "MulIrrep",
    "coupled_irreps",
    "irreps_of_block_layout",
    "spherical_harmonics",
    "spherical_harmonics_numpy",
    "wigner_D",
    "wigner_D_numpy",
    "wigner_D_from_euler",
    "z_rotation_D",
    "edge_alignment_angles",
    "clebsch_gordan",
    "ShellPairCoupling",
    "OrbitalBlockCoupling",
]
