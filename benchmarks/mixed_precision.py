#!/usr/bin/env python
"""Accuracy cost and speed of mixed precision (bf16 message passing) against float32.

    python benchmarks/mixed_precision.py --dataset examples/water/dft --steps 400

Trains the same model (same seed, same batches) in float32 and in mixed_bfloat16, then reports
the MAE on held-out structures (raw and gauge-corrected, meV) and the median step time of
each. Writes benchmarks/results/mixed_precision.json.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _common import machine_info, write_result  # noqa: E402


def train_and_score(graph_set, precision: str, args) -> dict:
    import keras

    from deeph_tf.model.builder import build_model
    from deeph_tf.model.network import model_inputs
    from deeph_tf.model.statistics import compute_statistics
    from deeph_tf.train.step import CompiledSteps

    keras.utils.set_random_seed(args.seed)
    stats = compute_statistics(graph_set)
    model = build_model({"preset": args.preset, "precision": precision, "cutoff": "auto"}, graph_set.layout, stats)
    train, _ = graph_set.dataset("train", batch_size=args.batch_size, shuffle=True, repeat=True, seed=args.seed)
    batches = iter(train)
    first = next(batches)
    model(model_inputs(first))
    schedule = keras.optimizers.schedules.CosineDecay(args.lr, args.steps, alpha=1e-2)
    steps = CompiledSteps(model, keras.optimizers.Adam(schedule))
    times = []
    for step in range(args.steps):
        batch = first if step == 0 else next(batches)
        start = time.perf_counter()
        steps.train(batch)["loss"].numpy()
        times.append(time.perf_counter() - start)
    test, _ = graph_set.dataset("test", batch_size=args.batch_size)
    total = total_gauge = count = 0.0
    for batch in test:
        out = steps.evaluate(batch)
        total += float(out["abs_error_sum"])
        total_gauge += float(out.get("abs_error_sum_gauge", out["abs_error_sum"]))
        count += float(out["count"])
    return {
        "test_mae_meV": 1e3 * total / count,
        "test_mae_gauge_meV": 1e3 * total_gauge / count,
        "median_step_s": statistics.median(times[5:]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--preset", default="light")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from deeph_tf.data.pipeline import GraphSet
    from deeph_tf.data.shards import GraphBuildOptions, build_graph_sets

    with tempfile.TemporaryDirectory() as tmp:
        split = {"train": 0.8, "validate": 0.0, "test": 0.2, "seed": args.seed}
        build_graph_sets(args.dataset, Path(tmp) / "g", GraphBuildOptions(split=split))
        graph_set = GraphSet(Path(tmp) / "g")
        rows = {p: train_and_score(graph_set, p, args) for p in ("float32", "mixed_bfloat16")}
    f32, bf16 = rows["float32"], rows["mixed_bfloat16"]
    result = {
        "benchmark": "mixed_precision", "machine": machine_info(), "dataset": str(args.dataset),
        "preset": args.preset, "steps": args.steps, "batch_size": args.batch_size, "results": rows,
        "mae_ratio_bf16_over_f32": bf16["test_mae_meV"] / f32["test_mae_meV"],
        "speedup_bf16": f32["median_step_s"] / bf16["median_step_s"],
    }
    path = write_result("mixed_precision", result)
    for name, row in rows.items():
        print(f"{name:15s} test MAE {row['test_mae_meV']:.2f} meV (gauge-corrected {row['test_mae_gauge_meV']:.2f}), "
              f"step {1e3 * row['median_step_s']:.1f} ms")
    print(f"bf16/f32 MAE ratio {result['mae_ratio_bf16_over_f32']:.2f}, speed-up {result['speedup_bf16']:.2f}; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
