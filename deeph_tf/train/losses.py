"""Losses and error metrics over the masked (counted) block entries of a batch.

All functions take the model output ``{"node": [N, n_c, n_c], "edge": [E, n_c, n_c]}`` and the
pipeline batch; only entries whose DeepH mask is True count (padding rows and orbitals never
do). Values are in the target's unit (eV for the Hamiltonian).

**Spinful (spin-orbit) targets** (the batch holds ``node_<op>_spin``, the prediction
``"node_spin"``/``"edge_spin"`` [n, 3, n_c, n_c]): losses and MAEs are over the complex
[2n_i, 2n_j] blocks, every counted orbital entry giving the real and imaginary parts of its
four spin entries (uu, ud, du, dd). With H = I (x) A + i sum_k sigma_k (x) B_k those 8 reals are
+-A, +-B_x, +-B_y, +-B_z (twice each), so a mean of |.|, (.)^2, huber or wmae over them equals
the mean over the 4 real numbers (A, B_x, B_y, B_z) of each entry: that is what is computed
(the entries of A, then those of B_k, under the same mask). The gauge shift mu (S (x) I) acts
on A only. ``spin=True`` in :func:`masked_entries` / :func:`masked_mae` takes the B entries alone.
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional

import tensorflow as tf

from deeph_tf.data import keys

LOSSES = ("mae", "mse", "huber", "wmae")


def is_spinful(prediction, batch, operator: str = "hamiltonian") -> bool:
    """Whether a prediction and batch hold spin parts (spinful model on spinful graphs)."""
    return "node_spin" in prediction and keys.node_spin_key(operator) in batch


def _parts(prediction, batch, operator: str, spin):
    """(prediction key, batch key, mask key, spin part?) of the entries that count.

    spin: False -> A only; True -> B only; None -> A and, when spinful, B (complex entries).
    """
    node_graph = tf.cast(batch[keys.NODE_GRAPH], tf.int32)
    edge_graph = tf.gather(node_graph, tf.cast(batch[keys.EDGE_SRC], tf.int32))
    scalar = [("node", keys.node_key(operator), keys.NODE_MASK, node_graph, False),
              ("edge", keys.edge_key(operator), keys.EDGE_MASK, edge_graph, False)]
    vector = [("node_spin", keys.node_spin_key(operator), keys.NODE_MASK, node_graph, True),
              ("edge_spin", keys.edge_spin_key(operator), keys.EDGE_MASK, edge_graph, True)]
    if spin is True:
        return vector
    if spin is None and is_spinful(prediction, batch, operator):
        return scalar + vector
    return scalar


def masked_entries(prediction, batch, operator: str = "hamiltonian", gauge: bool = False, spin=None):
    """(difference, target, mask) over node and edge entries, flattened: three [n] tensors.

    With ``gauge`` (DeepH's ``standardize_gauge``; needs the overlap in the batch), the
    difference of each structure g is gauge-corrected: dH - mu_g S with
    mu_g = <dH, S>_g / <S, S>_g over its counted entries, since H and H + mu S describe the
    same physics (a shift of the energy zero).

    ``spin``: None (default) all entries (for spinful data A and B, see the module docstring);
    False the scalar parts A only; True the spin parts B only (gauge has no effect on them).
    """
    diffs, targets, masks, overlaps, graphs = [], [], [], [], []
    for part, target_key, mask_key, row_graph, is_spin in _parts(prediction, batch, operator, spin):
        predicted = prediction[part]
        target = tf.cast(batch[target_key], predicted.dtype)
        entries = tf.size(predicted[0])
        mask = tf.cast(batch[mask_key], predicted.dtype)
        if is_spin:
            mask = tf.broadcast_to(mask[:, None], tf.shape(predicted))
        diffs.append(tf.reshape(predicted - target, [-1]))
        targets.append(tf.reshape(target, [-1]))
        masks.append(tf.reshape(mask, [-1]))
        if gauge:
            overlap_key = (keys.node_key if part.startswith("node") else keys.edge_key)("overlap")
            overlap = tf.cast(batch[overlap_key], predicted.dtype)
            if is_spin:  # S (x) I has no spin part
                overlap = tf.zeros_like(predicted)
            overlaps.append(tf.reshape(overlap, [-1]))
            graphs.append(tf.repeat(row_graph, entries))
    diff, target, mask = tf.concat(diffs, 0), tf.concat(targets, 0), tf.concat(masks, 0)
    if gauge:
        overlap, graph = tf.concat(overlaps, 0), tf.concat(graphs, 0)
        n_graphs = tf.shape(batch[keys.GRAPH_VALID])[0] + 1  # + the padding graph
        ds = tf.math.unsorted_segment_sum(diff * overlap * mask, graph, n_graphs)
        ss = tf.math.unsorted_segment_sum(overlap * overlap * mask, graph, n_graphs)
        mu = ds / tf.maximum(ss, tf.cast(1e-30, ss.dtype))
        diff = diff - tf.gather(mu, graph) * overlap
    return diff, target, mask


def loss_totals(batch, kind: str = "mae", operator: str = "hamiltonian", dtype=tf.float32) -> Dict[str, tf.Tensor]:
    """What the loss of a batch is normalized by, from the batch alone (no prediction), ``dtype``:
    ``count`` (counted entries) and, for "wmae", ``abs_target`` (sum of |target| over them, eV).

    Data-parallel training sums these over the workers first, so that every worker's loss is
    its share of the loss of the union of all workers' batches (see :func:`masked_loss`).
    """
    totals = {"count": tf.zeros((), dtype), "abs_target": tf.zeros((), dtype)}
    spinful = keys.node_spin_key(operator) in batch
    for key_fn, spin_key_fn, mask_key in ((keys.node_key, keys.node_spin_key, keys.NODE_MASK),
                                          (keys.edge_key, keys.edge_spin_key, keys.EDGE_MASK)):
        mask = tf.cast(batch[mask_key], dtype)
        totals["count"] += tf.reduce_sum(mask) * (4.0 if spinful else 1.0)  # A, B_x, B_y, B_z per entry
        totals["abs_target"] += tf.reduce_sum(tf.abs(tf.cast(batch[key_fn(operator)], dtype)) * mask)
        if spinful:
            spin = tf.abs(tf.cast(batch[spin_key_fn(operator)], dtype))
            totals["abs_target"] += tf.reduce_sum(spin * mask[:, None])
    return totals if kind == "wmae" else {"count": totals["count"]}


def masked_loss(
    prediction, batch, kind: str = "mae", operator: str = "hamiltonian", huber_delta: float = 0.01, gauge: bool = False,
    totals: Optional[Mapping[str, tf.Tensor]] = None,
):
    """Mean loss over the counted entries of the batch.

    kind: "mae" |d|, "mse" d^2, "huber" (quadratic below ``huber_delta`` eV), "wmae": |d|
    weighted by 1 + |target| / scale (large entries such as core levels count more), where
    scale = mean |target| over the counted entries.

    ``totals``: :func:`loss_totals` summed over all data-parallel workers. Then the sum of the
    per-entry losses is divided by the total count and the wmae scale is that of all workers'
    entries, so the workers' values add up to the loss of the union of their batches exactly
    (and so do their gradients). None: this batch's own totals (one worker).
    """
    if kind not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, received: {kind!r}")
    diff, target, mask = masked_entries(prediction, batch, operator, gauge)
    if totals is None:
        count = tf.maximum(tf.reduce_sum(mask), 1.0)
        abs_target = tf.reduce_sum(tf.abs(target) * mask) if kind == "wmae" else None
    else:
        count = tf.maximum(tf.cast(totals["count"], diff.dtype), 1.0)
        abs_target = tf.cast(totals["abs_target"], diff.dtype) if kind == "wmae" else None
    if kind == "mae":
        per_entry = tf.abs(diff)
    elif kind == "mse":
        per_entry = tf.square(diff)
    elif kind == "huber":
        delta = tf.cast(huber_delta, diff.dtype)
        absolute = tf.abs(diff)
        per_entry = tf.where(absolute < delta, 0.5 * tf.square(diff) / delta, absolute - 0.5 * delta)
    else:
        scale = abs_target / count
        per_entry = tf.abs(diff) * (1.0 + tf.abs(target) / tf.maximum(scale, 1e-12))
    return tf.reduce_sum(per_entry * mask) / count


def masked_mae(prediction, batch, operator: str = "hamiltonian", gauge: bool = False, spin=None):
    """(sum of |error| over counted entries, number of counted entries): reduce, then divide.
    ``spin`` as in :func:`masked_entries`."""
    diff, _, mask = masked_entries(prediction, batch, operator, gauge, spin)
    return tf.reduce_sum(tf.abs(diff) * mask), tf.reduce_sum(mask)
