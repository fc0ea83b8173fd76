#!/usr/bin/env python
"""Data-parallel (Horovod) weak scaling of the training step: fixed batch per worker.

    python benchmarks/scaling.py --dataset examples/water/dft --np 1 2          # this machine
    python benchmarks/scaling.py --dataset DIR --np 1 2 4 8 --hosts node1:4,node2:4   # a cluster

For each worker count N the script launches ``horovodrun -np N [-H HOSTS] --gloo`` (add
``--mpi`` on clusters with MPI; GPU builds of Horovod use NCCL automatically) on itself in
worker mode. Every worker trains the same model on its own shard of the training graphs
(the code path of ``horovodrun dtrain``: sharded tf.data, XLA gradients, all-reduce of the
gradient sums and entry counts, the update). After warm-up steps (compilation), the timed
steps give the total throughput (structures/s over all workers) and the efficiency
throughput(N) / (N * throughput(1)). On a 2-core CPU two workers share the cores, so
expect overhead, not speed-up; on one GPU per worker this is the weak-scaling figure.
Writes JSON to benchmarks/results/scaling[-TAG].json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _common import machine_info, peak_rss_mib, write_result  # noqa: E402

BIN = Path(sys.executable).parent


def worker(args) -> int:
    """One rank: train ``--steps`` timed steps; rank 0 prints a JSON line."""
    import keras
    import numpy as np

    from deeph_tf.data.pipeline import GraphSet
    from deeph_tf.data.shards import GraphBuildOptions, build_graph_sets
    from deeph_tf.model.builder import build_model
    from deeph_tf.model.network import model_inputs
    from deeph_tf.model.statistics import compute_statistics
    from deeph_tf.train.distributed import detect_workers
    from deeph_tf.train.step import CompiledSteps

    workers = detect_workers()
    graph_dir = Path(args.graph_dir)
    if workers.is_root:
        build_graph_sets(args.dataset, graph_dir, GraphBuildOptions(structures_per_shard=args.structures_per_shard))
    workers.barrier()
    graph_set = GraphSet(graph_dir)
    keras.utils.set_random_seed(1 + workers.rank)
    dataset, _ = graph_set.dataset("train", args.batch_size, shuffle=True, repeat=True, seed=workers.rank,
                                   num_buckets=args.num_buckets, worker_index=workers.rank, num_workers=workers.size)
    batches = iter(dataset)
    first = next(batches)
    model = build_model({"preset": args.preset, "cutoff": "auto"}, graph_set.layout, compute_statistics(graph_set))
    model(model_inputs(first))
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(model.trainable_variables)
    workers.broadcast_variables(model.weights)
    steps = CompiledSteps(model, optimizer, gradient_transform=workers.gradient_transform())
    for _ in range(args.warmup):
        steps.train(next(batches))
    workers.barrier()
    times, edges = [], 0
    for _ in range(args.steps):
        batch = next(batches)
        start = time.perf_counter()
        out = steps.train(batch)
        float(out["loss"])  # wait for the step (and its all-reduce)
        times.append(time.perf_counter() - start)
        edges += int(np.sum(batch["edge_valid"]))
    totals = workers.allreduce_sums({"edges": float(edges), "seconds": float(sum(times)),
                                     "structures": float(args.steps * args.batch_size)})
    if workers.is_root:
        seconds_per_step = statistics.median(times)
        print("RESULT " + json.dumps({
            "workers": workers.size, "batch_per_worker": args.batch_size, "median_step_s": seconds_per_step,
            "structures_per_s": workers.size * args.batch_size / seconds_per_step,
            "edges_per_s": totals["edges"] / (totals["seconds"] / workers.size),
            "peak_rss_mib_rank0": peak_rss_mib(), "compilations": steps.train_traces,
        }), flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--np", type=int, nargs="+", default=[1, 2], help="worker counts to run")
    parser.add_argument("--hosts", help="horovodrun -H value for N > local slots (default localhost:N)")
    parser.add_argument("--mpi", action="store_true", help="launch with MPI instead of Gloo")
    parser.add_argument("--preset", default="light")
    parser.add_argument("--batch-size", type=int, default=8, help="structures per worker and step")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--num-buckets", type=int, default=2)
    parser.add_argument("--structures-per-shard", type=int, default=16)
    parser.add_argument("--threads-per-worker", type=int, default=0, help="OMP/TF threads per worker (0: cores / N)")
    parser.add_argument("--tag", default="")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--graph-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.np:
            threads = args.threads_per_worker or max(1, (os.cpu_count() or 1) // n)
            command = [str(BIN / "horovodrun"), "-np", str(n), "-H", args.hosts or f"localhost:{n}",
                       "--mpi" if args.mpi else "--gloo",
                       sys.executable, __file__, "--worker", "--dataset", str(args.dataset), "--graph-dir",
                       str(Path(tmp) / "graphs"), "--preset", args.preset, "--batch-size", str(args.batch_size),
                       "--steps", str(args.steps), "--warmup", str(args.warmup), "--num-buckets", str(args.num_buckets),
                       "--structures-per-shard", str(args.structures_per_shard)]
            env = dict(os.environ, OMP_NUM_THREADS=str(threads), TF_NUM_INTRAOP_THREADS=str(threads),
                       TF_NUM_INTEROP_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3")
            started = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True, env=env)
            lines = [l for l in result.stdout.splitlines() if "RESULT " in l]
            if result.returncode != 0 or not lines:
                print((result.stdout + result.stderr)[-3000:], file=sys.stderr)
                print(f"scaling: the run with {n} worker(s) failed", file=sys.stderr)
                return 1
            run = json.loads(lines[0].split("RESULT ", 1)[1])
            run.update(threads_per_worker=threads, wall_s=time.perf_counter() - started)
            runs.append(run)
            print(f"{n} worker(s), {threads} thread(s) each: {run['structures_per_s']:.1f} structures/s, "
                  f"{run['edges_per_s']:.0f} edges/s, {1e3 * run['median_step_s']:.1f} ms/step", flush=True)
    base = next((r for r in runs if r["workers"] == 1), None)
    for run in runs:
        run["efficiency"] = run["structures_per_s"] / (run["workers"] * base["structures_per_s"]) if base else None
        if base:
            print(f"  N={run['workers']}: efficiency {run['efficiency']:.2f}")
    result = {"benchmark": "scaling", "machine": machine_info(), "dataset": str(args.dataset), "preset": args.preset,
              "batch_per_worker": args.batch_size, "steps": args.steps, "runs": runs}
    print(f"wrote {write_result('scaling' + (f'-{args.tag}' if args.tag else ''), result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
