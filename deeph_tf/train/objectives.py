"""What a training run minimizes and reports: one objective per kind of target.

An objective gives the loss of a batch, the ``loss_totals`` that loss is normalized by (from
the batch alone; data-parallel training sums them over the workers and passes them back, so
each worker's loss is its share of the loss of the union of all batches, exactly), per-batch
*sums* from which metrics are finished after summing over batches and workers (reduce, then
divide), and the lcurve metric names.

- :class:`BlockObjective`: operator targets (Hamiltonian, overlap, density matrix), masked
  block entries: loss ``mae|mse|huber|wmae``; metrics ``loss``, ``mae`` (+ ``mae_gauge`` for
  the Hamiltonian), in the target's unit (eV). Spinful targets: ``mae`` over the real and
  imaginary parts of the complex blocks (:mod:`deeph_tf.train.losses`), plus ``mae_spin``, the
  MAE of the spin parts B_k alone.
- :class:`EnergyForceObjective`: DeePMD-kit's ``ener`` loss,
  ``pref_e * <(dE/N)^2> + pref_f * <|dF|^2>/3 + pref_v * <(dW/N)^2>/9``, each prefactor
  following the learning rate, ``pref(t) = limit + (start - limit) * lr(t) / start_lr``;
  metrics ``loss``, ``rmse_e`` (eV/atom), ``rmse_f`` (eV/Angstrom), ``rmse_v`` (eV/atom) when
  the virial is trained (DeePMD's lcurve columns), then ``mae_e`` and ``mae_f``.
"""
from __future__ import annotations

import math
from typing import Dict, List, Mapping, Optional

import tensorflow as tf

from deeph_tf.data import keys
from deeph_tf.train.losses import loss_totals, masked_loss, masked_mae


class BlockObjective:
    """Masked block-entry loss and MAE metrics of one operator target."""

    def __init__(self, loss: str = "mae", operator: str = "hamiltonian", huber_delta: float = 0.01, gauge: bool = False,
                 spinful: bool = False):
        self.kind, self.operator, self.huber_delta, self.gauge = loss, operator, huber_delta, gauge
        self.spinful = bool(spinful)

    @property
    def metric_names(self) -> List[str]:
        return (["loss", "mae"] + (["mae_gauge"] if self.operator == "hamiltonian" else [])
                + (["mae_spin"] if self.spinful else []))

    @property
    def sum_names(self) -> List[str]:
        return (["abs_error_sum", "count", "loss", "batches"]
                + (["abs_error_sum_gauge"] if self.operator == "hamiltonian" else [])
                + (["abs_error_sum_spin", "count_spin"] if self.spinful else []))

    def loss_totals(self, batch, dtype=tf.float32) -> Dict[str, tf.Tensor]:
        """Counted entries (and, for wmae, the sum of |target|) of ``batch``: :func:`loss_totals`."""
        return loss_totals(batch, self.kind, self.operator, dtype)

    def loss(self, prediction, batch, totals: Optional[Mapping[str, tf.Tensor]] = None):
        """Mean loss of the batch; with ``totals`` summed over the workers, this worker's share."""
        return masked_loss(prediction, batch, self.kind, self.operator, self.huber_delta, self.gauge, totals=totals)

    def metric_sums(self, prediction, batch) -> Dict[str, tf.Tensor]:
        abs_sum, count = masked_mae(prediction, batch, self.operator)
        metrics = {"abs_error_sum": abs_sum, "count": count}
        if self.operator == "hamiltonian" and "edge_overlap" in batch:
            metrics["abs_error_sum_gauge"], _ = masked_mae(prediction, batch, self.operator, gauge=True)
        if self.spinful:
            metrics["abs_error_sum_spin"], metrics["count_spin"] = masked_mae(prediction, batch, self.operator, spin=True)
        return metrics

    def finish(self, total: Mapping[str, float]) -> Dict[str, float]:
        count = max(total["count"], 1.0)
        out = {"loss": total["loss"] / max(total["batches"], 1.0), "mae": total["abs_error_sum"] / count}
        if "abs_error_sum_gauge" in total:
            out["mae_gauge"] = total["abs_error_sum_gauge"] / count
        if "abs_error_sum_spin" in total:
            out["mae_spin"] = total["abs_error_sum_spin"] / max(total["count_spin"], 1.0)
        return out

    def update(self, lr: float) -> None:
        """Nothing follows the learning rate here."""


