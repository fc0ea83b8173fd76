#!/usr/bin/env python
"""Training and inference throughput of the Hamiltonian model on a DeepH-format dataset.

    python benchmarks/model_throughput.py --dataset examples/water/dft --preset light --batch-size 8
    python benchmarks/model_throughput.py --dataset DIR --irreps 64x0e+32x1o+16x2e+8x3o+8x4e --blocks 3

Reports (median over timed steps, after every bucket shape has been compiled once):
training structures/s and edges/s, inference structures/s, XLA compilations (traces), compile
time, peak RSS, and the achieved FLOP/s of the training step (dot FLOPs counted in the optimized
HLO) as a fraction of this machine's dense-matmul FLOP/s measured in the same run, and the
padding of the buckets: per bucket the share of batches and the fraction of padded nodes and
edges (over simulated shuffled epochs, :func:`deeph_tf.data.buckets.padding_fractions`), and
the fraction of all edge slots that are padding (:func:`deeph_tf.data.buckets.overall_padding`).
FLOPs are counted per bucket shape (each bucket compiles its own step), so the achieved FLOP/s
is the sum of the timed steps' FLOPs over the sum of their times, every bucket weighted by the
batches that used it.
Writes JSON to benchmarks/results/model_throughput[-TAG].json.
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

from _common import hlo_dot_flops, machine_info, matmul_flops_per_s, peak_rss_mib, write_result  # noqa: E402


def bucket_of(batch) -> tuple:
    """(nodes, edges) of a padded batch: the bucket shape its compiled step was traced for."""
    return int(batch["species"].shape[0]), int(batch["edge_src"].shape[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, required=True, help="a dft/ folder (or any folder of structures)")
    parser.add_argument("--preset", default="light")
    parser.add_argument("--irreps", help="override the preset's hidden irreps")
    parser.add_argument("--blocks", type=int, help="override the preset's number of blocks")
    parser.add_argument("--lmax-sh", type=int, help="override the preset's spherical-harmonic degree of the edges")
    parser.add_argument("--convolution", default="so2", choices=["so2", "cg"])
    parser.add_argument("--precision", default="float32", choices=["float32", "float64", "mixed_bfloat16"])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--max-structures", type=int, default=0, help="use at most this many structures (0: all)")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()

    import keras

    try:
        from deeph_tf.data.buckets import overall_padding, padding_fractions
    except ImportError:  # a checkout before data/buckets.py (PYTHONPATH=OLD_CHECKOUT, to compare buckets):
        from deeph_tf.data.pipeline import padding_fractions  # per-bucket padding only (padding.py pools it)
        overall_padding = None
    from deeph_tf.data.pipeline import GraphSet
    from deeph_tf.data.shards import GraphBuildOptions, build_graph_sets
    from deeph_tf.model.backbone import PRESETS
    from deeph_tf.model.network import HamiltonianModel, model_inputs
    from deeph_tf.model.statistics import compute_statistics
    from deeph_tf.train.step import CompiledSteps

    data_dtype = "float64" if args.precision == "float64" else "float32"
    with tempfile.TemporaryDirectory() as tmp:
        split = None
        if args.max_structures:
            split = {"train": args.max_structures, "validate": 0, "test": 0, "seed": 0}
        build_graph_sets(args.dataset, Path(tmp) / "g", GraphBuildOptions(dtype=data_dtype, split=split))
        graph_set = GraphSet(Path(tmp) / "g")
        stats = compute_statistics(graph_set)
        options = dict(PRESETS[args.preset])
        if args.irreps:
            options["irreps_hidden"] = args.irreps
        if args.blocks:
            options["num_blocks"] = args.blocks
        if args.lmax_sh:
            options["lmax_sh"] = args.lmax_sh
        model = HamiltonianModel(
            graph_set.layout.elements, graph_set.layout.common_shells, cutoff=stats.max_edge_length + 0.5,
            avg_num_neighbors=stats.avg_num_neighbors, node_scale=stats.node_scale, node_shift=stats.node_shift,
            edge_scale=stats.edge_scale, convolution=args.convolution, dtype=args.precision, **options,
        )
        dataset, buckets = graph_set.dataset("train", batch_size=args.batch_size, shuffle=True, repeat=True, seed=0)
        batches = iter(dataset)
        first = next(batches)
        model(model_inputs(first))
        steps = CompiledSteps(model, keras.optimizers.Adam(1e-3))
        n_structures = graph_set.index["subsets"]["train"]["counts"]["structures"]
        shards = graph_set.shards("train")
        train_atoms = [n for shard in shards for n in shard["n_atoms"]]
        train_edges_each = [n for shard in shards for n in shard["n_edges"]]
        padding = padding_fractions(train_atoms, train_edges_each, args.batch_size, buckets[0])
        pooled = overall_padding(padding) if overall_padding is not None else {}

        # Compile every bucket shape once (a full pass of batches), timing it.
        start = time.perf_counter()
        warm = [next(batches) for _ in range(max(1, n_structures // args.batch_size))]
        for batch in warm:
            steps.train(batch)["loss"].numpy()
        compile_seconds = time.perf_counter() - start

        # the timed batches; a bucket shape the first pass missed is compiled before the timing
        timed = [next(batches) for _ in range(args.steps)]
        seen = {bucket_of(batch) for batch in [first, *warm]}
        for batch in timed:
            if bucket_of(batch) not in seen:
                steps.train(batch)["loss"].numpy()
                seen.add(bucket_of(batch))
                warm.append(batch)
        times, graphs, edges, shapes = [], [], [], []
        for batch in timed:
            shapes.append(bucket_of(batch))
            n_graphs = int(batch["graph_valid"].numpy().sum())
            n_edges = int(batch["edge_valid"].numpy().sum())
            start = time.perf_counter()
            steps.train(batch)["loss"].numpy()
            times.append(time.perf_counter() - start)
            graphs.append(n_graphs)
            edges.append(n_edges)
        step_time = statistics.median(times)
        train_structures = statistics.median([g / t for g, t in zip(graphs, times)])
        train_edges = statistics.median([e / t for e, t in zip(edges, times)])

        eval_times = []
        for batch in warm[: max(3, min(len(warm), 10))]:
            steps.evaluate(batch)["loss"].numpy()  # compile
        for batch in warm[: max(3, min(len(warm), 10))]:
            start = time.perf_counter()
            steps.evaluate(batch)["loss"].numpy()
            eval_times.append((int(batch["graph_valid"].numpy().sum()), time.perf_counter() - start))
        inference = statistics.median([g / t for g, t in eval_times])

        # dot FLOPs of the compiled step of every bucket shape seen, from one batch of that shape
        example = {bucket_of(batch): batch for batch in [first, *warm]}
        flops_of = {shape: hlo_dot_flops(steps._train.experimental_get_compiler_ir(model_inputs(batch))(
            stage="optimized_hlo")) for shape, batch in example.items()}
        timed_flops = [flops_of[shape] for shape in shapes]
        achieved = sum(timed_flops) / sum(times)
        per_bucket = [{"n_nodes": shape[0], "n_edges": shape[1], "train_step_dot_flops": flops_of[shape],
                       "timed_steps": shapes.count(shape),
                       "train_step_median_s": (statistics.median([t for t, k in zip(times, shapes) if k == shape])
                                               if shape in shapes else None)} for shape in sorted(flops_of)]
        machine_flops = matmul_flops_per_s(dtype="float32" if args.precision != "float64" else "float64")

    result = {
        "benchmark": "model_throughput",
        "machine": machine_info(),
        "dataset": str(args.dataset),
        "structures": n_structures,
        "preset": args.preset,
        "irreps_hidden": str(model.irreps_hidden),
        "num_blocks": model.num_blocks,
        "lmax_sh": options["lmax_sh"],
        "parameters": int(model.count_params()),
        "convolution": args.convolution,
        "precision": args.precision,
        "batch_size": args.batch_size,
        "buckets": [(b.n_nodes, b.n_edges) for b in buckets[0]],
        "padding_per_bucket": padding,
        **pooled,
        "per_bucket": per_bucket,
        "edges_per_structure_median": statistics.median(train_edges_each),
        "train_structures_per_s": train_structures,
        "train_edges_per_s": train_edges,
        "train_step_median_s": step_time,
        # over all timed steps together (mixed buckets: the figure an epoch sees)
        "train_structures_per_s_overall": sum(graphs) / sum(times),
        "train_seconds_timed": sum(times),
        "inference_structures_per_s": inference,
        "xla_train_compilations": steps.train_traces,
        "xla_eval_compilations": steps.eval_traces,
        "compile_and_first_pass_s": compile_seconds,
        "peak_rss_mib": peak_rss_mib(),
        "train_step_dot_flops_mean": sum(timed_flops) / len(timed_flops),
        "achieved_flops_per_s": achieved,
        "machine_matmul_flops_per_s": machine_flops,
        "fraction_of_matmul_peak": achieved / machine_flops,
    }
    tag = f"-{args.tag}" if args.tag else ""
    path = write_result(f"model_throughput{tag}", result)
    print(
        f"{args.preset} ({result['parameters']} params, {args.convolution}, {args.precision}, batch {args.batch_size}): "
        f"train {train_structures:.1f} structures/s ({train_edges:.0f} edges/s), inference {inference:.1f} structures/s, "
        f"{steps.train_traces} train compilations, peak RSS {result['peak_rss_mib']:.0f} MiB, "
        f"{result['achieved_flops_per_s'] / 1e9:.2f} GFLOP/s = {100 * result['fraction_of_matmul_peak']:.1f}% of matmul peak "
        f"({machine_flops / 1e9:.0f} GFLOP/s); {100 * result.get('padded_edge_fraction', float('nan')):.0f}% of the edge slots "
        "are padding"
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
