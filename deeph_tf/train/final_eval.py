"""End-of-run evaluation of a whole subset: the report's final metrics and parity data.

Unlike the lcurve (``numb_btch`` batches), this passes once over every structure of the
subset with the model in inference mode and returns exact metrics plus the reference and
predicted values for parity plots.

Metrics (units):
- force field: ``mae_e``, ``rmse_e`` (eV/atom), ``mae_f``, ``rmse_f`` (eV/Angstrom), and
  ``mae_v``, ``rmse_v`` (eV/atom) where virials are known;
- operators: ``mae``, ``rmse`` over the counted entries, ``mae_gauge`` for the Hamiltonian
  (eV for the Hamiltonian; dimensionless for overlap and density matrix). As in DeepH's
  tools and ``dtest``, the MAE here is over all counted entries of the subset pooled.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import numpy as np

from deeph_tf.data import keys

#: At most this many points per parity quantity (a random subset beyond it).
MAX_PARITY_POINTS = 200_000

ENERGY_UNITS = {"mae_e": "eV/atom", "rmse_e": "eV/atom", "mae_f": "eV/A", "rmse_f": "eV/A",
                "mae_v": "eV/atom", "rmse_v": "eV/atom"}


def evaluate_subset(model, graph_set, subset: str, batch_size, target: str, seed: int = 0
                    ) -> Tuple[Dict[str, float], Dict[str, str], Dict[str, np.ndarray], int]:
    """(metrics, units, parity arrays, structures) of ``model`` over every structure of ``subset``."""
    import tensorflow as tf

    from deeph_tf.model.network import model_inputs

    dataset, _ = graph_set.dataset(subset, batch_size, shuffle=False, repeat=False, prefetch=True)
    predict = tf.function(lambda batch: model(batch, training=False), reduce_retracing=True)
    structures = 0
    if target == keys.ENERGY_FORCE:
        e_ref, e_pred, f_ref, f_pred, v_ref, v_pred = [], [], [], [], [], []
        for batch in dataset:
            out = predict(model_inputs(batch))
            valid = batch[keys.GRAPH_VALID].numpy()
            node_valid = batch[keys.NODE_VALID].numpy()
            node_graph = batch[keys.NODE_GRAPH].numpy()
            natoms = np.bincount(node_graph[node_valid], minlength=len(valid))[: len(valid)].astype(np.float64)
            natoms = np.maximum(natoms, 1.0)
            e_ref.append((batch[keys.ENERGY].numpy() / natoms)[valid])
            e_pred.append((out[keys.ENERGY].numpy() / natoms)[valid])
            f_ref.append(batch[keys.FORCES].numpy()[node_valid].reshape(-1))
            f_pred.append(out[keys.FORCES].numpy()[node_valid].reshape(-1))
            if keys.VIRIAL in out:
                has_v = valid & batch[keys.VIRIAL_VALID].numpy()
                v_ref.append((batch[keys.VIRIAL].numpy() / natoms[:, None, None])[has_v].reshape(-1))
                v_pred.append((out[keys.VIRIAL].numpy() / natoms[:, None, None])[has_v].reshape(-1))
            structures += int(valid.sum())
        parity = {
            "energy_per_atom_reference": np.concatenate(e_ref), "energy_per_atom_predicted": np.concatenate(e_pred),
            "force_reference": np.concatenate(f_ref), "force_predicted": np.concatenate(f_pred),
            "energy_per_atom_unit": np.array("eV/atom"), "force_unit": np.array("eV/A"),
        }
        metrics = {}
        for name, quantity in (("e", "energy_per_atom"), ("f", "force")):
            diff = parity[f"{quantity}_predicted"] - parity[f"{quantity}_reference"]
            metrics[f"mae_{name}"] = float(np.mean(np.abs(diff))) if diff.size else math.nan
            metrics[f"rmse_{name}"] = float(np.sqrt(np.mean(diff**2))) if diff.size else math.nan
        v_diff = np.concatenate(v_pred) - np.concatenate(v_ref) if v_ref else np.zeros(0)
        if v_diff.size:
            metrics.update(mae_v=float(np.mean(np.abs(v_diff))), rmse_v=float(np.sqrt(np.mean(v_diff**2))))
        units = {k: ENERGY_UNITS[k] for k in metrics}
        return metrics, units, parity, structures

    from deeph_tf.train.losses import masked_entries

    rng = np.random.default_rng(seed)
    abs_sum = sq_sum = gauge_sum = count = 0.0
    references, predictions = [], []
    gauge = target == keys.HAMILTONIAN
    for batch in dataset:
        inputs = model_inputs(batch)
        out = predict(inputs)
        diff, reference, mask = (x.numpy() for x in masked_entries(out, inputs, target))
        counted = mask > 0
        abs_sum += float(np.abs(diff[counted]).sum())
        sq_sum += float((diff[counted] ** 2).sum())
        count += float(counted.sum())
        if gauge and keys.edge_key(keys.OVERLAP) in inputs:
            gauge_diff, _, _ = masked_entries(out, inputs, target, gauge=True)
            gauge_sum += float(np.abs(gauge_diff.numpy()[counted]).sum())
        references.append(reference[counted])
        predictions.append(reference[counted] + diff[counted])
        structures += int(batch[keys.GRAPH_VALID].numpy().sum())
    unit = "eV" if target == keys.HAMILTONIAN else "1"
    metrics = {"mae": abs_sum / max(count, 1.0), "rmse": math.sqrt(sq_sum / max(count, 1.0))}
    if gauge:
        metrics["mae_gauge"] = gauge_sum / max(count, 1.0)
    reference = np.concatenate(references) if references else np.zeros(0)
    predicted = np.concatenate(predictions) if predictions else np.zeros(0)
    pick = rng.permutation(len(reference))[:MAX_PARITY_POINTS]
    parity = {f"{target}_reference": reference[pick], f"{target}_predicted": predicted[pick], f"{target}_unit": np.array(unit)}
    return metrics, {k: unit for k in metrics}, parity, structures


def peak_memory_mib() -> Tuple[float, Optional[float]]:
    """(peak resident memory of this process, peak accelerator memory or None), MiB."""
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    device = None
    try:
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            device = sum(tf.config.experimental.get_memory_info(g.name)["peak"] for g in gpus) / 2**20
    except Exception:  # no accelerator statistics on this platform
        device = None
    return float(rss), device
