"""Test-wide settings: quiet TensorFlow, capped threads, fixed seeds, shared-data paths.

Environment variables are set before TensorFlow is imported by any test module.
"""
from __future__ import annotations

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
#: Real DFT data from DeepH-dock, beside the checkout; tests that use it skip without it.
SHARED_EXAMPLES = REPO_ROOT.parent / "shared" / "data" / "deeph-dock-examples"


def _configure_tensorflow() -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.get_logger().setLevel("ERROR")


@pytest.fixture(scope="session", autouse=True)
def quiet_capped_tensorflow():
    """Cap TF at 2 intra-op threads (CI has 2 cores) before any op runs."""
    _configure_tensorflow()
    yield


@pytest.fixture
def rng():
    """A NumPy generator with a fixed seed, fresh for every test."""
    return np.random.default_rng(20261121)


@pytest.fixture(params=["float32", "float64"])
def float_dtype(request):
    """Run a test in both precisions; pair with :data:`TOLERANCE`."""
    return request.param


#: Absolute tolerances per dtype for O(1) quantities (the issue's acceptance numbers).
TOLERANCE = {"float32": 1e-5, "float64": 1e-10}


def shared_path(*parts: str) -> pathlib.Path:
    return SHARED_EXAMPLES.joinpath(*parts)


requires_shared = pytest.mark.skipif(
    not SHARED_EXAMPLES.exists(), reason=f"shared DeepH-dock examples not found at {SHARED_EXAMPLES}"
)


#: Our PySCF fixture: one water molecule in 4 orientations (examples/water_rotated).
WATER = REPO_ROOT / "examples" / "water_rotated" / "dft"


@pytest.fixture
def water_dataset(tmp_path):
    """A dft/ folder of 12 PySCF water structures (the 4 rotated copies, 3 times each)."""
    import shutil

    dft = tmp_path / "inputs" / "dft"
    for k in range(12):
        shutil.copytree(WATER / str(k % 4), dft / f"w{k:02d}", ignore=shutil.ignore_patterns("euler_angle"))
    return dft
