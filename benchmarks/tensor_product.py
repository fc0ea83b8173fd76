#!/usr/bin/env python
"""SO(2) (eSCN) convolution versus the Clebsch-Gordan product across L = 2..6.

    python benchmarks/tensor_product.py [--edges 2048] [--channels 16]

For each L: features "C x 0e + C x 1o + ... up to L" (parity alternating) in and out, edge
harmonics up to L. CG: every path of the channel-wise product, then the equivariant linear
layer that mixes the path outputs into the output irreps (what an interaction block does).
SO(2): rotate to the edge frame, the per-m linear map, rotate back. Forward + backward
(gradients w.r.t. features and radial weights) under XLA. Prints the median time per edge of
both and their ratio; writes JSON to benchmarks/results/tensor_product.json.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _common import machine_info, median_time, write_result  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edges", type=int, default=2048)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--lmax", type=int, nargs="+", default=[2, 3, 4, 5, 6])
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    from deeph_tf.model.linear import EquivariantLinear
    from deeph_tf.model.tensor_product import CGEdgeTensorProduct, SO2Convolution
    from deeph_tf.so3.irreps import Irreps

    rng = np.random.default_rng(0)
    rows = []
    for lmax in args.lmax:
        irreps = Irreps("+".join(f"{args.channels}x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(lmax + 1)))
        allowed = [f"{l}{p}" for l in range(lmax + 1) for p in "eo"]
        x = tf.constant(rng.normal(size=(args.edges, irreps.dim)), tf.float32)
        vectors = tf.constant(rng.normal(size=(args.edges, 3)), tf.float32)
        row = {"lmax": lmax, "irreps": str(irreps)}
        cg_product = CGEdgeTensorProduct(irreps, lmax, allowed_out=allowed)
        cg_mix = EquivariantLinear(cg_product.irreps_out, irreps, allow_zero_outputs=True)
        so2 = SO2Convolution(irreps, irreps, lmax)
        candidates = {
            "cg": (cg_product.num_weights, lambda x, v, w: cg_mix(cg_product(x, v, w)), len(cg_product.paths)),
            "so2": (so2.num_weights, lambda x, v, w: so2(x, v, w), None),
        }
        for name, (num_weights, layer, paths) in candidates.items():
            weights = tf.constant(rng.normal(size=(args.edges, num_weights)), tf.float32)
            layer(x, vectors, weights)

            @tf.function(jit_compile=True)
            def step(x, weights, layer=layer):
                with tf.GradientTape() as tape:
                    tape.watch([x, weights])
                    out = layer(x, vectors, weights)
                    loss = tf.reduce_sum(out * out)
                return tape.gradient(loss, [x, weights])

            timing = median_time(lambda: step(x, weights), repeats=5, inner=3)
            row[name] = {"us_per_edge": 1e6 * timing["median_s"] / args.edges, "paths": paths}
        row["speedup_so2_over_cg"] = row["cg"]["us_per_edge"] / row["so2"]["us_per_edge"]
        rows.append(row)
        print(
            f"L={lmax}: CG {row['cg']['us_per_edge']:8.2f} us/edge, SO(2) {row['so2']['us_per_edge']:8.2f} us/edge, "
            f"ratio {row['speedup_so2_over_cg']:.2f} ({row['cg']['paths']} paths)", flush=True,
        )
    path = write_result("tensor_product", {"benchmark": "tensor_product", "machine": machine_info(),
                                           "edges": args.edges, "channels": args.channels, "rows": rows})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
