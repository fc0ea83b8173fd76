"""Equivariant linear layer: channel mixing within each irrep (l, p).

Contract (tests/model/test_basic_layers.py): for every rotation Q and the inversion,
    Linear(x @ D(Q)^T) = Linear(x) @ D(Q)^T,   Linear(P x) = P Linear(x).
Only channels of the same (l, p) mix, with one weight matrix per (l, p) shared by all m, so
the layer commutes with every D^l(Q); the bias touches only 0e outputs (D^0 = 1, p = +1).
"""
from __future__ import annotations

import math
from typing import Dict, List, Tuple

import keras
import tensorflow as tf

from deeph_tf.model.irreps_ops import as_irreps, batch_shape, merge_irreps, split_irreps
from deeph_tf.so3.irreps import Irrep

_SCALAR = Irrep(0, 1)


@keras.saving.register_keras_serializable(package="deeph_tf")
class EquivariantLinear(keras.layers.Layer):
    """Mixes channels of equal irrep (l, p): ``y_ir = x_ir @ W_ir (+ b for 0e)``.

    Terms are grouped by irrep. For an irrep ``ir`` present in both ``irreps_in`` and
    ``irreps_out``, all input terms of ``ir`` are pooled (in ``irreps_in`` order) into
    ``M_in = irreps_in.count(ir)`` channels and all output terms of ``ir`` (in ``irreps_out``
    order) into ``M_out = irreps_out.count(ir)`` channels; one weight ``kernel_<ir>`` of shape
    ``[M_in, M_out]`` maps them with a single einsum over ``[..., M_in, 2l+1]``. Output columns
    ``[off_k, off_k + mul_k)`` of that kernel belong to the k-th output term of ``ir``.

    Initialization is variance preserving: ``W ~ Normal(0, 1/sqrt(M_in))`` (so unit-variance
    inputs give unit-variance outputs). The bias ``bias_0e`` (``[irreps_out.count("0e")]``,
    zeros) exists when ``use_bias`` and 0e is reachable.

    Output irreps whose (l, p) has no input channel cannot be produced equivariantly by a
    linear map. They raise a ValueError naming them unless ``allow_zero_outputs=True``, in
    which case those terms are exactly zero (no bias either).

    Args:
        irreps_in: ``Irreps`` or string, e.g. ``"32x0e+16x1o"``; positive dimension.
        irreps_out: ``Irreps`` or string; positive dimension.
        use_bias: add a learnable bias to the 0e outputs.
        allow_zero_outputs: accept unreachable output irreps (they are zero).
        **kwargs: ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).

    Input shape:
        ``[..., irreps_in.dim]`` (at least rank 1).

    Output shape:
        ``[..., irreps_out.dim]``.
    """

    def __init__(self, irreps_in, irreps_out, use_bias: bool = True, allow_zero_outputs: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.irreps_in = as_irreps(irreps_in, "irreps_in", allow_empty=False)
        self.irreps_out = as_irreps(irreps_out, "irreps_out", allow_empty=False)
        self.use_bias = bool(use_bias)
        self.allow_zero_outputs = bool(allow_zero_outputs)

        in_count: Dict[Irrep, int] = {}
        for item in self.irreps_in:
            in_count[item.ir] = in_count.get(item.ir, 0) + item.mul
        # Groups in order of first appearance in irreps_out: ir -> [(term index k, mul)].
        groups: Dict[Irrep, List[Tuple[int, int]]] = {}
        for k, item in enumerate(self.irreps_out):
            groups.setdefault(item.ir, []).append((k, item.mul))
        unreachable = [
            str(ir) for ir, terms in groups.items() if in_count.get(ir, 0) == 0 and sum(m for _, m in terms) > 0
        ]
        if unreachable and not self.allow_zero_outputs:
            raise ValueError(
                f"irreps_out={str(self.irreps_out)!r} contains irreps {', '.join(unreachable)} that no "
                f"input of irreps_in={str(self.irreps_in)!r} can reach equivariantly; add them to "
                "irreps_in or pass allow_zero_outputs=True to output zeros there"
            )
        #: irreps that get a kernel, in weight-creation order.
        self.paths: List[Irrep] = [
            ir for ir, terms in groups.items() if in_count.get(ir, 0) > 0 and sum(m for _, m in terms) > 0
        ]
        self._in_count = in_count
        self._out_groups = groups
        self._has_bias = self.use_bias and _SCALAR in self.paths

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != self.irreps_in.dim:
            raise ValueError(
                f"{self.name}: last input axis must have size irreps_in.dim={self.irreps_in.dim} "
                f"({str(self.irreps_in)!r}). Received: input_shape={tuple(input_shape)}"
            )
        #: one kernel per irrep of ``self.paths``, same order.
        self.kernels = []
        for ir in self.paths:
            fan_in = self._in_count[ir]
            fan_out = sum(m for _, m in self._out_groups[ir])
            kernel = self.add_weight(
                shape=(fan_in, fan_out),
                initializer=keras.initializers.RandomNormal(stddev=1.0 / math.sqrt(fan_in)),
                name=f"kernel_{ir}",
            )
            self.kernels.append(kernel)
        self.bias = None
        if self._has_bias:
            self.bias = self.add_weight(
                shape=(self.irreps_out.count(_SCALAR),), initializer="zeros", name="bias_0e"
            )
        self.input_spec = keras.layers.InputSpec(min_ndim=1, axes={-1: self.irreps_in.dim})
        self.built = True

    def call(self, inputs):
        x = tf.convert_to_tensor(inputs)
        parts_in = split_irreps(x, self.irreps_in)
        lead = batch_shape(x)
        parts_out: List[tf.Tensor] = [None] * len(self.irreps_out)
        for ir, kernel in zip(self.paths, self.kernels):
            pooled = [p for p, item in zip(parts_in, self.irreps_in) if item.ir == ir and item.mul > 0]
            x_ir = pooled[0] if len(pooled) == 1 else tf.concat(pooled, axis=-2)  # [..., M_in, 2l+1]
            w = tf.cast(kernel, x.dtype)  # [M_in, M_out]
            # Explicit labels, not "...": TensorFlow's einsum gradient for an ellipsis materializes the
            # [..., M_in, M_out] outer product and sums it, instead of one GEMM for the kernel.
            rows = tf.reshape(x_ir, [-1, x_ir.shape[-2], ir.dim])  # [N, M_in, 2l+1]
            y_ir = tf.reshape(tf.einsum("nim,io->nom", rows, w), lead + [w.shape[-1], ir.dim])  # [..., M_out, 2l+1]
            if ir == _SCALAR and self.bias is not None:
                y_ir = y_ir + tf.cast(self.bias, x.dtype)[:, None]
            terms = self._out_groups[ir]
            pieces = tf.split(y_ir, [m for _, m in terms], axis=-2) if len(terms) > 1 else [y_ir]
            for (k, _), piece in zip(terms, pieces):
                parts_out[k] = piece
        for k, item in enumerate(self.irreps_out):
            if parts_out[k] is None:  # unreachable (allow_zero_outputs) or mul = 0
                parts_out[k] = tf.zeros(lead + [item.mul, item.ir.dim], dtype=x.dtype)
        return merge_irreps(parts_out, self.irreps_out)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.irreps_out.dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "irreps_in": str(self.irreps_in),
                "irreps_out": str(self.irreps_out),
                "use_bias": self.use_bias,
                "allow_zero_outputs": self.allow_zero_outputs,
            }
        )
        return config


__all__ = ["EquivariantLinear"]
