"""Data-parallel loss normalization, without Horovod: two workers' step is the one-worker step.

Two "workers" (threads) hold structures of different sizes (unequal numbers of counted entries
and different wmae scales). Each runs ``CompiledSteps.train`` with a gradient transform that sums
over both threads, as Horovod's all-reduce sums over processes; their update must equal one
worker's update on the union batch.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading

import numpy as np
import pytest

from conftest import REPO_ROOT

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "mixed_molecules" / "dft"
#: Relative tolerance on the updates (float64 model): the two paths differ only in the order of
#: float64 sums and in padding (measured 3e-13 of the largest update); any error in the
#: normalization is of order one (the per-batch wmae scales of these structures differ by tens
#: of percent; the entry counts by a factor of ~3).
RTOL = 1e-10


def _batches(tmp_path):
    from deeph_tf.data.pipeline import GraphSet
    from deeph_tf.data.shards import GraphBuildOptions, build_graph_sets

    ids = ["water-000002", "methanol-000005"]  # 3 vs 6 atoms: unequal entry counts
    (tmp_path / "split.json").write_text(json.dumps({"train": ids, "validate": [], "test": []}))
    build_graph_sets(FIXTURE, tmp_path / "g", GraphBuildOptions(dtype="float64", split={"file": str(tmp_path / "split.json")},
                                                                structures_per_shard=1, num_workers=1))
    graph_set = GraphSet(tmp_path / "g")
    singles = [next(iter(graph_set.dataset("train", 1, worker_index=k, num_workers=2, num_buckets=1)[0])) for k in (0, 1)]
    union = next(iter(graph_set.dataset("train", 2, num_buckets=1)[0]))
    return graph_set, singles, union


class TwoThreadSum:
    """A gradient transform summing over two threads (what hvd.grouped_allreduce does over processes)."""

    def __init__(self):
        self._barrier = threading.Barrier(2, timeout=300)
        self._slots = [None, None]

    def for_rank(self, rank: int):
        def transform(tensors, count):
            import tensorflow as tf

            self._slots[rank] = [np.asarray(t) for t in list(tensors) + [count]]
            self._barrier.wait()
            summed = [a + b for a, b in zip(*self._slots)]  # same order on both ranks
            self._barrier.wait()
            return [tf.constant(x) for x in summed[:-1]], tf.constant(summed[-1])

        return transform


@pytest.mark.parametrize("loss", ["mae", "wmae"])
def test_two_workers_take_the_union_batch_step(tmp_path, loss):
    import keras

    from deeph_tf.model.builder import model_from_config
    import tensorflow as tf

    from deeph_tf.model.network import HamiltonianModel, model_inputs
    from deeph_tf.train.step import CompiledSteps

    graph_set, singles, union = _batches(tmp_path)
    counts = [int(np.sum(b["node_mask"]) + np.sum(b["edge_mask"])) for b in singles]
    assert counts[0] != counts[1]
    config = HamiltonianModel(graph_set.layout.elements, graph_set.layout.common_shells, irreps_hidden="8x0e+4x1o+4x2e",
                              num_blocks=2, lmax_sh=2, radial_hidden=[8], dtype="float64").get_config()

    def steps(gradient_transform=None) -> CompiledSteps:
        keras.utils.set_random_seed(3)
        model = model_from_config(config)
        optimizer = keras.optimizers.SGD(0.1)
        optimizer.build(model.trainable_variables)
        return CompiledSteps(model, optimizer, loss=loss, jit_compile=False, gradient_transform=gradient_transform)

    collective = TwoThreadSum()
    one, workers = steps(), [steps(collective.for_rank(rank)) for rank in (0, 1)]  # built here: same seeds
    before = [w.numpy() for w in one.model.trainable_weights]
    with tf.GradientTape() as tape:
        union_loss = one.objective.loss(one.model(model_inputs(union)), union)
    gradients = [np.abs(tf.convert_to_tensor(g).numpy()).max() for g in tape.gradient(union_loss, one.model.trainable_variables)]
    has_gradient = [g > 1e-10 * max(gradients) for g in gradients]  # not round-off of an exact zero
    for worker in workers:
        assert all(np.array_equal(a.numpy(), b) for a, b in zip(worker.model.trainable_weights, before))
    one.train(union)
    threads = [threading.Thread(target=worker.train, args=(batch,)) for worker, batch in zip(workers, singles)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = [w.numpy() - w0 for w, w0 in zip(one.model.trainable_weights, before)]
    assert len(expected) == len(before) > 0
    # SGD moves every weight with a gradient. The few without one cannot reach the loss (on-site
    # 1e/3e channels, removed by the Hermitian symmetrization); round-off of their exact zero
    # gradients may move them by less than 1e-10 of the largest update.
    moved = [bool(np.abs(step).max() > 1e-10 * max(np.abs(e).max() for e in expected)) for step in expected]
    assert moved == has_gradient and sum(moved) > 0.9 * len(moved), (sum(moved), len(moved))
    for worker in workers:
        for step, w, w0 in zip(expected, worker.model.trainable_weights, before):
            np.testing.assert_allclose(w.numpy() - w0, step, rtol=RTOL, atol=RTOL * np.abs(step).max())


def _detect_without_horovod(size: str) -> subprocess.CompletedProcess:
    code = ("import logging, os, sys\n"
            f"os.environ['HOROVOD_SIZE'] = {size!r}\n"
            "sys.modules['horovod'] = None  # not importable\n"
            "logging.basicConfig(level=logging.INFO)\n"
            "from deeph_tf.train.distributed import detect_workers\n"
            "try:\n    w = detect_workers()\n    print('SERIAL', w.rank, w.size)\n"
            "except RuntimeError as e:\n    print('ERR', e)\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_without_horovod_dtrain_runs_serially_with_one_warning():
    result = _detect_without_horovod("1")
    assert "SERIAL 0 1" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "Horovod is not installed" in warnings[0]


def test_launched_by_horovodrun_without_horovod_is_a_clear_error():
    result = _detect_without_horovod("2")
    assert "ERR" in result.stdout and "2 processes" in result.stdout and "install_horovod.sh" in result.stdout
