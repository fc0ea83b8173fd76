"""Carry a trained Hamiltonian model onto a wider element set (fine-tuning onto new elements).

A model knows its elements through a few species-indexed weights only; everything else (the
interaction blocks, radial MLPs, the heads' equivariant linear maps) is shared by all
elements and is kept as it is:

====================================  ==============================  ====================
weight                                shape                           rows
====================================  ==============================  ====================
``backbone.node_embedding`` kernel    [n_s, w]                        species (one-hot in)
``backbone.edge_embedding`` layer 0   [n_radial + 2 n_s, w]           radial, src, dst
``node_head`` scale, shift            [n_s, n_terms]                  species
``edge_head`` scale, shift            [n_s^2, n_terms]                s_src * n_s + s_dst
====================================  ==============================  ====================

:func:`extend_model` builds the model for the new element list (old and new elements sorted
by atomic number, so species indices move) and copies every trained weight, moving the rows
of the species-indexed ones to the new indices. The rows of a new element (and of every
element pair involving one) are initialized as a fresh model of the fine-tuning data would
be: embedding rows from the same random initializers as at pretraining, head scales and
shifts from the fine-tuning data's statistics (per-element mean and RMS of each irreps
term). The per-pair cutoffs of POSCAR-only prediction become the larger of the model's and
the new data's.

The common orbital layout must not change: a new element whose shells do not fit into the
model's common layout would change the heads' output irreps (and the last block's), which
no weight copy can carry; :func:`check_extension` refuses it and says so.
"""
from __future__ import annotations

import logging
from typing import Dict, List, Sequence

import numpy as np

from deeph_tf.data.layout import OrbitalLayout

logger = logging.getLogger(__name__)


class ModelExtensionError(ValueError):
    """A layout change that a trained model cannot be carried onto."""


def check_extension(old: OrbitalLayout, new: OrbitalLayout, source: str) -> List[str]:
    """The elements ``new`` adds to ``old``; raises :class:`ModelExtensionError` if ``new``
    drops an element, changes an element's shells or changes the common layout."""
    missing = [e for e in old.elements if e not in new.elements]
    if missing:
        raise ModelExtensionError(f"the layout of the new data lacks the model's elements {missing} ({source})")
    for element in old.elements:
        if old.shells(element) != new.shells(element):
            raise ModelExtensionError(f"element {element} has the shells {list(new.shells(element))} in the new data "
                                      f"but {list(old.shells(element))} in the model from {source}")
    if tuple(old.common_shells) != tuple(new.common_shells):
        added = [e for e in new.elements if e not in old.elements]
        raise ModelExtensionError(
            f"the new element(s) {added} need the common orbital layout {new.common_orbital_types}, but the model "
            f"from {source} has {old.common_orbital_types}: its output heads cannot grow. Fine-tune only onto "
            f"elements whose shells fit into {old.common_orbital_types}, or train a new model "
            f"(training.dataset.common_orbital_types fixes a wider layout at pretraining)")
    return [e for e in new.elements if e not in old.elements]


