"""Gate nonlinearity (e3nn's ``nn.Gate``) and its irreps planner.

Contract (tests/model/test_basic_layers.py): with ``x = [scalars | gates | gated]`` (flat),
    Gate(x) = [act(scalars) | act_gates(gates)_i * gated_i],
equivariant under rotations and inversion because the gates are invariant (0e) and odd
scalars (0o) go through the odd function tanh.
"""
from __future__ import annotations

from typing import Tuple

import keras
import numpy as np
import tensorflow as tf

from deeph_tf.model.irreps_ops import as_irreps, merge_irreps, split_irreps
from deeph_tf.model.radial import check_activation
from deeph_tf.so3.irreps import Irrep, Irreps

_SCALAR = Irrep(0, 1)


def gate_irreps(irreps_out) -> Tuple[Irreps, Irreps, Irreps]:
    """Split a desired hidden irreps into the three inputs of :class:`Gate`.

    Args:
        irreps_out: e.g. ``"64x0e+32x1o+16x2e"``.

    Returns:
        ``(scalars, gates, gated)``: ``scalars`` = the l = 0 terms (0e and 0o) in their order,
        ``gated`` = the l > 0 terms in their order, ``gates`` = ``"<gated.num_irreps>x0e"``
        (empty when nothing is gated). The preceding layer must produce
        ``scalars + gates + gated``; the gate then outputs ``scalars + gated``, which equals
        ``irreps_out`` when its scalars come first (otherwise the same terms, scalars moved
        to the front).

    Example:
        ``gate_irreps("64x0e+32x1o+16x2e") == (Irreps("64x0e"), Irreps("48x0e"), Irreps("32x1o+16x2e"))``.
    """
    irreps_out = as_irreps(irreps_out, "irreps_out")
    scalars = Irreps([item for item in irreps_out if item.ir.l == 0])
    gated = Irreps([item for item in irreps_out if item.ir.l > 0])
    gates = Irreps([(gated.num_irreps, _SCALAR)]) if gated.num_irreps > 0 else Irreps()
    return scalars, gates, gated


