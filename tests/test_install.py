"""The environment holds one TensorFlow distribution and the rotation utilities we rely on."""
from importlib import metadata

import pytest

TF_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos", "tf-nightly")


def test_exactly_one_tensorflow_distribution():
    installed = []
    for name in TF_DISTRIBUTIONS:
        try:
            installed.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            pass
    assert len(installed) == 1, f"expected one TensorFlow distribution, found {installed}"
    assert installed[0][1].startswith("2.21"), installed


def test_keras_3_and_graphics_rotations_import():
    import keras
    from tensorflow_graphics.geometry.transformation import quaternion, rotation_matrix_3d  # noqa: F401

    assert int(keras.__version__.split(".")[0]) == 3


def test_package_import_is_light():
    import subprocess
    import sys

    code = "import sys, deeph_tf, deeph_tf.so3, deeph_tf.conventions; assert 'tensorflow' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("name", ["h5py", "numpy", "dpdata", "jsonschema", "pyscf"])
def test_declared_dependencies_import(name):
    __import__(name)
