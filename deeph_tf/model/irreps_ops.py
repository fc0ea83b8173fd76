"""Pure helpers on flat irreps features ``[..., irreps.dim]`` (TensorFlow ops, no weights).

Layout (project-wide): term k = ``mul_k x (l_k, p_k)`` of an ``Irreps`` occupies
``irreps.slices()[k]`` of the last axis and, reshaped, is ``[..., mul_k, 2 l_k + 1]``
(row-major: channel-major, then m = -l..l in DeepH's order).

Contracts (checked in tests/model/test_basic_layers.py):
    merge_irreps(split_irreps(x, irreps), irreps) == x
    rotate_features(x, irreps, D)[term k] == x[term k] @ D^{l_k}(Q)^T
    invert_features(x, irreps)[term k] == p_k * x[term k]
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np
import tensorflow as tf

from deeph_tf.so3.irreps import Irreps


def as_irreps(value, name: str = "irreps", allow_empty: bool = True) -> Irreps:
    """Parse ``value`` (``Irreps``, string or list) into :class:`Irreps` for argument ``name``.

    Raises:
        ValueError: quoting ``name`` and the bad value when it cannot be parsed, or when it is
            empty (zero dimension) and ``allow_empty`` is False.
    """
    try:
        irreps = Irreps(value)
    except (ValueError, TypeError) as error:
        raise ValueError(f"invalid {name}={value!r}: {error}") from error
    if not allow_empty and irreps.dim == 0:
        raise ValueError(f"{name} must have a positive dimension. Received: {name}={str(irreps)!r}")
    return irreps


def batch_shape(x) -> list:
    """Leading shape ``x.shape[:-1]`` as a list, static where known, dynamic entries otherwise."""
    static = x.shape[:-1]
    if static.is_fully_defined():
        return list(static)
    dynamic = tf.shape(x)[:-1]
    return [dim if dim is not None else dynamic[i] for i, dim in enumerate(static.as_list())]


def split_irreps(x, irreps) -> List[tf.Tensor]:
    """Split flat features into one tensor per term.

    Args:
        x: ``[..., irreps.dim]`` tensor.
        irreps: ``Irreps`` (or string) describing the last axis of ``x``.

    Returns:
        list over the terms of ``irreps`` of ``[..., mul_k, 2 l_k + 1]`` tensors (same dtype).
    """
    irreps = Irreps(irreps)
    x = tf.convert_to_tensor(x)
    if x.shape[-1] is not None and x.shape[-1] != irreps.dim:
        raise ValueError(
            f"last axis of x has size {x.shape[-1]} but irreps {str(irreps)!r} have dim {irreps.dim}"
        )
    lead = batch_shape(x)
    # One split, not a strided slice per term: the gradient of a split is one concat, while every
    # slice's gradient pads its piece back to the full width (measured: 14% of a training step,
    # benchmarks/profile_step.py).
    pieces = tf.split(x, [item.dim for item in irreps], axis=-1) if len(irreps) > 1 else [x]
    return [tf.reshape(piece, lead + [item.mul, item.ir.dim]) for item, piece in zip(irreps, pieces)]


def merge_irreps(parts: Sequence, irreps) -> tf.Tensor:
    """Inverse of :func:`split_irreps`: ``[..., mul_k, 2 l_k + 1]`` per term -> ``[..., irreps.dim]``.

    Raises:
        ValueError: when the number of parts differs from the number of terms, or ``irreps``
            has no terms (the leading shape could not be known).
    """
    irreps = Irreps(irreps)
    if len(parts) != len(irreps):
        raise ValueError(f"got {len(parts)} parts for the {len(irreps)} terms of {str(irreps)!r}")
    if not parts:
        raise ValueError("cannot merge an empty list of parts (irreps has no terms)")
    flat = []
    for part, item in zip(parts, irreps):
        part = tf.convert_to_tensor(part)
        lead = batch_shape(part[..., 0])  # shape without the last two axes
        flat.append(tf.reshape(part, lead + [item.dim]))
    return flat[0] if len(flat) == 1 else tf.concat(flat, axis=-1)


def rotate_features(x, irreps, wigner_list) -> tf.Tensor:
    """Apply a rotation to flat features: every term ``x_k -> x_k @ D^{l_k}(Q)^T``.

    Args:
        x: ``[..., irreps.dim]`` tensor.
        irreps: ``Irreps`` of the last axis.
        wigner_list: list indexed by l (as returned by ``deeph_tf.so3.wigner_D(lmax, Q)``) of
            ``[B..., 2l+1, 2l+1]`` tensors whose batch shape ``B...`` broadcasts against the
            leading shape ``[...]`` of ``x`` (e.g. ``[2l+1, 2l+1]`` for one rotation of all rows,
            or ``[R, 1, 2l+1, 2l+1]`` for ``x`` of shape ``[R, N, dim]``). Must reach ``irreps.lmax``.

    Returns:
        ``[..., irreps.dim]`` rotated features, dtype of ``x``.
    """
    irreps = Irreps(irreps)
    x = tf.convert_to_tensor(x)
    if irreps.dim and irreps.lmax >= len(wigner_list):
        raise ValueError(f"wigner_list reaches l={len(wigner_list) - 1}, irreps need l={irreps.lmax}")
    parts = split_irreps(x, irreps)
    rotated = []
    for part, item in zip(parts, irreps):
        d = tf.cast(wigner_list[item.ir.l], x.dtype)  # [B..., 2l+1, 2l+1]
        # part is [..., mul, 2l+1]: its matrix axes are (mul, m), so D's batch axes meet x's leading axes
        rotated.append(tf.linalg.matmul(part, d, transpose_b=True))
    return merge_irreps(rotated, irreps)


def parity_signs(irreps) -> np.ndarray:
    """``[irreps.dim]`` float64 array holding the parity p_k of every component."""
    irreps = Irreps(irreps)
    return np.concatenate([np.full(item.dim, float(item.ir.p)) for item in irreps] or [np.zeros(0)])


def invert_features(x, irreps) -> tf.Tensor:
    """Apply the inversion r -> -r: every term is multiplied by its parity p_k (``[..., dim]``)."""
    x = tf.convert_to_tensor(x)
    return x * tf.constant(parity_signs(irreps), dtype=x.dtype)


__all__ = [
    "as_irreps",
    "batch_shape",
    "split_irreps",
    "merge_irreps",
    "rotate_features",
    "parity_signs",
    "invert_features",
]
