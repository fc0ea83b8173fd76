#!/usr/bin/env python
"""One command for the README's speed table: training and inference throughput of the light
and accurate presets, graph building and pipeline throughput, peak memory.

    python benchmarks/suite.py                                  # water and the graphene crystal set
    python benchmarks/suite.py --dataset DIR --batch-size 8 --tag mymachine
    python benchmarks/suite.py --crystal-dataset none           # molecules only

Runs, each in its own process (so peak memory is per job):
``model_throughput.py --preset light`` and ``--preset accurate`` (training structures/s and
edges/s, inference structures/s, compilations, peak RSS, FLOP/s fraction) on the molecule set
and on the crystal set (``examples/graphene/dft``: 8-atom displaced graphene supercells, CP2K,
about 460 edges per structure, self-images included; ``--crystal-batch-size``, default 1), plus
an L = 6 configuration there (:data:`L6_IRREPS`), and
``data_pipeline.py`` (graph building per worker, tf.data graphs/s, disk-mode RSS).
Prints a summary and writes benchmarks/results/suite[-TAG].json with the machine it ran on.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import machine_info, write_result  # noqa: E402

RESULTS = HERE / "results"
#: The L = 6 configuration of the crystal runs: deepx's demo multiplicities
#: (64x0e+48x1e+32x2e+16x3e+8x4e+8x5e+4x6e) with this model's parities, 3 blocks, edge harmonics to l = 6.
L6_IRREPS = "64x0e+48x1o+32x2e+16x3o+8x4e+8x5o+4x6e"


def _run(arguments, result_name: str) -> dict:
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, *arguments], capture_output=True, text=True)
    if completed.returncode != 0:
        print(completed.stdout[-2000:] + completed.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"suite: {' '.join(arguments)} failed")
    for line in completed.stdout.splitlines():
        if not line.startswith("wrote "):
            print("  " + line, flush=True)
    result = json.loads((RESULTS / f"{result_name}.json").read_text())
    result["wall_s"] = time.perf_counter() - started
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=HERE.parent / "examples" / "water" / "dft")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per preset")
    parser.add_argument("--pipeline-structures", type=int, default=1000,
                        help="structures for the graph-building/pipeline part (its disk test uses 4x)")
    parser.add_argument("--crystal-dataset", default=str(HERE.parent / "examples" / "graphene" / "dft"),
                        help="the crystal set ('none' to skip)")
    parser.add_argument("--crystal-batch-size", type=int, default=1)
    parser.add_argument("--tag", default="")
    args = parser.parse_args()

    results = {}
    sets = [("", args.dataset, args.batch_size)]
    if args.crystal_dataset.lower() != "none":
        sets.append(("crystal-", Path(args.crystal_dataset), args.crystal_batch_size))
    for prefix, dataset, batch_size in sets:
        configurations = [(preset, ["--preset", preset]) for preset in ("light", "accurate")]
        if prefix:  # deepx's demo size on the crystals: L = 6 hidden features and edge harmonics
            configurations.append(("L6", ["--preset", "light", "--irreps", L6_IRREPS, "--lmax-sh", "6"]))
        for name, options in configurations:
            print(f"{prefix}{name} ({dataset}, batch {batch_size}):", flush=True)
            results[prefix + name] = _run(
                [str(HERE / "model_throughput.py"), "--dataset", str(dataset), *options,
                 "--batch-size", str(batch_size), "--steps", str(args.steps), "--tag", f"suite-{prefix}{name}"],
                f"model_throughput-suite-{prefix}{name}")
    print("data pipeline:", flush=True)
    results["data"] = _run([str(HERE / "data_pipeline.py"), "--source", str(args.dataset), "--structures",
                            str(args.pipeline_structures), "--batch-size", str(args.batch_size)], "data_pipeline")
    keys = ("parameters", "train_structures_per_s", "train_edges_per_s", "inference_structures_per_s",
            "peak_rss_mib", "fraction_of_matmul_peak", "padded_edge_fraction", "edges_per_structure_median")
    summary = {name: {key: run.get(key) for key in keys} for name, run in results.items() if name != "data"}
    summary["graph_building_structures_per_s_per_worker"] = results["data"].get("build_structures_per_s_1_worker")
    result = {"benchmark": "suite", "machine": machine_info(), "dataset": str(args.dataset),
              "batch_size": args.batch_size, "crystal_dataset": args.crystal_dataset,
              "crystal_batch_size": args.crystal_batch_size, "summary": summary, "runs": results}
    path = write_result("suite" + (f"-{args.tag}" if args.tag else ""), result)
    print(json.dumps(summary, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
