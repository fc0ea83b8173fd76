"""Equivariant layer normalization of flat irreps features.

Contract (tests/model/test_basic_layers.py): Norm(x @ D(Q)^T) = Norm(x) @ D(Q)^T and
Norm(P x) = P Norm(x) exactly (up to round-off), and zero rows give finite values and
gradients.
"""
from __future__ import annotations

import numbers

import keras
import tensorflow as tf

from deeph_tf.model.irreps_ops import as_irreps, merge_irreps, split_irreps
from deeph_tf.so3.irreps import Irrep

_SCALAR = Irrep(0, 1)


@keras.saving.register_keras_serializable(package="deeph_tf")
class EquivariantLayerNorm(keras.layers.Layer):
    """Layer norm for irreps features.

    * 0e channels (all 0e terms pooled, ``M`` channels): standard layer norm,
      ``y = (x - mean) / sqrt(var + eps) * scale_0e + bias_0e`` with mean and variance over
      the ``M`` channels; weights ``scale_0e`` (ones) and ``bias_0e`` (zeros), shape ``[M]``.
      With a single 0e channel the output is ``bias_0e``.
    * all other terms (``mul x (l, p)``, including 0o) together: ``y_c = x_c / sqrt(mean |x|^2 + eps)
      * scale_k[c]`` where the mean of the per-channel squared norms runs over every channel of
      every non-0e term (rotation and parity invariant); weight ``scale_<k>_<ir>`` (ones), shape
      ``[mul]``; no bias (it would break equivariance). One joint RMS, not one per term: in a
      symmetric environment some irreps vanish exactly (e.g. on the O of water), and dividing such
      a term by its own tiny norm would blow float32 rounding noise up to O(1).

    ``eps`` sits inside the square root, so all-zero rows (padding) give zeros with finite
    gradients. Terms with multiplicity 0 pass through.

    Args:
        irreps: ``Irreps`` or string of the features; positive dimension.
        epsilon: > 0, added to the variance / mean square.
        **kwargs: ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).

    Input shape:
        ``[..., irreps.dim]``.

    Output shape:
        ``[..., irreps.dim]``.
    """

    def __init__(self, irreps, epsilon: float = 1e-6, **kwargs):
        super().__init__(**kwargs)
        self.irreps = as_irreps(irreps, "irreps", allow_empty=False)
        if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or not epsilon > 0:
            raise ValueError(f"epsilon must be a positive number. Received: epsilon={epsilon!r}")
        self.epsilon = float(epsilon)
        self._scalar_terms = [k for k, item in enumerate(self.irreps) if item.ir == _SCALAR and item.mul > 0]
        self._other_terms = [k for k, item in enumerate(self.irreps) if item.ir != _SCALAR and item.mul > 0]
        self._num_scalars = self.irreps.count(_SCALAR)

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != self.irreps.dim:
            raise ValueError(
                f"{self.name}: last input axis must have size irreps.dim={self.irreps.dim} "
                f"({str(self.irreps)!r}). Received: input_shape={tuple(input_shape)}"
            )
        self.scale_0e = self.bias_0e = None
        if self._num_scalars:
            self.scale_0e = self.add_weight(shape=(self._num_scalars,), initializer="ones", name="scale_0e")
            self.bias_0e = self.add_weight(shape=(self._num_scalars,), initializer="zeros", name="bias_0e")
        #: per-channel scales of the non-0e terms, in the order of ``self._other_terms``.
        self.scales = []
        for k in self._other_terms:
            item = self.irreps[k]
            self.scales.append(self.add_weight(shape=(item.mul,), initializer="ones", name=f"scale_{k}_{item.ir}"))
        self.input_spec = keras.layers.InputSpec(min_ndim=1, axes={-1: self.irreps.dim})
        self.built = True

    def call(self, inputs):
        x = tf.convert_to_tensor(inputs)
        eps = tf.constant(self.epsilon, dtype=x.dtype)
        parts = split_irreps(x, self.irreps)
        out = list(parts)
        if self._scalar_terms:
            pooled = [parts[k][..., 0] for k in self._scalar_terms]
            s = pooled[0] if len(pooled) == 1 else tf.concat(pooled, axis=-1)  # [..., M]
            mean = tf.reduce_mean(s, axis=-1, keepdims=True)
            centred = s - mean
            var = tf.reduce_mean(tf.square(centred), axis=-1, keepdims=True)
            y = centred * tf.math.rsqrt(var + eps) * tf.cast(self.scale_0e, x.dtype) + tf.cast(self.bias_0e, x.dtype)
            sizes = [self.irreps[k].mul for k in self._scalar_terms]
            pieces = tf.split(y, sizes, axis=-1) if len(sizes) > 1 else [y]
            for k, piece in zip(self._scalar_terms, pieces):
                out[k] = piece[..., None]
        if self._other_terms:
            squared = [tf.reduce_sum(tf.square(parts[k]), axis=[-2, -1]) for k in self._other_terms]  # [...]
            channels = sum(self.irreps[k].mul for k in self._other_terms)
            mean_square = tf.add_n(squared) / tf.cast(channels, x.dtype) if len(squared) > 1 else squared[0] / channels
            factor = tf.math.rsqrt(mean_square + eps)[..., None, None]
            for k, scale in zip(self._other_terms, self.scales):
                out[k] = parts[k] * factor * tf.cast(scale, x.dtype)[:, None]
        return merge_irreps(out, self.irreps)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"irreps": str(self.irreps), "epsilon": self.epsilon})
        return config


__all__ = ["EquivariantLayerNorm"]
