"""Edge-frame rotations: dense per-edge Wigner matrices vs :class:`deeph_tf.so3.edge_frame.EdgeFrame`.

For E edges and features of C channels at every l = 1..L, times (XLA-compiled, forward and
backward through the features, and with ``--with-vectors``
through the edge vectors too) the round trip global -> edge frame ->
global that an SO(2) convolution does:

* ``dense``: D^l = Dz(a) J Dz(b) J^T Dz(0) as four batched per-edge matrix products (before);
* ``frame``: :class:`~deeph_tf.so3.edge_frame.EdgeFrame` (the model now): D^l from +m/-m angle
  mixings and one constant GEMM with J.

Both apply D^l with one batched matmul per direction. Also reported: the [E, 2l+1, 2l+1]
temporaries each construction makes per edge (what autodiff keeps when the edge vectors are
differentiated): dense 7 per l (Dz(a), Dz(b), Dz(0), J Dz(b), d(b), Dz(a) d(b), D), frame 3 per
l (J Dz(b), d(b), D) plus the angle table, 4 (2L+1). Medians of ``--repeats`` timings, both methods in one process.

Usage: ``python benchmarks/edge_rotation.py [--edges 4096] [--channels 16] [--lmax 4 6 8]``
(writes benchmarks/results/edge_rotation[-vectors].json).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def measure(lmax: int, edges: int, channels: int, repeats: int, with_vectors: bool) -> dict:
    import numpy as np
    import tensorflow as tf

    from deeph_tf.model.tensor_product import edge_rotations
    from deeph_tf.so3.edge_frame import EdgeFrame

    rng = np.random.default_rng(0)
    vectors = tf.constant(rng.normal(size=(edges, 3)), tf.float32)
    features = [tf.constant(rng.normal(size=(edges, channels, 2 * l + 1)), tf.float32) for l in range(1, lmax + 1)]

    def dense_round_trip(v, xs):
        d = edge_rotations(v, lmax)
        return sum(tf.reduce_sum(tf.matmul(tf.matmul(x, d[l]) * 1.01, d[l], transpose_b=True))
                   for l, x in zip(range(1, lmax + 1), xs))

    def frame_round_trip(v, xs):
        f = EdgeFrame(v, lmax)
        return sum(tf.reduce_sum(f.from_frame(f.to_frame(x, l) * 1.01, l)) for l, x in zip(range(1, lmax + 1), xs))

    out = {"lmax": lmax, "edges": edges, "channels": channels, "gradient_wrt_vectors": with_vectors,
           "temporary_floats_per_edge": {"dense": 7 * sum((2 * l + 1) ** 2 for l in range(1, lmax + 1)),
                                         "frame": 3 * sum((2 * l + 1) ** 2 for l in range(1, lmax + 1)) + 4 * (2 * lmax + 1)}}
    for name, fn in (("dense", dense_round_trip), ("frame", frame_round_trip)):
        @tf.function(jit_compile=True)
        def step(v, xs, fn=fn):
            sources = ([v] if with_vectors else []) + list(xs)
            with tf.GradientTape() as tape:
                tape.watch(sources)
                value = fn(v, xs)
            return value, tape.gradient(value, sources)

        step(vectors, features)  # compile
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            result = step(vectors, features)
            _ = result[0].numpy()
            times.append(time.perf_counter() - start)
        out[f"{name}_ms"] = 1e3 * statistics.median(times)
    out["speedup"] = out["dense_ms"] / out["frame_ms"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edges", type=int, default=4096)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--lmax", type=int, nargs="+", default=[4, 6, 8])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--with-vectors", action="store_true",
                        help="also differentiate with respect to the edge vectors (force fields); "
                             "Hamiltonian training differentiates the features only")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    rows = [measure(l, args.edges, args.channels, args.repeats, args.with_vectors) for l in args.lmax]
    print(f"{'L':>2} {'dense ms':>9} {'frame ms':>9} {'speedup':>8} {'temporaries/edge dense':>22} {'frame':>6}")
    for r in rows:
        print(f"{r['lmax']:>2} {r['dense_ms']:>9.2f} {r['frame_ms']:>9.2f} {r['speedup']:>8.2f} "
              f"{r['temporary_floats_per_edge']['dense']:>22} {r['temporary_floats_per_edge']['frame']:>6}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"edge_rotation{'-vectors' if args.with_vectors else ''}.json").write_text(json.dumps(
        {"benchmark": "edge-frame rotation round trip, forward + backward, XLA", "results": rows,
         "machine": {"platform": platform.platform(), "cores": os.cpu_count(), "load_average": list(os.getloadavg())}},
        indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