def extend_model(model, old: OrbitalLayout, new: OrbitalLayout, statistics, source: str = "the starting model"):
    """A model for ``new.elements`` carrying ``model``'s trained weights (see the module docstring).

    Args:
        model: a built :class:`~deeph_tf.model.network.HamiltonianModel` for ``old``.
        old, new: its layout and the wider one (same common layout, a superset of elements).
        statistics: :class:`~deeph_tf.model.statistics.TargetStatistics` of the new data in
            the ``new`` layout (initial head scales/shifts of the new rows; pair cutoffs).
        source: the model's file, for messages.
    Returns:
        The new built model (``model`` is not modified).
    """
    from deeph_tf.model.builder import model_from_config

    added = check_extension(old, new, source)
    if not added:
        return model
    n_old, n_new = len(old.elements), len(new.elements)
    index = np.array([new.elements.index(e) for e in old.elements])  # old species -> new species
    config = dict(model.get_config(), elements=list(new.elements),
                  node_scale=statistics.node_scale, node_shift=statistics.node_shift, edge_scale=statistics.edge_scale,
                  pair_cutoffs=_merged_pair_cutoffs(model.pair_cutoffs, statistics.pair_max_edge_length, index, n_new),
                  periodic_images=bool(model.periodic_images or statistics.periodic_edges))
    config.pop("name", None)
    wider = model_from_config(config)
    rows = _species_rows(model, wider, index, n_old, n_new)
    old_weights, new_weights = model.weights, wider.weights
    if len(old_weights) != len(new_weights):
        raise ModelExtensionError(f"the model from {source} has {len(old_weights)} weights, its extension "
                                  f"{len(new_weights)}: not the same architecture")
    for k, (old_w, new_w) in enumerate(zip(old_weights, new_weights)):
        value = np.asarray(old_w.numpy())
        if k in rows:
            target_rows, value_rows = rows[k]
            updated = np.array(new_w.numpy())
            updated[target_rows] = value[value_rows]
            new_w.assign(updated)
        elif tuple(old_w.shape) == tuple(new_w.shape):
            new_w.assign(value)
        else:
            raise ModelExtensionError(f"weight {old_w.path} has the shape {tuple(old_w.shape)} in the model from "
                                      f"{source} but {tuple(new_w.shape)} in its extension")
    logger.info("fine-tuning adds the element(s) %s to the model's %s: their embeddings are new (random, as at "
                "pretraining), their head scales from the new data; every other weight is the model's",
                added, list(old.elements))
    return wider


def _species_rows(model, wider, index: np.ndarray, n_old: int, n_new: int) -> Dict[int, tuple]:
    """Position in ``model.weights`` -> (rows of the wider weight, rows of the old weight)."""
    def position(weights, variable):
        for k, w in enumerate(weights):
            if w is variable:
                return k
        raise ModelExtensionError(f"weight {variable.path} not found in the model")

    old_rows, all_old = index, np.arange(n_old)
    pairs_new = (index[:, None] * n_new + index[None, :]).ravel()
    pairs_old = (all_old[:, None] * n_old + all_old[None, :]).ravel()
    first_edge = model.backbone.edge_embedding.dense_layers[0].kernel
    n_radial = int(first_edge.shape[0]) - 2 * n_old
    radial = np.arange(n_radial)
    edge_new = np.concatenate([radial, n_radial + index, n_radial + n_new + index])
    edge_old = np.concatenate([radial, n_radial + all_old, n_radial + n_old + all_old])
    weights = model.weights
    rows = {
        position(weights, model.backbone.node_embedding.kernel): (old_rows, all_old),
        position(weights, first_edge): (edge_new, edge_old),
        position(weights, model.node_head.scale): (old_rows, all_old),
        position(weights, model.node_head.shift): (old_rows, all_old),
        position(weights, model.edge_head.scale): (pairs_new, pairs_old),
        position(weights, model.edge_head.shift): (pairs_new, pairs_old),
    }
    # the wider model must put these weights at the same positions
    wider_positions = {
        position(wider.weights, wider.backbone.node_embedding.kernel),
        position(wider.weights, wider.backbone.edge_embedding.dense_layers[0].kernel),
        position(wider.weights, wider.node_head.scale), position(wider.weights, wider.node_head.shift),
        position(wider.weights, wider.edge_head.scale), position(wider.weights, wider.edge_head.shift),
    }
    if wider_positions != set(rows):
        raise ModelExtensionError("the extended model orders its species-indexed weights differently")
    return rows


def _merged_pair_cutoffs(old_cutoffs, new_cutoffs: Sequence, index: np.ndarray, n_new: int):
    """[n_new, n_new]: the larger of the model's (moved to the new indices) and the data's, Angstrom."""
    merged = np.zeros((n_new, n_new))
    if new_cutoffs is not None and len(new_cutoffs):
        merged = np.asarray(new_cutoffs, dtype=np.float64).copy()
    if old_cutoffs is not None:
        old = np.asarray(old_cutoffs, dtype=np.float64)
        block = merged[np.ix_(index, index)]
        merged[np.ix_(index, index)] = np.maximum(block, old)
    return merged.tolist() if merged.any() else None


__all__ = ["ModelExtensionError", "check_extension", "extend_model"]
