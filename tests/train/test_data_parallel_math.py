"""Data-parallel loss normalization, without Horovod: worker sums add up to the one-worker step.

Two "workers" hold structures of different sizes (unequal numbers of counted entries). Each
differentiates its summed loss; the sums and counts are added (what the all-reduce does),
and the update must equal one worker's update on the union batch.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from conftest import REPO_ROOT

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "mixed_molecules" / "dft"


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


def test_summed_worker_gradients_equal_the_union_batch_step(tmp_path):
    import keras

    from deeph_tf.model.builder import model_from_config
    from deeph_tf.model.network import HamiltonianModel, model_inputs
    from deeph_tf.train.step import CompiledSteps

    graph_set, singles, union = _batches(tmp_path)
    counts = [int(np.sum(b["node_mask"]) + np.sum(b["edge_mask"])) for b in singles]
    assert counts[0] != counts[1]
    config = HamiltonianModel(graph_set.layout.elements, graph_set.layout.common_shells, irreps_hidden="8x0e+4x1o+4x2e",
                              num_blocks=1, lmax_sh=2, radial_hidden=[8], dtype="float64").get_config()
    updated = []
    for mode in ("workers", "union"):
        keras.utils.set_random_seed(3)
        model = model_from_config(config)
        optimizer = keras.optimizers.SGD(0.1)
        optimizer.build(model.trainable_variables)
        steps = CompiledSteps(model, optimizer, loss="mae", jit_compile=False)
        if mode == "union":
            steps.train(union)
        else:
            sums, total = None, 0.0
            for batch in singles:
                gradients, count, _ = steps._gradient_sums(model_inputs(batch))
                sums = gradients if sums is None else [a + b for a, b in zip(sums, gradients)]
                total += float(count)
            steps._apply(sums, total)
        updated.append([w.numpy() for w in model.trainable_weights])
    changed = 0
    for a, b in zip(*updated):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
        changed += int(np.any(a != 0))
    assert changed > 0


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
