#!/usr/bin/env python
"""Where the compiled training step spends its time: the XLA thunks of a traced step, by kind and by layer.

    python benchmarks/profile_step.py --dataset examples/graphene/dft --preset light --batch-size 2
    python benchmarks/profile_step.py --dataset examples/water/dft --preset light --batch-size 8 --tag water

Traces ``--steps`` training steps of one bucket shape (after compiling and warming it) with the
TensorFlow profiler and sums the time of every XLA:CPU thunk (fusion, dot, gather, ...) over the
worker threads. Each thunk is mapped to its instruction in the optimized HLO of the same step:

- **kind** from the operations inside it: ``matmul`` (dot / convolution), ``gather``, ``scatter``,
  ``reduce`` (sums, incl. reduce-window trees), ``copy/transpose``, ``elementwise`` (the rest);
- **source** from its ``op_name`` metadata: the layer path with Keras' numeric suffixes dropped,
  ``bwd`` for the gradient (``gradient_tape/...``), and the TensorFlow op type.

Prints the share of each kind and the top sources (ms per step, % of thread time) and writes
``benchmarks/results/profile_step[-TAG].json``. Shares are of the summed thread time (2 threads on
2 cores); the step's wall time is reported next to it. Timings on a shared machine are noisy, the
shares much less so.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _common import machine_info, write_result  # noqa: E402

_COMPUTATION = re.compile(r"^(?:ENTRY )?%(\S+) \(.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%(\S+) = \S+(?:\{[^}]*\})? ([\w-]+)\(")
_CALLS = re.compile(r"(?:calls|to_apply|body)=%([\w.-]+)")
_OP_TYPE = re.compile(r'op_type="([^"]*)"')
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_CONTAINERS = {"ThunkExecutor::Execute"}

KIND_ORDER = ("matmul", "gather", "scatter", "reduce", "copy/transpose", "elementwise")


def parse_hlo(text: str) -> Tuple[Dict[str, dict], Dict[str, List[str]]]:
    """Instructions ``{name: {opcode, calls, op_type, op_name}}`` and computations ``{name: [opcodes]}``."""
    instructions: Dict[str, dict] = {}
    computations: Dict[str, List[str]] = defaultdict(list)
    current = None
    for line in text.splitlines():
        start = _COMPUTATION.match(line)
        if start:
            current = start.group(1)
            continue
        match = _INSTRUCTION.match(line)
        if not match:
            continue
        name, opcode = match.groups()
        computations[current].append(opcode)
        op_type, op_name = _OP_TYPE.search(line), _OP_NAME.search(line)
        instructions[name] = {"opcode": opcode, "calls": _CALLS.findall(line),
                              "op_type": op_type.group(1) if op_type else "", "op_name": op_name.group(1) if op_name else ""}
    return instructions, computations


def kind_of(instruction: dict, computations: Dict[str, List[str]]) -> str:
    """The kind of a thunk's instruction from the opcodes it (and what it calls) contains."""
    opcodes = {instruction["opcode"]}
    for called in instruction["calls"]:
        opcodes.update(computations.get(called, []))
    if opcodes & {"dot", "convolution"} or instruction["op_type"] in {"MatMul", "BatchMatMulV2", "Einsum"} and \
            instruction["opcode"] == "custom-call":
        return "matmul"
    for kind, names in (("scatter", {"scatter"}), ("gather", {"gather", "dynamic-slice"}),
                        ("reduce", {"reduce", "reduce-window"}), ("copy/transpose", {"copy", "transpose"})):
        if opcodes & names:
            return kind
    return "elementwise"


def source_of(instruction: dict) -> str:
    """``layer/path:OpType`` with numeric suffixes dropped; ``bwd`` marks gradient ops."""
    name = instruction["op_name"]
    backward = name.startswith("gradient_tape/")
    name = name.removeprefix("gradient_tape/")
    parts = [re.sub(r"(_\d+)+$", "", part) for part in name.split("/")[:-1]]
    layers = [p for p in parts if p not in ("hamiltonian_model", "") and not p.startswith(("einsum", "while"))]
    path = "/".join(layers[-2:]) if layers else "(top level)"
    return f"{'bwd ' if backward else ''}{path}:{instruction['op_type'] or instruction['opcode']}"


