#!/usr/bin/env python
"""Data-layer benchmark: graph-building and pipeline throughput, disk-mode peak memory.

    python benchmarks/data_pipeline.py [--source DIR] [--structures 2000]

Source: PySCF water structures in the DeepH format (examples/water/dft when present, else
examples/water_rotated/dft), replicated by hard links to the requested count (the files
are real; building reads and checks every copy). Prints the figures and writes benchmarks/results/data_pipeline.json.

Measured:
- graph building, structures/s: 1 worker process (per core) and one worker per core;
- pipeline, graphs/s delivered as padded batches (memory and disk storage);
- peak RSS while streaming the whole set in disk mode, at 1x and 4x the dataset size,
  each in a fresh process (flat = disk mode never holds the set).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, write_result  # noqa: E402


def replicate(source: Path, target: Path, count: int) -> Path:
    originals = sorted(p for p in source.iterdir() if (p / "info.json").is_file())
    dft = target / "dft"
    for k in range(count):
        folder = dft / f"{k:06d}"
        folder.mkdir(parents=True)
        for file in originals[k % len(originals)].iterdir():
            if file.suffix in (".h5", ".json") or file.name == "POSCAR":
                os.link(file, folder / file.name)
    return dft


def time_build(dft: Path, graph_dir: Path, workers: int) -> float:
    from deeph_tf.data.shards import GraphBuildOptions, build_graph_sets

    shutil.rmtree(graph_dir, ignore_errors=True)
    start = time.perf_counter()
    build_graph_sets(dft, graph_dir, GraphBuildOptions(num_workers=workers, structures_per_shard=256))
    return time.perf_counter() - start


def pipeline_rate(graph_dir: Path, storage: str, batch_size: int, repeats: int = 3) -> dict:
    from deeph_tf.data.pipeline import GraphSet

    graph_set = GraphSet(graph_dir)
    dataset, buckets = graph_set.dataset("train", batch_size=batch_size, shuffle=True, storage=storage, seed=0)
    for _ in dataset:  # warm-up epoch (fills the cache in memory mode, traces the map functions)
        pass
    rates = []
    n = graph_set.index["subsets"]["train"]["counts"]["structures"]
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in dataset:
            pass
        rates.append(n / (time.perf_counter() - start))
    return {"graphs_per_s_median": statistics.median(rates), "runs": rates, "buckets": len(buckets[0])}


def peak_rss_streaming(graph_dir: Path) -> float:
    """Peak RSS (MiB) of a fresh process streaming the whole train subset in disk mode."""
    code = (
        "import resource, sys\n"
        "from deeph_tf.data.pipeline import GraphSet\n"
        f"ds, _ = GraphSet({str(graph_dir)!r}).dataset('train', batch_size=8, shuffle=True, storage='disk', shuffle_buffer=256)\n"
        "for _ in ds: pass\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_source = REPO / "examples" / "water" / "dft"
    if not default_source.is_dir():
        default_source = REPO / "examples" / "water_rotated" / "dft"
    parser.add_argument("--source", type=Path, default=default_source)
    parser.add_argument("--structures", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow  # noqa: F401  (import once, outside the timings)

    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dft = replicate(args.source, tmp / "x1", args.structures)
        serial = time_build(dft, tmp / "g1", workers=1)
        parallel = time_build(dft, tmp / "g1", workers=cores)
        memory = pipeline_rate(tmp / "g1", "memory", args.batch_size)
        disk = pipeline_rate(tmp / "g1", "disk", args.batch_size)
        rss_1x = peak_rss_streaming(tmp / "g1")
        dft4 = replicate(args.source, tmp / "x4", 4 * args.structures)
        time_build(dft4, tmp / "g4", workers=cores)
        rss_4x = peak_rss_streaming(tmp / "g4")
        shard_bytes = sum(p.stat().st_size for p in (tmp / "g1" / "shards").iterdir())

    result = {
        "benchmark": "data_pipeline",
        "machine": machine_info(),
        "source": str(args.source),
        "structures": args.structures,
        "batch_size": args.batch_size,
        "build_structures_per_s_1_worker": args.structures / serial,
        "build_structures_per_s_all_cores": args.structures / parallel,
        "build_workers_all_cores": cores,
        "pipeline_memory": memory,
        "pipeline_disk": disk,
        "shard_bytes_per_structure": shard_bytes / args.structures,
        "disk_mode_peak_rss_mib": {"1x": rss_1x, "4x": rss_4x, "ratio_4x_over_1x": rss_4x / rss_1x},
    }
    path = write_result("data_pipeline", result)
    print(f"graph building:  {result['build_structures_per_s_1_worker']:.0f} structures/s on 1 worker (per core), "
          f"{result['build_structures_per_s_all_cores']:.0f} structures/s with {cores} workers")
    print(f"pipeline:        {memory['graphs_per_s_median']:.0f} graphs/s (memory), {disk['graphs_per_s_median']:.0f} graphs/s (disk), batch {args.batch_size}")
    print(f"disk-mode peak RSS: {rss_1x:.0f} MiB at {args.structures} structures, {rss_4x:.0f} MiB at {4 * args.structures} "
          f"(ratio {rss_4x / rss_1x:.2f})")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