class EnergyForceObjective:
    """DeePMD-kit's energy/force(/virial) loss with learning-rate-following prefactors.

    Args:
        loss_config: the normalized ``loss`` section (start_pref_e, limit_pref_e, ...).
        start_lr: the schedule's starting learning rate.
        has_virial: whether any training structure has a virial label.
    """

    def __init__(self, loss_config: Mapping, start_lr: float, has_virial: bool = False):
        self.start = [float(loss_config[f"start_pref_{k}"]) for k in "efv"]
        self.limit = [float(loss_config[f"limit_pref_{k}"]) for k in "efv"]
        self.start_lr = float(start_lr)
        self.use_virial = bool(has_virial and (self.start[2] > 0 or self.limit[2] > 0))
        self.prefactors = tf.Variable(self.start, trainable=False, dtype=tf.float64, name="ener_prefactors")

    @property
    def metric_names(self) -> List[str]:
        """DeePMD's columns (loss, rmse_e, rmse_f, rmse_v when trained), then mae_e and mae_f."""
        return ["loss", "rmse_e", "rmse_f"] + (["rmse_v"] if self.use_virial else []) + ["mae_e", "mae_f"]

    @property
    def sum_names(self) -> List[str]:
        return ["loss", "batches", "sq_e", "abs_e", "n_e", "sq_f", "abs_f", "n_f", "sq_v", "n_v"]

    def update(self, lr: float) -> None:
        """Prefactors for the learning rate ``lr`` (DeePMD: linear in lr / start_lr)."""
        ratio = lr / self.start_lr if self.start_lr > 0 else 0.0
        self.prefactors.assign([lim + (s - lim) * ratio for s, lim in zip(self.start, self.limit)])

    def prefactors_at(self, lr: float) -> List[float]:
        ratio = lr / self.start_lr if self.start_lr > 0 else 0.0
        return [lim + (s - lim) * ratio for s, lim in zip(self.start, self.limit)]

    @staticmethod
    def _valid(batch, dtype):
        """(graph_valid [n_graphs], node_valid [N], virial_valid [n_graphs]) as 0/1 of ``dtype``."""
        graph_valid = tf.cast(batch[keys.GRAPH_VALID], dtype)
        virial_valid = tf.cast(batch[keys.VIRIAL_VALID], dtype) * graph_valid if keys.VIRIAL_VALID in batch else None
        return graph_valid, tf.cast(batch[keys.NODE_VALID], dtype), virial_valid

    def loss_totals(self, batch, dtype=tf.float32) -> Dict[str, tf.Tensor]:
        """What the loss terms are means over: structures ``n_e``, force components ``n_f``
        (3 per atom) and virial components ``n_v`` (9 per labelled structure)."""
        graph_valid, node_valid, virial_valid = self._valid(batch, dtype)
        totals = {"n_e": tf.reduce_sum(graph_valid), "n_f": 3.0 * tf.reduce_sum(node_valid)}
        totals["n_v"] = tf.zeros((), dtype) if virial_valid is None else 9.0 * tf.reduce_sum(virial_valid)
        return totals

    def _terms(self, prediction, batch):
        """Squared and absolute errors per structure (energy, virial) and per atom (forces)."""
        energy = prediction[keys.ENERGY]
        dtype = energy.dtype
        graph_valid, node_valid, virial_valid = self._valid(batch, dtype)
        n_graphs = tf.shape(graph_valid)[0]
        node_graph = tf.cast(batch[keys.NODE_GRAPH], tf.int32)
        natoms = tf.math.unsorted_segment_sum(node_valid, node_graph, n_graphs + 1)[:n_graphs]
        natoms = tf.maximum(natoms, 1.0)
        de = (energy - tf.cast(batch[keys.ENERGY], dtype)) / natoms * graph_valid  # eV/atom
        df = (prediction[keys.FORCES] - tf.cast(batch[keys.FORCES], dtype)) * node_valid[:, None]  # eV/A
        terms = {"de": de, "df": df, **self.loss_totals(batch, dtype)}
        if keys.VIRIAL in prediction:
            dv = (prediction[keys.VIRIAL] - tf.cast(batch[keys.VIRIAL], dtype)) / natoms[:, None, None] * virial_valid[:, None, None]
            terms["dv"] = dv
        else:
            terms["n_v"] = tf.zeros((), dtype)  # no virial predicted: none counted
        return terms

    def loss(self, prediction, batch, totals: Optional[Mapping[str, tf.Tensor]] = None):
        """The ener loss of the batch; with ``totals`` summed over the workers, this worker's share."""
        terms = self._terms(prediction, batch)
        dtype = terms["de"].dtype
        counts = terms if totals is None else {name: tf.cast(value, dtype) for name, value in totals.items()}
        pref = tf.cast(self.prefactors, dtype)
        l2_e = tf.reduce_sum(tf.square(terms["de"])) / tf.maximum(counts["n_e"], 1.0)
        l2_f = tf.reduce_sum(tf.square(terms["df"])) / tf.maximum(counts["n_f"], 1.0)
        loss = pref[0] * l2_e + pref[1] * l2_f
        if self.use_virial and "dv" in terms:
            loss = loss + pref[2] * tf.reduce_sum(tf.square(terms["dv"])) / tf.maximum(counts["n_v"], 1.0)
        return loss

    def metric_sums(self, prediction, batch) -> Dict[str, tf.Tensor]:
        terms = self._terms(prediction, batch)
        out = {
            "sq_e": tf.reduce_sum(tf.square(terms["de"])), "abs_e": tf.reduce_sum(tf.abs(terms["de"])), "n_e": terms["n_e"],
            "sq_f": tf.reduce_sum(tf.square(terms["df"])), "abs_f": tf.reduce_sum(tf.abs(terms["df"])), "n_f": terms["n_f"],
        }
        out["sq_v"] = tf.reduce_sum(tf.square(terms["dv"])) if "dv" in terms else tf.zeros((), terms["de"].dtype)
        out["n_v"] = terms["n_v"]
        return out

    def finish(self, total: Mapping[str, float]) -> Dict[str, float]:
        out = {
            "loss": total["loss"] / max(total["batches"], 1.0),
            "rmse_e": math.sqrt(total["sq_e"] / max(total["n_e"], 1.0)),
            "rmse_f": math.sqrt(total["sq_f"] / max(total["n_f"], 1.0)),
        }
        if self.use_virial:  # NaN where no structure of these batches has a virial label
            out["rmse_v"] = math.sqrt(total["sq_v"] / total["n_v"]) if total["n_v"] > 0 else math.nan
        out["mae_e"] = total["abs_e"] / max(total["n_e"], 1.0)
        out["mae_f"] = total["abs_f"] / max(total["n_f"], 1.0)
        return out


def build_objective(config: Mapping, start_lr: float, has_virial: bool = False, spinful: bool = False):
    """The objective of a normalized input (model.target and the loss section); ``spinful``:
    the graphs hold spinful targets."""
    loss = config["loss"]
    target = config["model"]["target"]
    if target == "energy_force":
        return EnergyForceObjective(loss, start_lr, has_virial)
    return BlockObjective(loss["type"], target, loss["huber_delta"], config["model"]["standardize_gauge"],
                          spinful=spinful and target in keys.SPIN_OPERATORS)
