"""Radial parts of an edge: Bessel basis, smooth polynomial cutoff, their product, and an MLP.

Distances are in Angstrom and >= 0. Contracts (tests/model/test_basic_layers.py):

* ``bessel_basis(r)_n = sqrt(2/c) sin(n pi r / c) / r`` for n = 1..N, equal to its limit
  ``sqrt(2/c) n pi / c`` at r = 0 (values and gradients finite there);
* ``polynomial_cutoff(r) = 1 - (p+1)(p+2)/2 d^p + p(p+2) d^(p+1) - p(p+1)/2 d^(p+2)`` with
  d = r / c for d < 1 and exactly 0 for d >= 1; value, first and second derivative vanish at
  r = c (the envelope of DimeNet, in NequIP's form), so the product is C^2 in r;
* ``RadialEmbedding(r) = bessel_basis(r) * polynomial_cutoff(r)``: exactly zero for r >= c;
* ``RadialMLP`` has no biases by default and silu(0) = 0, so a zero embedding (r >= c) gives
  an exactly zero output: edges fade out smoothly at the cutoff.
"""
from __future__ import annotations

import math
import numbers
from typing import List, Sequence

import keras
import tensorflow as tf

#: |x| below which sin(x)/x is evaluated by its Taylor series (error < 1e-17 there).
_SINC_TAYLOR_BELOW = 0.1


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")
    return int(value)