@keras.saving.register_keras_serializable(package="deeph_tf")
class Gate(keras.layers.Layer):
    """Gated nonlinearity: scalars through an activation, other irreps scaled by gates.

    The input is the flat concatenation, in this order, of ``irreps_scalars``,
    ``irreps_gates`` and ``irreps_gated``; the output is ``irreps_scalars + irreps_gated``:

    * 0e scalars -> ``act_scalars(x)``; 0o scalars -> ``tanh(x)`` (odd, keeps parity);
    * the i-th gate scalar (flat order) passes through ``act_gates`` and multiplies all 2l+1
      components of the i-th gated irrep (flat order: term by term, channel by channel).

    No weights. Use :func:`gate_irreps` to plan the three parts from a hidden irreps.

    Args:
        irreps_scalars: l = 0 irreps only (0e and/or 0o); may be empty.
        irreps_gates: 0e irreps only, with ``num_irreps == irreps_gated.num_irreps``.
        irreps_gated: any irreps (usually l > 0); may be empty.
        act_scalars: Keras activation name for the 0e scalars (default ``"silu"``).
        act_gates: Keras activation name for the gates (default ``"sigmoid"``).
        **kwargs: ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).

    Input shape:
        ``[..., scalars.dim + gates.dim + gated.dim]``.

    Output shape:
        ``[..., scalars.dim + gated.dim]``.
    """

    def __init__(
        self,
        irreps_scalars,
        irreps_gates,
        irreps_gated,
        act_scalars: str = "silu",
        act_gates: str = "sigmoid",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.irreps_scalars = as_irreps(irreps_scalars, "irreps_scalars")
        self.irreps_gates = as_irreps(irreps_gates, "irreps_gates")
        self.irreps_gated = as_irreps(irreps_gated, "irreps_gated")
        bad = [str(item.ir) for item in self.irreps_scalars if item.ir.l != 0]
        if bad:
            raise ValueError(
                f"irreps_scalars must hold only l = 0 irreps (0e, 0o). "
                f"Received: irreps_scalars={str(self.irreps_scalars)!r} (has {', '.join(bad)})"
            )
        bad = [str(item.ir) for item in self.irreps_gates if item.ir != _SCALAR]
        if bad:
            raise ValueError(
                f"irreps_gates must hold only 0e irreps. Received: irreps_gates={str(self.irreps_gates)!r} "
                f"(has {', '.join(bad)})"
            )
        if self.irreps_gates.num_irreps != self.irreps_gated.num_irreps:
            raise ValueError(
                f"need one gate per gated irrep: irreps_gates={str(self.irreps_gates)!r} has "
                f"{self.irreps_gates.num_irreps}, irreps_gated={str(self.irreps_gated)!r} has "
                f"{self.irreps_gated.num_irreps}"
            )
        if self.irreps_scalars.dim + self.irreps_gated.dim == 0:
            raise ValueError("Gate needs at least one scalar or gated irrep")
        self.act_scalars = check_activation(act_scalars, "act_scalars")
        self.act_gates = check_activation(act_gates, "act_gates")
        self._act_scalars_fn = keras.activations.get(self.act_scalars)
        self._act_gates_fn = keras.activations.get(self.act_gates)
        #: irreps of the input and the output.
        self.irreps_in = self.irreps_scalars + self.irreps_gates + self.irreps_gated
        self.irreps_out = self.irreps_scalars + self.irreps_gated
        # Which scalar components are odd (tanh), and which gate each gated component uses.
        signs = [item.ir.p for item in self.irreps_scalars for _ in range(item.mul)]
        self._odd_scalars = np.array([p == -1 for p in signs], dtype=bool)

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != self.irreps_in.dim:
            raise ValueError(
                f"{self.name}: last input axis must have size {self.irreps_in.dim} "
                f"(scalars + gates + gated = {str(self.irreps_in)!r}). Received: input_shape={tuple(input_shape)}"
            )
        self.input_spec = keras.layers.InputSpec(min_ndim=1, axes={-1: self.irreps_in.dim})
        self.built = True

    def call(self, inputs):
        x = tf.convert_to_tensor(inputs)
        n_s, n_g = self.irreps_scalars.dim, self.irreps_gates.dim
        # one split (its gradient is one concat; a strided slice's pads to the full width)
        s, gates, gated = tf.split(x, [n_s, n_g, self.irreps_gated.dim], axis=-1)
        out = []
        if n_s:
            if self._odd_scalars.all():
                out.append(tf.tanh(s))
            elif self._odd_scalars.any():
                odd = tf.constant(self._odd_scalars)
                out.append(tf.where(odd, tf.tanh(s), self._act_scalars_fn(s)))
            else:
                out.append(self._act_scalars_fn(s))
        if self.irreps_gated.dim:
            gates = self._act_gates_fn(gates)  # [..., num_gated]
            # each gate scales its channel's 2l+1 components: a broadcast per term (a gather's
            # gradient would be a scatter-add)
            gate_parts = tf.split(gates, [item.mul for item in self.irreps_gated], axis=-1)
            gated_parts = split_irreps(gated, self.irreps_gated)  # [..., mul, 2l+1] each
            out.append(merge_irreps([v * g[..., None] for v, g in zip(gated_parts, gate_parts)], self.irreps_gated))
        return out[0] if len(out) == 1 else tf.concat(out, axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.irreps_out.dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "irreps_scalars": str(self.irreps_scalars),
                "irreps_gates": str(self.irreps_gates),
                "irreps_gated": str(self.irreps_gated),
                "act_scalars": self.act_scalars,
                "act_gates": self.act_gates,
            }
        )
        return config


__all__ = ["Gate", "gate_irreps"]
