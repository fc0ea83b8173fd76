"""``horovodrun -np 2 -H localhost:2 --gloo dtrain input.json`` on CPU, on the PySCF fixture.

Skipped, with the reason, only where Horovod is not built (``bash tools/install_horovod.sh``;
CI runs it before the tests).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "mixed_molecules" / "dft"
BIN = Path(sys.executable).parent


def _horovod_missing() -> str:
    probe = subprocess.run([sys.executable, "-c", "import horovod.tensorflow"], capture_output=True, text=True)
    if probe.returncode != 0:
        return "Horovod is not built here (bash tools/install_horovod.sh): " + probe.stderr.strip().splitlines()[-1:][0]
    if not (BIN / "horovodrun").exists():
        return "horovodrun is not installed next to this Python"
    return ""


MISSING = _horovod_missing()
pytestmark = pytest.mark.skipif(bool(MISSING), reason=MISSING)


def write_input(folder: Path, batch_size: int, numb_steps: int, **training) -> Path:
    """Two training structures in one shard each (a worker each), SGD so updates are linear in gradients."""
    split = folder / "split.json"
    split.write_text(json.dumps({"train": ["water-000002", "methanol-000005"], "validate": ["ammonia-000001"], "test": []}))
    config = {
        "model": {"irreps_hidden": "8x0e+4x1o+4x2e", "num_blocks": 1, "lmax_sh": 2, "num_radial_basis": 4,
                  "radial_hidden": [8], "precision": "float64"},
        "learning_rate": {"type": "exp", "start_lr": 0.05, "stop_lr": 0.05, "decay_steps": 1000},
        "optimizer": {"type": "sgd"},
        "training": {
            "training_data": {"systems": str(FIXTURE), "batch_size": batch_size},
            "dataset": {"split": {"file": str(split)}, "num_buckets": 1, "graph_dir": str(folder / "graphs"),
                        "structures_per_shard": 1, "dtype": "float64", "num_workers": 1},
            "numb_steps": numb_steps, "disp_freq": 1, "save_freq": 1, "seed": 11, "scale_by_worker": "none",
            "jit_compile": False, **training,
        },
    }
    path = folder / "input.json"
    path.write_text(json.dumps(config, indent=1))
    return path


def horovodrun(folder: Path, *dtrain_args: str, background: bool = False):
    """Each rank runs in its own folder rank<k>/ so we can see which one writes files."""
    for k in (0, 1):
        (folder / f"rank{k}").mkdir(exist_ok=True)
    inner = f"cd {folder}/rank$HOROVOD_RANK && exec {BIN / 'dtrain'} {' '.join(dtrain_args)} --mpi-log workers"
    command = [str(BIN / "horovodrun"), "-np", "2", "-H", "localhost:2", "--gloo", "bash", "-c", inner]
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", TF_CPP_MIN_LOG_LEVEL="3", OMP_NUM_THREADS="1")
    if background:
        return subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)


def test_two_workers_match_one_worker_with_the_doubled_batch(tmp_path):
    from deeph_tf.artifacts.checkpoint import read_checkpoint, resolve_checkpoint

    parallel = tmp_path / "parallel"
    parallel.mkdir()
    write_input(parallel, batch_size=1, numb_steps=1)
    result = horovodrun(parallel, str(parallel / "input.json"))
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    # Only rank 0 wrote files; rank 1 logged (--mpi-log workers) and checked the weights.
    assert sorted(p.name for p in (parallel / "rank1").iterdir()) == []
    written = {p.name for p in (parallel / "rank0").iterdir()}
    assert {"out.json", "lcurve.out", "model.ckpt-1.h5", "checkpoint"} <= written
    assert "[rank 1/2]" in log and log.count("model weights identical on all 2 workers") == 2

    serial = tmp_path / "serial"
    serial.mkdir()
    write_input(serial, batch_size=2, numb_steps=1)
    single = subprocess.run([str(BIN / "dtrain"), "input.json"], cwd=serial, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert single.returncode == 0, single.stderr[-4000:]
    a = read_checkpoint(resolve_checkpoint(parallel / "rank0" / "model.ckpt"))
    b = read_checkpoint(resolve_checkpoint(serial / "model.ckpt"))
    # Same weights after the step, to float64 reduction order (all-reduce vs one batch: ~1e-16
    # relative per sum); a wrong normalization would change the update (lr * gradient, ~1e-2
    # of the weights) by a factor of order one.
    assert len(a.model_weights) == len(b.model_weights) > 0
    for wa, wb in zip(a.model_weights, b.model_weights):
        np.testing.assert_allclose(wa, wb, rtol=1e-10, atol=1e-13)
    # The validation row sums over both workers: the same printed numbers as the serial run
    # (lcurve.out prints 3 significant digits, so this checks agreement to that precision).
    lcurve_a = np.genfromtxt(parallel / "rank0" / "lcurve.out", names=True)
    lcurve_b = np.genfromtxt(serial / "lcurve.out", names=True)
    np.testing.assert_array_equal(lcurve_a["mae_val"], lcurve_b["mae_val"])


def test_restart_after_kill_under_horovodrun(tmp_path):
    from deeph_tf.artifacts.checkpoint import read_checkpoint, resolve_checkpoint

    write_input(tmp_path, batch_size=1, numb_steps=100000, save_freq=2, disp_freq=2)
    process = horovodrun(tmp_path, str(tmp_path / "input.json"), background=True)
    pointer = tmp_path / "rank0" / "checkpoint"
    deadline = time.time() + 400
    try:
        while time.time() < deadline:
            if pointer.is_file() and json.loads(pointer.read_text()).get("latest") not in (None, "model.ckpt-2.h5"):
                break
            if process.poll() is not None:
                pytest.fail("horovodrun ended early:\n" + process.stdout.read()[-4000:])
            time.sleep(1)
        else:
            pytest.fail("no checkpoint beyond step 2 within the time limit")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    killed_at = read_checkpoint(resolve_checkpoint(tmp_path / "rank0" / "model.ckpt")).step
    assert killed_at >= 4
    write_input(tmp_path, batch_size=1, numb_steps=killed_at + 2, save_freq=2, disp_freq=2)
    # Ranks run in separate folders here, so name the checkpoint by its full path (with a
    # shared working directory, as usual, "-r model.ckpt" does the same).
    result = horovodrun(tmp_path, str(tmp_path / "input.json"), "-r", str(tmp_path / "rank0" / "model.ckpt"))
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert read_checkpoint(resolve_checkpoint(tmp_path / "rank0" / "model.ckpt")).step == killed_at + 2
    steps = [int(s) for s in np.genfromtxt(tmp_path / "rank0" / "lcurve.out", names=True)["step"]]
    assert steps == sorted(set(steps)) and steps[-1] == killed_at + 2
    shutil.rmtree(tmp_path / "graphs", ignore_errors=True)
