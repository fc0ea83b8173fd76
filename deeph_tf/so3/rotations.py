"""Random and Euler-angle rotation matrices, through tensorflow-graphics.

deeph_tf uses tensorflow-graphics only here (its ``geometry.transformation`` module), for
test rotations and data augmentation. Matrices follow ``deeph_tf.conventions``: r' = Q r.
"""
from __future__ import annotations

import numpy as np


def _transformation_module():
    try:
        from tensorflow_graphics.geometry.transformation import quaternion, rotation_matrix_3d
    except ImportError as error:  # pragma: no cover - exercised only on broken installs
        raise ImportError(
            "tensorflow-graphics is needed for random rotations; install it with "
            "'pip install --no-deps tensorflow-graphics==2021.12.3 six' (tools/setup_env.sh does this)"
        ) from error
    return quaternion, rotation_matrix_3d


def random_rotation_matrices(count: int, seed: int, dtype="float64"):
    """``count`` uniformly distributed proper rotations, [count, 3, 3] TF tensor.

    Uniform on SO(3): normalized Gaussian quaternions (seeded, reproducible), converted by
    ``tensorflow_graphics.geometry.transformation.rotation_matrix_3d.from_quaternion``.
    """
    import tensorflow as tf

    quaternion, rotation_matrix_3d = _transformation_module()
    raw = np.random.default_rng(seed).normal(size=(count, 4))
    q = quaternion.normalize(tf.constant(raw, dtype=dtype))
    return rotation_matrix_3d.from_quaternion(q)