def _check_cutoff(value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < math.inf:
        raise ValueError(f"cutoff must be a positive finite number (Angstrom). Received: cutoff={value!r}")
    return float(value)


def check_activation(value, name: str) -> str:
    """``value`` if it names a Keras activation, else a ValueError naming ``name``."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be the name of a Keras activation (a string). Received: {name}={value!r}")
    try:
        keras.activations.get(value)
    except ValueError as error:
        raise ValueError(f"unknown activation {name}={value!r}") from error
    return value


def _sinc(x):
    """sin(x) / x with value 1 and smooth, finite gradients at x = 0."""
    small = tf.abs(x) < _SINC_TAYLOR_BELOW
    x_safe = tf.where(small, tf.ones_like(x), x)
    x2 = tf.square(tf.where(small, x, tf.zeros_like(x)))
    taylor = 1.0 - x2 / 6.0 * (1.0 - x2 / 20.0 * (1.0 - x2 / 42.0 * (1.0 - x2 / 72.0)))
    return tf.where(small, taylor, tf.sin(x_safe) / x_safe)


def bessel_basis(r, num_basis: int, cutoff: float):
    """Spherical Bessel (j_0) radial basis.

    Args:
        r: distances ``[...]`` (Angstrom, >= 0), float tensor.
        num_basis: N, number of basis functions.
        cutoff: c (Angstrom).

    Returns:
        ``[..., N]``: ``sqrt(2/c) sin(n pi r / c) / r`` for n = 1..N (limit ``sqrt(2/c) n pi / c`` at 0).
    """
    r = tf.convert_to_tensor(r)
    freq = tf.constant([n * math.pi / cutoff for n in range(1, num_basis + 1)], dtype=r.dtype)  # [N]
    return math.sqrt(2.0 / cutoff) * freq * _sinc(r[..., None] * freq)


def polynomial_cutoff(r, cutoff: float, p: int = 6):
    """Smooth envelope, 1 at r = 0 and exactly 0 (with zero 1st and 2nd derivatives) for r >= cutoff.

    ``u(d) = 1 - (p+1)(p+2)/2 d^p + p(p+2) d^(p+1) - p(p+1)/2 d^(p+2)`` for d = r / c < 1,
    evaluated as ``(1 - d)^3 sum_{k=0}^{p-1} (k+1)(k+2)/2 d^k`` (identical polynomial).

    Args:
        r: distances ``[...]`` (Angstrom, >= 0).
        cutoff: c (Angstrom).
        p: polynomial order (>= 1).

    Returns:
        ``[...]`` envelope values, dtype of ``r``.
    """
    r = tf.convert_to_tensor(r)
    d = tf.minimum(r / cutoff, 1.0)  # clipped so huge r cannot overflow (and the gradient there is 0)
    # Same polynomial, factored as (1 - d)^3 * sum_{k<p} (k+1)(k+2)/2 d^k: no cancellation near
    # d = 1 (the expanded form loses ~48 eps there, 2e-6 in float32).
    series = tf.zeros_like(d)
    for k in reversed(range(p)):  # Horner
        series = series * d + (k + 1) * (k + 2) / 2.0
    value = (1.0 - d) ** 3 * series
    return tf.where(d < 1.0, value, tf.zeros_like(value))


@keras.saving.register_keras_serializable(package="deeph_tf")
class BesselBasis(keras.layers.Layer):
    """Fixed (non-trainable) Bessel radial basis, see :func:`bessel_basis`.

    Args:
        num_basis: number of basis functions N (>= 1).
        cutoff: c in Angstrom (> 0).
        **kwargs: ``keras.layers.Layer`` arguments.

    Input shape:
        ``[...]`` distances (Angstrom).

    Output shape:
        ``[..., num_basis]``.
    """

    def __init__(self, num_basis: int, cutoff: float, **kwargs):
        super().__init__(**kwargs)
        self.num_basis = _check_positive_int(num_basis, "num_basis")
        self.cutoff = _check_cutoff(cutoff)

    def call(self, inputs):
        return bessel_basis(inputs, self.num_basis, self.cutoff)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.num_basis,)

    def get_config(self):
        config = super().get_config()
        config.update({"num_basis": self.num_basis, "cutoff": self.cutoff})
        return config


@keras.saving.register_keras_serializable(package="deeph_tf")
class PolynomialCutoff(keras.layers.Layer):
    """Smooth polynomial envelope, see :func:`polynomial_cutoff`.

    Args:
        cutoff: c in Angstrom (> 0).
        p: polynomial order (integer >= 1, default 6).
        **kwargs: ``keras.layers.Layer`` arguments.

    Input shape:
        ``[...]`` distances (Angstrom).

    Output shape:
        ``[...]``.
    """

    def __init__(self, cutoff: float, p: int = 6, **kwargs):
        super().__init__(**kwargs)
        self.cutoff = _check_cutoff(cutoff)
        self.p = _check_positive_int(p, "p")

    def call(self, inputs):
        return polynomial_cutoff(inputs, self.cutoff, self.p)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"cutoff": self.cutoff, "p": self.p})
        return config


@keras.saving.register_keras_serializable(package="deeph_tf")
class RadialEmbedding(keras.layers.Layer):
    """Bessel basis times polynomial envelope: ``[E] -> [E, num_basis]``, zero for r >= cutoff.

    Args:
        num_basis: number of basis functions (>= 1).
        cutoff: c in Angstrom (> 0).
        p: envelope order (integer >= 1, default 6).
        **kwargs: ``keras.layers.Layer`` arguments.

    Input shape:
        ``[...]`` distances (Angstrom, >= 0; 0 for padding edges is fine).

    Output shape:
        ``[..., num_basis]``.
    """

    def __init__(self, num_basis: int, cutoff: float, p: int = 6, **kwargs):
        super().__init__(**kwargs)
        self.num_basis = _check_positive_int(num_basis, "num_basis")
        self.cutoff = _check_cutoff(cutoff)
        self.p = _check_positive_int(p, "p")

    def call(self, inputs):
        r = tf.convert_to_tensor(inputs)
        return bessel_basis(r, self.num_basis, self.cutoff) * polynomial_cutoff(r, self.cutoff, self.p)[..., None]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.num_basis,)

    def get_config(self):
        config = super().get_config()
        config.update({"num_basis": self.num_basis, "cutoff": self.cutoff, "p": self.p})
        return config


@keras.saving.register_keras_serializable(package="deeph_tf")
class RadialMLP(keras.layers.Layer):
    """MLP on radial embeddings: Dense layers with ``activation``, the last one linear.

    Kernels are initialized variance preserving, ``Normal(0, 1/sqrt(fan_in))``. Without biases
    (the default) a zero input gives an exactly zero output, so edges beyond the cutoff
    contribute nothing; set ``use_bias=True`` only if that is not needed.

    Args:
        hidden_units: widths of the hidden layers (list of positive ints; may be empty).
        num_outputs: width of the output layer (>= 1).
        activation: Keras activation name for the hidden layers (default ``"silu"``).
        use_bias: give every Dense layer a bias (default False).
        **kwargs: ``keras.layers.Layer`` arguments.

    Input shape:
        ``[..., num_basis]``.

    Output shape:
        ``[..., num_outputs]``.
    """

    def __init__(
        self,
        hidden_units: Sequence[int],
        num_outputs: int,
        activation: str = "silu",
        use_bias: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(hidden_units, (str, bytes)) or not isinstance(hidden_units, Sequence):
            raise ValueError(
                f"hidden_units must be a list of positive integers. Received: hidden_units={hidden_units!r}"
            )
        self.hidden_units: List[int] = [_check_positive_int(u, "hidden_units[i]") for u in hidden_units]
        self.num_outputs = _check_positive_int(num_outputs, "num_outputs")
        self.activation = check_activation(activation, "activation")
        self.use_bias = bool(use_bias)
        widths = self.hidden_units + [self.num_outputs]
        self.dense_layers = [
            keras.layers.Dense(
                units,
                activation=self.activation if i < len(widths) - 1 else None,
                use_bias=self.use_bias,
                kernel_initializer=keras.initializers.VarianceScaling(
                    scale=1.0, mode="fan_in", distribution="untruncated_normal"
                ),
                dtype=self.dtype_policy,
                name=f"dense_{i}",
            )
            for i, units in enumerate(widths)
        ]

    def build(self, input_shape):
        shape = tuple(input_shape)
        if shape[-1] is None:
            raise ValueError(f"{self.name}: the last input axis (num_basis) must be known. Received: {shape}")
        for layer in self.dense_layers:
            layer.build(shape)
            shape = shape[:-1] + (layer.units,)
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: input_shape[-1]})
        self.built = True

    def call(self, inputs):
        x = inputs
        for layer in self.dense_layers:
            x = layer(x)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_outputs,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_units": list(self.hidden_units),
                "num_outputs": self.num_outputs,
                "activation": self.activation,
                "use_bias": self.use_bias,
            }
        )
        return config


__all__ = [
    "bessel_basis",
    "polynomial_cutoff",
    "BesselBasis",
    "PolynomialCutoff",
    "RadialEmbedding",
    "RadialMLP",
]
