#!/usr/bin/env python
"""One command for the README's speed table: training and inference throughput of the light
and accurate presets, graph building and pipeline throughput, peak memory.

    python benchmarks/suite.py                                  # on examples/water/dft
    python benchmarks/suite.py --dataset DIR --batch-size 8 --tag mymachine

Runs, each in its own process (so peak memory is per job):
``model_throughput.py --preset light`` and ``--preset accurate`` (training structures/s and
edges/s, inference structures/s, compilations, peak RSS, FLOP/s fraction) and
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
    parser.add_argument("--tag", default="")
    args = parser.parse_args()

    results = {}
    for preset in ("light", "accurate"):
        print(f"{preset} preset:", flush=True)
        results[preset] = _run([str(HERE / "model_throughput.py"), "--dataset", str(args.dataset), "--preset", preset,
                                "--batch-size", str(args.batch_size), "--steps", str(args.steps), "--tag", f"suite-{preset}"],
                               f"model_throughput-suite-{preset}")
    print("data pipeline:", flush=True)
    results["data"] = _run([str(HERE / "data_pipeline.py"), "--source", str(args.dataset), "--structures",
                            str(args.pipeline_structures), "--batch-size", str(args.batch_size)], "data_pipeline")
    summary = {
        preset: {key: results[preset].get(key) for key in ("parameters", "train_structures_per_s", "train_edges_per_s",
                                                            "inference_structures_per_s", "peak_rss_mib",
                                                            "fraction_of_matmul_peak")}
        for preset in ("light", "accurate")
    }
    summary["graph_building_structures_per_s_per_worker"] = results["data"].get("build_structures_per_s_1_worker")
    result = {"benchmark": "suite", "machine": machine_info(), "dataset": str(args.dataset),
              "batch_size": args.batch_size, "summary": summary, "runs": results}
    path = write_result("suite" + (f"-{args.tag}" if args.tag else ""), result)
    print(json.dumps(summary, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