def thunk_times(xplane_file: str) -> Dict[str, float]:
    """Seconds per thunk name summed over the XLA worker threads of the trace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    space.ParseFromString(Path(xplane_file).read_bytes())
    totals: Dict[str, float] = defaultdict(float)
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            if line.name == "python":
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if name not in _CONTAINERS:
                    totals[name] += event.duration_ps * 1e-12
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--preset", default="light")
    parser.add_argument("--irreps", help="override the preset's hidden irreps")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--structures", type=int, default=8, help="structures to build graphs for")
    parser.add_argument("--steps", type=int, default=10, help="traced steps")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--tag", default="")
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from deeph_tf.data.pipeline import GraphSet
    from deeph_tf.data.shards import GraphBuildOptions, build_graph_sets
    from deeph_tf.model.backbone import PRESETS
    from deeph_tf.model.network import HamiltonianModel, model_inputs
    from deeph_tf.model.statistics import compute_statistics
    from deeph_tf.train.step import CompiledSteps

    with tempfile.TemporaryDirectory() as tmp:
        split = {"train": args.structures, "validate": 0, "test": 0, "seed": 0}
        build_graph_sets(args.dataset, Path(tmp) / "g", GraphBuildOptions(dtype="float32", split=split))
        graph_set = GraphSet(Path(tmp) / "g")
        stats = compute_statistics(graph_set)
        options = dict(PRESETS[args.preset])
        if args.irreps:
            options["irreps_hidden"] = args.irreps
        model = HamiltonianModel(
            graph_set.layout.elements, graph_set.layout.common_shells, cutoff=stats.max_edge_length + 0.5,
            avg_num_neighbors=stats.avg_num_neighbors, node_scale=stats.node_scale, node_shift=stats.node_shift,
            edge_scale=stats.edge_scale, **options,
        )
        dataset, _ = graph_set.dataset("train", batch_size=args.batch_size, shuffle=False, repeat=True, seed=0)
        batch = next(iter(dataset))  # one bucket shape: one compilation
        model(model_inputs(batch))
        steps = CompiledSteps(model, keras.optimizers.Adam(1e-3))
        for _ in range(3):
            steps.train(batch)["loss"].numpy()
        wall = []
        for _ in range(args.steps):
            start = time.perf_counter()
            steps.train(batch)["loss"].numpy()
            wall.append(time.perf_counter() - start)
        trace_dir = Path(tmp) / "trace"
        tf.profiler.experimental.start(str(trace_dir))
        for _ in range(args.steps):
            steps.train(batch)["loss"].numpy()
        tf.profiler.experimental.stop()
        times = thunk_times(glob.glob(str(trace_dir / "**" / "*.xplane.pb"), recursive=True)[0])
        hlo = steps._train.experimental_get_compiler_ir(model_inputs(batch))(stage="optimized_hlo")
        n_edges = int(batch["edge_valid"].numpy().sum())
        n_edges_padded = int(batch["edge_valid"].shape[0])

    instructions, computations = parse_hlo(hlo)
    by_kind: Dict[str, float] = defaultdict(float)
    by_source: Dict[str, List] = defaultdict(lambda: [0.0, ""])
    unmatched = 0.0
    for name, seconds in times.items():
        instruction = instructions.get(name)
        if instruction is None:
            unmatched += seconds
            continue
        kind = kind_of(instruction, computations)
        by_kind[kind] += seconds
        entry = by_source[source_of(instruction)]
        entry[0] += seconds
        entry[1] = kind
    total = sum(times.values())
    per_step = 1e3 / args.steps
    kinds = {k: {"ms_per_step": by_kind.get(k, 0.0) * per_step, "share": by_kind.get(k, 0.0) / total} for k in KIND_ORDER}
    top = sorted(by_source.items(), key=lambda item: -item[1][0])[: args.top]
    result = {
        "benchmark": "profile_step", "machine": machine_info(), "dataset": str(args.dataset), "preset": args.preset,
        "irreps_hidden": str(model.irreps_hidden), "batch_size": args.batch_size, "edges": n_edges,
        "edges_padded": n_edges_padded, "step_wall_median_ms": 1e3 * statistics.median(wall),
        "thread_time_ms_per_step": total * per_step, "unmatched_share": unmatched / total, "kinds": kinds,
        "top_sources": [{"source": s, "kind": k, "ms_per_step": t * per_step, "share": t / total} for s, (t, k) in top],
    }
    path = write_result(f"profile_step{'-' + args.tag if args.tag else ''}", result)
    print(f"{args.dataset} {args.preset} batch {args.batch_size}: step {result['step_wall_median_ms']:.1f} ms wall "
          f"(median of {args.steps}), {result['thread_time_ms_per_step']:.1f} ms thread time, "
          f"{n_edges} edges ({n_edges_padded} padded)")
    print("  ".join(f"{k} {100 * v['share']:.0f}%" for k, v in kinds.items()) + f"  (unmatched {100 * unmatched / total:.0f}%)")
    for row in result["top_sources"]:
        print(f"  {row['ms_per_step']:7.2f} ms {100 * row['share']:5.1f}%  {row['kind']:<14} {row['source']}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
