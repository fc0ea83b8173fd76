"""Losses and error metrics over the masked (counted) block entries of a batch.

All functions take the model output ``{"node": [N, n_c, n_c], "edge": [E, n_c, n_c]}`` and the
pipeline batch; only entries whose DeepH mask is True count (padding rows and orbitals never
do). Values are in the target's unit (eV for the Hamiltonian).
"""
from __future__ import annotations

import tensorflow as tf

from deeph_tf.data import keys

LOSSES = ("mae", "mse", "huber", "wmae")


def masked_entries(prediction, batch, operator: str = "hamiltonian", gauge: bool = False):
    """(difference, target, mask) over node and edge entries, flattened: three [n] tensors.

    With ``gauge`` (DeepH's ``standardize_gauge``; needs the overlap in the batch), the
    difference of each structure g is gauge-corrected: dH - mu_g S with
    mu_g = <dH, S>_g / <S, S>_g over its counted entries, since H and H + mu S describe the
    same physics (a shift of the energy zero).
    """
    diffs, targets, masks, overlaps, graphs = [], [], [], [], []
    node_graph = tf.cast(batch["node_graph"], tf.int32)
    parts = (
        ("node", keys.node_key, keys.NODE_MASK, node_graph),
        ("edge", keys.edge_key, keys.EDGE_MASK, tf.gather(node_graph, tf.cast(batch[keys.EDGE_SRC], tf.int32))),
    )
    for part, key_fn, mask_key, row_graph in parts:
        predicted = prediction[part]
        target = tf.cast(batch[key_fn(operator)], predicted.dtype)
        entries = tf.size(predicted[0])
        diffs.append(tf.reshape(predicted - target, [-1]))
        targets.append(tf.reshape(target, [-1]))
        masks.append(tf.reshape(tf.cast(batch[mask_key], predicted.dtype), [-1]))
        if gauge:
            overlaps.append(tf.reshape(tf.cast(batch[key_fn("overlap")], predicted.dtype), [-1]))
            graphs.append(tf.repeat(row_graph, entries))
    diff, target, mask = tf.concat(diffs, 0), tf.concat(targets, 0), tf.concat(masks, 0)
    if gauge:
        overlap, graph = tf.concat(overlaps, 0), tf.concat(graphs, 0)
        n_graphs = tf.shape(batch["graph_valid"])[0] + 1  # + the padding graph
        ds = tf.math.unsorted_segment_sum(diff * overlap * mask, graph, n_graphs)
        ss = tf.math.unsorted_segment_sum(overlap * overlap * mask, graph, n_graphs)
        mu = ds / tf.maximum(ss, tf.cast(1e-30, ss.dtype))
        diff = diff - tf.gather(mu, graph) * overlap
    return diff, target, mask


def masked_loss(
    prediction, batch, kind: str = "mae", operator: str = "hamiltonian", huber_delta: float = 0.01, gauge: bool = False,
    return_count: bool = False,
):
    """Mean loss over the counted entries of the batch (and their number with ``return_count``).

    kind: "mae" |d|, "mse" d^2, "huber" (quadratic below ``huber_delta`` eV), "wmae": |d|
    weighted by 1 + |target| / mean|target| (large entries such as core levels count more).
    """
    if kind not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, received: {kind!r}")
    diff, target, mask = masked_entries(prediction, batch, operator, gauge)
    count = tf.maximum(tf.reduce_sum(mask), 1.0)
    if kind == "mae":
        per_entry = tf.abs(diff)
    elif kind == "mse":
        per_entry = tf.square(diff)
    elif kind == "huber":
        delta = tf.cast(huber_delta, diff.dtype)
        absolute = tf.abs(diff)
        per_entry = tf.where(absolute < delta, 0.5 * tf.square(diff) / delta, absolute - 0.5 * delta)
    else:
        scale = tf.reduce_sum(tf.abs(target) * mask) / count
        per_entry = tf.abs(diff) * (1.0 + tf.abs(target) / tf.maximum(scale, 1e-12))
    loss = tf.reduce_sum(per_entry * mask) / count
    return (loss, count) if return_count else loss


def masked_mae(prediction, batch, operator: str = "hamiltonian", gauge: bool = False):
    """(sum of |error| over counted entries, number of counted entries): reduce, then divide."""
    diff, _, mask = masked_entries(prediction, batch, operator, gauge)
    return tf.reduce_sum(tf.abs(diff) * mask), tf.reduce_sum(mask)
