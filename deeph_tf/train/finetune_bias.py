"""DeePMD's "change-by-statistic" for ``dtrain --finetune``: move the on-site output bias of a
pretrained model onto the new data before the first step.

A pretrained model predicting a new material is often off by a rigid, per-element offset of its
on-site energies (a different reference, a different chemical environment): DeePMD-kit's
fine-tuning changes the per-type energy bias by the mean residual on the new data for the same
reason. Here the residual of each on-site scalar (0e) irreps term, label - prediction, is
averaged per element over up to ``max_structures`` training structures and added to the node
head's ``shift`` ([n_species, n_terms], eV for the Hamiltonian). Only 0e terms move, so the map
stays equivariant; elements absent from the new data keep their bias.

Force fields get the same with DeePMD's least squares: the per-element energy bias that best
fits the residual total energies, sum_s n_s(structure) b_s = E_label - E_pred.
"""
from __future__ import annotations

import logging
from typing import Dict, Optional

import numpy as np

from deeph_tf.data import keys
from deeph_tf.model.statistics import TermMoments

logger = logging.getLogger(__name__)

__all__ = ["CHANGE_BY_STATISTIC", "KEEP", "change_bias_by_statistic"]

CHANGE_BY_STATISTIC = "change-by-statistic"
KEEP = "keep"


def change_bias_by_statistic(model, graph_set, operator: str, batch_size, max_structures: int = 64,
                             num_buckets: int = 1, storage: str = "memory") -> Dict[str, float]:
    """Shift the model's on-site bias (or a force field's atom energies) by the mean residual on
    the training subset of ``graph_set``; returns {element: largest |change|} (eV).

    Args:
        model: a built Hamiltonian-type model (``node_head``) or force field (``atom_energies``).
        graph_set: the fine-tuning data (:class:`~deeph_tf.data.pipeline.GraphSet`).
        operator: the model's target ("hamiltonian", "energy_force", ...).
        batch_size: structures per evaluation batch (the training batch size).
        max_structures: how many training structures (in file order) the statistic uses.
    """
    import tensorflow as tf

    from deeph_tf.model.network import model_inputs

    dataset, _ = graph_set.dataset("train", batch_size, shuffle=False, repeat=False, prefetch=True,
                                   num_buckets=num_buckets, storage=storage)
    predict = tf.function(lambda batch: model(batch, training=False), reduce_retracing=True)
    elements = list(graph_set.layout.elements)
    if operator == keys.ENERGY_FORCE:
        return _change_energy_bias(model, dataset, predict, model_inputs, elements, max_structures)
    head = model.node_head
    moments = TermMoments(head.coupling.matrix, head.irreps_out, len(elements))
    seen = 0
    for batch in dataset:
        if seen >= max_structures:
            break
        out = predict(model_inputs(batch))
        valid = batch[keys.NODE_VALID].numpy()
        species = batch[keys.SPECIES].numpy()[valid]
        label = batch[keys.node_key(operator)].numpy()[valid].astype(np.float64)
        residual = (label - out["node"].numpy()[valid].astype(np.float64)).reshape(len(species), -1)
        mask = batch[keys.NODE_MASK].numpy()[valid].reshape(len(species), -1)
        moments.add_nodes(species, residual, mask)
        seen += int(batch[keys.GRAPH_VALID].numpy().sum())
    _, mean_residual, _ = moments.finish()  # [n_species, n_terms], 0 off the 0e terms and for unseen elements
    delta = np.asarray(mean_residual)
    head.shift.assign((head.shift.numpy().astype(np.float64) + delta).astype(head.shift.dtype))
    changes = {element: float(np.abs(delta[s]).max()) for s, element in enumerate(elements)
               if moments.node_count[s].any()}
    logger.info("finetune: on-site bias changed by statistic over %d training structure(s); largest change per "
                "element (eV): %s", seen, ", ".join(f"{e} {v:.4g}" for e, v in changes.items()))
    return changes


def _change_energy_bias(model, dataset, predict, model_inputs, elements, max_structures: int) -> Dict[str, float]:
    """Least-squares per-element energy bias of a force field (DeePMD's change-by-statistic)."""
    counts, residuals = [], []
    for batch in dataset:
        if len(residuals) >= max_structures:
            break
        out = predict(model_inputs(batch))
        graph_valid = batch[keys.GRAPH_VALID].numpy()
        node_valid = batch[keys.NODE_VALID].numpy()
        node_graph, species = batch[keys.NODE_GRAPH].numpy(), batch[keys.SPECIES].numpy()
        table = np.zeros((len(graph_valid), len(elements)))
        np.add.at(table, (node_graph[node_valid], species[node_valid]), 1.0)
        counts.extend(table[graph_valid])
        residuals.extend((batch[keys.ENERGY].numpy() - out[keys.ENERGY].numpy())[graph_valid])
    table, residual = np.asarray(counts), np.asarray(residuals, dtype=np.float64)
    present = table.any(axis=0)
    delta = np.zeros(len(elements))
    if present.any():
        delta[present] = np.linalg.lstsq(table[:, present], residual, rcond=None)[0]
    model.shift_atom_energies(delta)
    changes = {e: float(abs(delta[s])) for s, e in enumerate(elements) if present[s]}
    logger.info("finetune: atom energies changed by statistic over %d training structure(s) (eV): %s",
                len(residual), ", ".join(f"{e} {v:.4g}" for e, v in changes.items()))
    return changes

