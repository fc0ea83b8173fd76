#!/usr/bin/env python
"""Padding waste of the training buckets: per bucket, the share of batches and the fraction of
padded nodes and edges, for each dataset at its batch size.

    python benchmarks/padding.py                                   # the shipped examples
    python benchmarks/padding.py --set mydata/dft:4 --num-buckets 4

Graphs are built once into a temporary folder (the training default: no split, float32), the
buckets are the pipeline's (:func:`deeph_tf.data.buckets.bucket_sizes`, ``num_buckets`` as
``training.training_data.num_buckets``), and batches are simulated as the pipeline makes them
(:func:`deeph_tf.data.buckets.padding_fractions`, 64 shuffled epochs). Edge slots dominate the
step's cost (every edge carries [n_edges, channels, (2l+1)] features through every block), so
``padded_edge_fraction`` (padding over all edge slots of all batches) is the headline figure.
Writes benchmarks/results/padding.json.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import machine_info, write_result  # noqa: E402

EXAMPLES = HERE.parent / "examples"
DEFAULT_SETS = [f"{EXAMPLES / 'water' / 'dft'}:8", f"{EXAMPLES / 'graphene' / 'dft'}:1",
                f"{EXAMPLES / 'graphene' / 'dft'}:2", f"{EXAMPLES / 'universal' / 'data' / 'pretrain' / 'dft'}:4",
                f"{EXAMPLES / 'soc_crystal' / 'data' / 'dft'}:2"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", dest="sets", metavar="DFT_DIR:BATCH",
                        help="a dataset and its batch size (repeatable; default: the shipped examples)")
    parser.add_argument("--num-buckets", type=int, default=4)
    args = parser.parse_args()

    from deeph_tf.data.buckets import bucket_sizes, overall_padding, padding_fractions
    from deeph_tf.data.shards import GraphBuildOptions, build_graph_sets
    from deeph_tf.data.pipeline import GraphSet

    rows, built = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.sets or DEFAULT_SETS:
            folder, _, batch = spec.rpartition(":")
            dataset, batch_size = Path(folder), int(batch)
            if not dataset.is_dir():
                print(f"skipping {dataset}: not a folder")
                continue
            if dataset not in built:
                graph_dir = Path(tmp) / f"g{len(built)}"
                build_graph_sets(dataset, graph_dir, GraphBuildOptions(dtype="float32"))
                shards = GraphSet(graph_dir).shards("train")
                built[dataset] = ([n for s in shards for n in s["n_atoms"]], [n for s in shards for n in s["n_edges"]])
            atoms, edges = built[dataset]
            buckets = bucket_sizes(atoms, edges, batch_size, args.num_buckets)
            report = padding_fractions(atoms, edges, batch_size, buckets)
            pooled = overall_padding(report)
            row = {"dataset": str(dataset), "batch_size": batch_size, "structures": len(atoms),
                   "atoms_range": [min(atoms), max(atoms)], "edges_range": [min(edges), max(edges)],
                   "buckets": report, **pooled}
            rows.append(row)
            name = f"{dataset.parent.name}/{dataset.name}" if dataset.name == "dft" else dataset.name
            print(f"{name}, batch {batch_size}: {len(atoms)} structures, {min(atoms)}-{max(atoms)} atoms, "
                  f"{min(edges)}-{max(edges)} edges; padding {100 * row['padded_edge_fraction']:.1f}% of edge slots, "
                  f"{100 * row['padded_node_fraction']:.1f}% of node slots")
            for r in report:
                print(f"    bucket {r['n_nodes']:>5} nodes {r['n_edges']:>6} edges: {100 * r['batch_share']:5.1f}% of "
                      f"batches, padded edges {100 * r['padded_edge_fraction']:5.1f}%, nodes "
                      f"{100 * r['padded_node_fraction']:5.1f}%")
    path = write_result("padding", {"benchmark": "bucket padding", "machine": machine_info(),
                                    "num_buckets": args.num_buckets, "sets": rows})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
