"""Shared helpers for benchmarks: timing medians, machine info, peak memory, HLO FLOP counts."""
from __future__ import annotations

import json
import os
import platform
import re
import resource
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List

RESULTS = Path(__file__).resolve().parent / "results"


def machine_info() -> Dict[str, object]:
    import tensorflow as tf

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
    }


def median_time(function: Callable[[], object], repeats: int = 5, inner: int = 1) -> Dict[str, float]:
    """Median seconds per call over ``repeats`` timings of ``inner`` calls (after one warm-up)."""
    function()
    samples: List[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            result = function()
        _block(result)
        samples.append((time.perf_counter() - start) / inner)
    return {"median_s": statistics.median(samples), "min_s": min(samples), "max_s": max(samples)}


def _block(result) -> None:
    """Wait for asynchronous TF results."""
    try:
        import tensorflow as tf

        tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, result)
    except Exception:  # noqa: BLE001 - best effort
        pass


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_SHAPE = re.compile(r"([a-z0-9]+)\[([0-9,]*)\]")


def hlo_dot_flops(hlo_text: str) -> float:
    """FLOPs of the dot products in an (optimized) HLO module: 2 * prod(out) * prod(contracted)."""
    shapes = {}
    total = 0.0
    for line in hlo_text.splitlines():
        line = line.strip()
        match = re.match(r"(?:ROOT )?(%?[\w.\-]+) = (\w+)\[([0-9,]*)\]", line)
        if match:
            shapes[match.group(1).lstrip("%")] = [int(d) for d in match.group(3).split(",") if d]
        if " dot(" not in line or not match:
            continue
        out = [int(d) for d in match.group(3).split(",") if d]
        operands = re.search(r"dot\(([^)]*)\)", line).group(1)
        lhs_name = operands.split(",")[0].strip().split(" ")[-1].lstrip("%")
        lhs = shapes.get(lhs_name)
        contracting = re.search(r"lhs_contracting_dims=\{([0-9,]*)\}", line)
        if lhs is None or contracting is None:
            continue
        contracted = 1
        for d in contracting.group(1).split(","):
            if d:
                contracted *= lhs[int(d)]
        size = 1
        for d in out:
            size *= d
        total += 2.0 * size * contracted
    return total


def matmul_flops_per_s(size: int = 1024, dtype: str = "float32") -> float:
    """Measured dense matmul FLOP/s of this machine (XLA, square matrices)."""
    import tensorflow as tf

    a = tf.random.normal([size, size], dtype=dtype)
    b = tf.random.normal([size, size], dtype=dtype)
    f = tf.function(lambda x, y: tf.matmul(x, y), jit_compile=True)
    timing = median_time(lambda: f(a, b), repeats=7, inner=5)
    return 2.0 * size**3 / timing["median_s"]


def write_result(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    return path
