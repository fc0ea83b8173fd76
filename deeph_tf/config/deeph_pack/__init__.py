"""DeepH-pack's TOML inputs, as they are: ``dtrain train.toml``, ``dpredict infer.toml``.

A training TOML becomes a deeph_tf training input (:func:`load_train_toml` -> :class:`TrainPlan`,
its ``config`` normalized by the schema like any JSON input); an inference TOML becomes the
arguments of dpredict (:func:`load_infer_toml` -> :class:`PredictPlan`). Every key of
DeepH-pack 1.0.6 (:mod:`.keys`, absent keys at DeepH-pack's defaults) is either mapped with
DeepH-pack's meaning, accepted with a note saying why it changes nothing computed, or refused
with a message naming the key, why, and what to use instead; unknown keys are refused
DeePMD-style (``undefined key 'batchsize' at process.train.dataloader; did you mean
batch_size?``). The notes are logged at INFO by :func:`log_notes`.

Layer: as :mod:`deeph_tf.config` (stdlib ``tomllib``; h5py only when a checkpoint is read).
"""
from __future__ import annotations

import logging

from deeph_tf.config.deeph_pack.infer import PredictPlan, load_infer_toml
from deeph_tf.config.deeph_pack.reader import INFER_KIND, TRAIN_KIND, TomlInput, is_toml, read_toml
from deeph_tf.config.deeph_pack.system import RUN_FOLDER_FORMAT, Runtime, apply_runtime
from deeph_tf.config.deeph_pack.train import TrainPlan, load_train_toml

logger = logging.getLogger(__name__)


def log_notes(toml: TomlInput) -> None:
    """Log what the conversion of ``toml`` decided (INFO), one line per note."""
    logger.info("%s: DeepH-pack %s TOML", toml.path, "training" if toml.kind == TRAIN_KIND else "inference")
    for note in toml.notes:
        logger.info("  %s", note)


__all__ = ["INFER_KIND", "PredictPlan", "RUN_FOLDER_FORMAT", "Runtime", "TRAIN_KIND", "TomlInput", "TrainPlan",
           "apply_runtime", "is_toml", "load_infer_toml", "load_train_toml", "log_notes", "read_toml"]
