"""The Keras 3 optimizer of the ``optimizer`` input section.

The learning rate is given as a float, which Keras keeps in a non-trainable scalar variable
(``optimizer.learning_rate``). The training loop assigns the schedule's value to it before
each step (``optimizer.learning_rate.assign(lr)``); a compiled step reads the variable, so
changing it neither retraces nor recompiles. Gradient clipping (``clip_norm``) is not the
optimizer's job here: the training step clips (see deeph_tf.train.step.CompiledSteps).
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Mapping

import keras

from deeph_tf.config import load_schema

logger = logging.getLogger(__name__)

__all__ = ["OPTIMIZERS", "build_optimizer"]

#: The ``optimizer.type`` values.
OPTIMIZERS = ("adam", "adamw", "sgd")


def _schema_defaults() -> Dict[str, Any]:
    properties = load_schema()["properties"]["optimizer"]["properties"]
    return {key: node["default"] for key, node in properties.items()}


def build_optimizer(optimizer_config: Mapping[str, Any], learning_rate: float) -> keras.optimizers.Optimizer:
    """A Keras optimizer from a normalized ``optimizer`` section.

    Args:
        optimizer_config: ``config["optimizer"]``; missing keys take the schema's defaults.
            "adam": beta1, beta2, epsilon; "adamw": the same plus weight_decay (decoupled,
            per step, times the learning rate); "sgd": momentum. ``clip_norm`` is ignored
            here (the training step clips).
        learning_rate: the initial learning rate (the schedule's value at the first step,
            already scaled for the number of workers).

    Returns:
        ``keras.optimizers.Adam``, ``AdamW`` or ``SGD``, whose ``learning_rate`` is a
        float32 variable to ``assign`` to.

    Raises:
        ValueError: an unknown type, or weight_decay / momentum set for a type that does not
            use them.
    """
    unknown = set(optimizer_config) - set(_schema_defaults())
    if unknown:
        raise ValueError(f"unknown optimizer keys: {sorted(unknown)}")
    cfg = {**_schema_defaults(), **optimizer_config}
    kind = cfg["type"]
    if kind not in OPTIMIZERS:
        raise ValueError(f"optimizer type must be one of {OPTIMIZERS}, got {kind!r}")
    if cfg["weight_decay"] and kind != "adamw":
        raise ValueError(f"weight_decay is used by the optimizer type 'adamw' only (type is {kind!r})")
    if cfg["momentum"] and kind != "sgd":
        raise ValueError(f"momentum is used by the optimizer type 'sgd' only (type is {kind!r})")
    learning_rate = float(learning_rate)
    if kind == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=learning_rate, momentum=float(cfg["momentum"]))
    else:
        adam_args = dict(
            learning_rate=learning_rate,
            beta_1=float(cfg["beta1"]),
            beta_2=float(cfg["beta2"]),
            epsilon=float(cfg["epsilon"]),
        )
        if kind == "adamw":
            optimizer = keras.optimizers.AdamW(weight_decay=float(cfg["weight_decay"]), **adam_args)
        else:
            optimizer = keras.optimizers.Adam(**adam_args)
    logger.debug("optimizer %s with learning rate %.3g", type(optimizer).__name__, learning_rate)
    return optimizer
