"""One loader: a checkpoint or a frozen model -> the built Keras model and its metadata.

``dtest`` (prediction), ``dfreeze`` and ``dtrain -r/-i/-f`` all start here. The model is
re-created from the stored ``model_config`` (:func:`deeph_tf.model.builder.model_from_config`)
and given the stored weights:

- a checkpoint (file, prefix or folder; :func:`~deeph_tf.artifacts.checkpoint.resolve_checkpoint`):
  its ``model/`` arrays;
- a frozen model folder (``saved_model.pb``): its ``model_variables`` (``model.weights`` order).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from deeph_tf.artifacts.checkpoint import (Checkpoint, CheckpointError, PathLike, assign_values, best_checkpoint,
                                           read_checkpoint, resolve_checkpoint)
from deeph_tf.artifacts.frozen import freeze_model, is_frozen_model, load_frozen_weights

logger = logging.getLogger(__name__)

#: ``metadata["kind"]`` of the two sources (and the ``kind`` argument of :func:`load_model`).
CHECKPOINT, FROZEN = "checkpoint", "frozen"


def model_from_checkpoint(checkpoint: Checkpoint):
    """The model of a checkpoint read with :func:`read_checkpoint`, with its weights."""
    from deeph_tf.model.builder import model_from_config

    model = model_from_config(checkpoint.model_config)
    assign_values(model.weights, checkpoint.model_weights, "model weights", checkpoint.path)
    return model


def load_model(path: PathLike, kind: Optional[str] = None) -> Tuple[Any, Dict[str, Any]]:
    """(model with its weights, metadata) of the checkpoint or frozen model at ``path``.

    Args:
        path: a frozen model folder, or a checkpoint file, prefix or folder.
        kind: :data:`CHECKPOINT` or :data:`FROZEN` to accept only that kind (None: either).

    The metadata holds ``kind``, ``source`` (the file or folder read), ``model_config``,
    ``layout`` (``OrbitalLayout.to_dict()``), ``input`` (the normalized training input),
    ``step`` and ``version``; a frozen model's also everything in its ``metadata.json``.

    Raises:
        CheckpointError: nothing of the wanted kind at ``path``, or weights that do not fit.
    """
    frozen = is_frozen_model(path)
    if kind == FROZEN and not frozen:
        raise CheckpointError(f"{path}: not a frozen model (no saved_model.pb); make one with dfreeze")
    if kind == CHECKPOINT and frozen:
        raise CheckpointError(f"{path}: a frozen model, not a checkpoint; pass a checkpoint file, prefix or folder")
    if frozen:
        from deeph_tf.model.builder import model_from_config

        stored, weights = load_frozen_weights(path)
        metadata = dict(stored, kind=FROZEN, source=str(path))
        model = model_from_config(metadata["model_config"])
        assign_values(model.weights, weights, "model weights", path)
        return model, metadata
    checkpoint = read_checkpoint(resolve_checkpoint(path))
    metadata = {"kind": CHECKPOINT, "source": str(checkpoint.path), "input": checkpoint.input, "step": checkpoint.step,
                "training_data": checkpoint.extra.get("training_data") or {},
                "version": checkpoint.version, "layout": checkpoint.layout, "model_config": checkpoint.model_config}
    return model_from_checkpoint(checkpoint), metadata


def freeze_checkpoint(spec: PathLike, output: PathLike, best: bool = False) -> Path:
    """``dfreeze``: the checkpoint named by ``spec`` (its best model with ``best``) -> SavedModel."""
    path = resolve_checkpoint(spec)
    if best:
        path = best_checkpoint(path.parent)
    checkpoint = read_checkpoint(path)
    metadata = {"input": checkpoint.input, "step": checkpoint.step, "checkpoint": str(path),
                "trained_with": checkpoint.version, "training_data": checkpoint.extra.get("training_data") or {},
                "target": checkpoint.input.get("model", {}).get("target", "hamiltonian")}
    logger.info("freezing %s (step %d)", path, checkpoint.step)
    return freeze_model(model_from_checkpoint(checkpoint), checkpoint.layout, metadata, output)
