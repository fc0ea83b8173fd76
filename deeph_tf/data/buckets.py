"""Batch sizes of the pipeline: the few padded shapes (buckets) every batch fits, and how much
of them is padding.

XLA compiles one step per bucket, so a set is padded to a few sizes (DeepH's
``multi_way_jit_num``). :func:`bucket_sizes` chooses them, :func:`padding_fractions` measures
the padding per bucket over simulated shuffled epochs, and :func:`overall_padding` pools it
over all batches (edge slots dominate the step's cost).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence

import numpy as np


@dataclass(frozen=True)
class Bucket:
    """Padded batch size: ``n_nodes`` nodes (at least one of them padding) and ``n_edges`` edges."""

    n_nodes: int
    n_edges: int


def _round_up(value: int, multiple: int = 8) -> int:
    return int(-(-value // multiple) * multiple)


def bucket_sizes(
    n_atoms: Sequence[int], n_edges: Sequence[int], batch_size: int, num_buckets: int, seed: int = 0
) -> List[Bucket]:
    """A few padded sizes that every batch of ``batch_size`` structures fits.

    The last bucket is the worst case (the ``batch_size`` largest structures). The edge sizes
    of the others are chosen to minimize the expected padded edge slots of 512 simulated random
    batches (:func:`_least_padding_thresholds`; edges dominate the step's cost), and each
    bucket's node count is the most nodes of the simulated batches it takes. Sizes are rounded
    up to multiples of 8; a bucket always has at least one node more than its batches (the
    padding node). Buckets no simulated batch would use are dropped.
    """
    atoms, edges = np.asarray(n_atoms, dtype=np.int64), np.asarray(n_edges, dtype=np.int64)
    if len(atoms) == 0:
        raise ValueError("no structures: cannot size batches")
    b = min(batch_size, len(atoms))
    worst = Bucket(_round_up(int(np.sort(atoms)[-b:].sum()) + 1), _round_up(max(int(np.sort(edges)[-b:].sum()), 1)))
    rng = np.random.default_rng(seed)
    samples = np.stack([rng.choice(len(atoms), size=b, replace=False) for _ in range(512)])
    node_totals, edge_totals = atoms[samples].sum(axis=1), edges[samples].sum(axis=1)
    rounded = np.array([_round_up(max(int(e), 1)) for e in edge_totals])
    thresholds = _least_padding_thresholds(rounded, max(1, num_buckets - 1))
    buckets, lower = [], -1
    for threshold in thresholds:
        taken = (rounded > lower) & (rounded <= threshold)
        if threshold < worst.n_edges and taken.any():
            nodes = min(_round_up(int(node_totals[taken].max()) + 1), worst.n_nodes)
            buckets.append(Bucket(nodes, int(threshold)))
        lower = threshold
    buckets.append(worst)
    return sorted(set(buckets), key=lambda bucket: (bucket.n_edges, bucket.n_nodes))


def _least_padding_thresholds(totals: np.ndarray, k: int) -> List[int]:
    """At most ``k`` sizes taken from ``totals`` minimizing sum_i (size(i) - totals[i]), size(i)
    being the smallest chosen size >= totals[i] (so the largest total is always chosen). Exact,
    by dynamic programming over the m distinct totals (O(k m^2), m <= 512)."""
    values, counts = np.unique(np.asarray(totals, dtype=np.int64), return_counts=True)
    m, k = len(values), max(1, min(int(k), len(values)))
    n_below = np.concatenate([[0], np.cumsum(counts)])  # n_below[i]: samples with values < values[i]
    sum_below = np.concatenate([[0], np.cumsum(values * counts)])

    def padding(first: np.ndarray, last: int) -> np.ndarray:
        """Padding of the samples values[first..last] padded to values[last] (vectorized over first)."""
        return values[last] * (n_below[last + 1] - n_below[first]) - (sum_below[last + 1] - sum_below[first])

    best = values * n_below[1:] - sum_below[1:]  # best[j]: values[0..j] all padded to values[j] (one size)
    defer = -1  # a parent meaning "as with one size fewer"
    parents = []  # parents[level][j]: index of the previous size in the best of <= level + 2 sizes ending at j
    for _ in range(1, k):
        level_best, level_parent = best.copy(), np.full(m, defer)
        for j in range(1, m):
            previous = np.arange(j)
            candidates = best[previous] + padding(previous + 1, j)
            p = int(np.argmin(candidates))
            if candidates[p] < level_best[j]:
                level_best[j], level_parent[j] = candidates[p], p
        parents.append(level_parent)
        best = level_best
    sizes, j = [int(values[-1])], m - 1
    for level_parent in reversed(parents):  # level by level down to one size
        if level_parent[j] != defer:
            j = int(level_parent[j])
            sizes.append(int(values[j]))
    return sorted(sizes)


def padding_fractions(
    n_atoms: Sequence[int], n_edges: Sequence[int], batch_size: int, buckets: Sequence[Bucket],
    epochs: int = 64, seed: int = 0,
) -> List[dict]:
    """How much of each bucket is padding, over simulated shuffled epochs of the training pipeline.

    Batches are made as :meth:`GraphSet.dataset` makes them (a shuffled epoch cut into batches
    of ``batch_size``, the last one smaller) and padded to the first bucket that fits (more
    nodes than the batch, at least as many edges).

    Returns:
        one dict per bucket: ``n_nodes``, ``n_edges``, ``batch_share`` (fraction of batches),
        ``padded_node_fraction`` and ``padded_edge_fraction`` (padding / bucket size, averaged
        over the batches of that bucket; NaN for a bucket no batch uses).
    """
    atoms, edges = np.asarray(n_atoms, dtype=np.int64), np.asarray(n_edges, dtype=np.int64)
    if len(atoms) == 0 or not buckets:
        raise ValueError("padding_fractions needs structures and buckets")
    rng = np.random.default_rng(seed)
    b = max(1, min(int(batch_size), len(atoms)))
    nodes_cap = np.array([k.n_nodes for k in buckets])
    edges_cap = np.array([k.n_edges for k in buckets])
    used: List[List[tuple]] = [[] for _ in buckets]
    for _ in range(max(1, int(epochs))):
        order = rng.permutation(len(atoms))
        for start in range(0, len(order), b):
            chosen = order[start:start + b]
            nodes, n_e = int(atoms[chosen].sum()), int(edges[chosen].sum())
            fits = np.flatnonzero((nodes_cap > nodes) & (edges_cap >= n_e))
            if len(fits) == 0:
                raise ValueError(f"a batch of {nodes} nodes and {n_e} edges fits no bucket")
            k = int(fits[0])
            used[k].append((1.0 - nodes / nodes_cap[k], 1.0 - n_e / edges_cap[k]))
    total = sum(len(u) for u in used)
    report = []
    for bucket, rows in zip(buckets, used):
        fractions = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
        mean = fractions.mean(axis=0) if len(rows) else np.array([np.nan, np.nan])
        report.append({"n_nodes": int(bucket.n_nodes), "n_edges": int(bucket.n_edges),
                       "batch_share": len(rows) / total, "padded_node_fraction": float(mean[0]),
                       "padded_edge_fraction": float(mean[1])})
    return report


def overall_padding(report: Sequence[dict]) -> Dict[str, float]:
    """Padding over all slots of all batches, from :func:`padding_fractions`' report.

    Returns:
        ``padded_edge_fraction`` and ``padded_node_fraction``: padded slots / all slots,
        each bucket weighted by its share of batches and its size; ``edge_slots_per_batch``
        and ``node_slots_per_batch``: the mean bucket size of a batch.
    """
    used = [r for r in report if r["batch_share"] > 0]
    if not used:
        raise ValueError("overall_padding needs a report with at least one used bucket")
    out = {}
    for kind in ("edge", "node"):
        slots = sum(r["batch_share"] * r[f"n_{kind}s"] for r in used)
        padded = sum(r["batch_share"] * r[f"n_{kind}s"] * r[f"padded_{kind}_fraction"] for r in used)
        out[f"padded_{kind}_fraction"] = float(padded / slots)
        out[f"{kind}_slots_per_batch"] = float(slots)
    return out
