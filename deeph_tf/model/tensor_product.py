"""Equivariant edge convolutions: the Clebsch-Gordan product (reference) and the SO(2) (eSCN) one.

For an edge with unit vector r_hat and features x (irreps_in, channel-wise "uvu" mode), the
reference :class:`CGEdgeTensorProduct` computes

    out[path = (k, l2, l3)] = w_e[path, u] * sum_{m1 m2} C^{l1 l2 l3}[m1, m2, :] x_k[u, m1] Y^l2_m2(r_hat)

with per-edge weights w_e from a radial MLP (one per path and channel). Output irreps are the
concatenation of the paths, mul_k x (l3, p_k * (-1)^l2), in path order.

contracting with Clebsch-Gordan tensors and the harmonics of every edge: O(L^6) for features
and harmonics up to L.

:class:`SO2Convolution` (eSCN, Passaro & Zitnick 2023) rotates x into the frame where the edge
lies along z (x' = D(R)^T x, R e_z = r_hat). There Y^l2(e_z) is non-zero only at m2 = 0, so
any product with the harmonics preserves |m|: the convolution becomes block-diagonal in m, a
learned SO(2)-equivariant linear map per m, then y = D(R) y'. O(L^3) per edge. It contains the
CG product as a special case (tests/model/test_tensor_product.py sets its weights to reproduce
one) and mixes channels as well.

Both are Keras layers taking (x [E, irreps_in.dim], edge vectors [E, 3], weights [E, n_weights]).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from deeph_tf.so3.clebsch_gordan import clebsch_gordan
from deeph_tf.so3.irreps import Irrep, Irreps
from deeph_tf.so3.spherical_harmonics import spherical_harmonics
from deeph_tf.conventions import LMAX_SUPPORTED
from deeph_tf.so3.edge_frame import EdgeFrame
from deeph_tf.so3.wigner import edge_alignment_angles, wigner_D_from_euler

Path = Tuple[int, int, int, int]  # (input term k, l2, l3, output parity)


def plan_paths(
    irreps_in: Irreps, lmax_sh: int, allowed_out: Optional[Sequence[Irrep]] = None, parity: bool = True
) -> List[Path]:
    """All (k, l2, l3, p3) with l3 in |l1-l2|..l1+l2, p3 = p1 (-1)^l2, (l3, p3) allowed.

    Args:
        irreps_in: input irreps.
        lmax_sh: largest l of the edge spherical harmonics.
        allowed_out: keep only these output irreps (None: all up to the input lmax + lmax_sh).
        parity: False for SO(3)-only models: harmonics count as even, p3 = p1.
    """
    allowed = None if allowed_out is None else {Irrep.parse(ir) for ir in allowed_out}
    paths = []
    for k, (_, ir) in enumerate(irreps_in):
        for l2 in range(lmax_sh + 1):
            for l3 in range(abs(ir.l - l2), ir.l + l2 + 1):
                p3 = ir.p * (-1) ** l2 if parity else ir.p
                if l3 > LMAX_SUPPORTED or (allowed is not None and Irrep(l3, p3) not in allowed):
                    continue
                paths.append((k, l2, l3, p3))
    return paths


class _EdgeTensorProductBase(keras.layers.Layer):
    """Shared bookkeeping: paths, output irreps, weight layout."""

    def __init__(self, irreps_in, lmax_sh: int, allowed_out=None, parity: bool = True, **kwargs):
        super().__init__(autocast=False, **kwargs)  # edge vectors keep their (float32) dtype
        self.parity = bool(parity)
        self.irreps_in = Irreps(irreps_in)
        if not 0 <= int(lmax_sh) <= LMAX_SUPPORTED:
            raise ValueError(f"lmax_sh must be in 0..{LMAX_SUPPORTED}, received: lmax_sh={lmax_sh}")
        self.lmax_sh = int(lmax_sh)
        self.allowed_out = None if allowed_out is None else [str(Irrep.parse(ir)) for ir in allowed_out]
        self.paths = plan_paths(self.irreps_in, self.lmax_sh, self.allowed_out, self.parity)
        if not self.paths:
            raise ValueError(f"no tensor-product path from {self.irreps_in} with lmax_sh={lmax_sh} to {allowed_out}")
        self.irreps_out = Irreps([(self.irreps_in[k].mul, Irrep(l3, p3)) for k, _, l3, p3 in self.paths])
        #: Per-edge weights: one per path and channel, path-major.
        self.num_weights = sum(self.irreps_in[k].mul for k, _, _, _ in self.paths)
        self._in_slices = self.irreps_in.slices()

    def get_config(self):
        config = super().get_config()
        config.update(
            irreps_in=str(self.irreps_in), lmax_sh=self.lmax_sh, allowed_out=self.allowed_out, parity=self.parity
        )
        return config

    def _input_terms(self, x) -> List[tf.Tensor]:
        return [
            tf.reshape(x[:, s], [-1, mul, ir.dim]) for (mul, ir), s in zip(self.irreps_in, self._in_slices)
        ]

    def _path_weights(self, weights) -> List[tf.Tensor]:
        out, start = [], 0
        for k, _, _, _ in self.paths:
            mul = self.irreps_in[k].mul
            out.append(weights[:, start : start + mul, None])  # [E, mul, 1]
            start += mul
        return out


@keras.saving.register_keras_serializable(package="deeph_tf")
class CGEdgeTensorProduct(_EdgeTensorProductBase):
    """Reference tensor product x (x) Y(r_hat) with Clebsch-Gordan tensors (see module doc).

    Input: x [E, irreps_in.dim], vectors [E, 3] (Angstrom), weights [E, num_weights].
    Output: [E, irreps_out.dim], compute dtype. The product is computed in the dtype of
    ``vectors`` (not cast: float32 under mixed precision, so the harmonics keep float32 accuracy).
    """

    def build(self, input_shape=None):
        # For each (k, l2): CG tensors of all its l3 concatenated along the output axis.
        self._groups = []
        for k, (mul, ir) in enumerate(self.irreps_in):
            for l2 in range(self.lmax_sh + 1):
                members = [i for i, p in enumerate(self.paths) if p[0] == k and p[1] == l2]
                if not members:
                    continue
                cg = np.concatenate([clebsch_gordan(ir.l, l2, self.paths[i][2]) for i in members], axis=-1)
                self._groups.append((k, l2, members, cg))
        self.built = True

    def call(self, x, vectors, weights):
        harmonics = spherical_harmonics(self.lmax_sh, vectors)  # [E, (lmax_sh+1)^2]
        terms = self._input_terms(tf.cast(x, vectors.dtype))
        path_weights = self._path_weights(tf.cast(weights, vectors.dtype))
        outputs: List[Optional[tf.Tensor]] = [None] * len(self.paths)
        for k, l2, members, cg in self._groups:
            y = harmonics[:, l2 * l2 : (l2 + 1) ** 2]  # [E, 2l2+1]
            coupling = tf.einsum("eb,abc->eac", y, tf.constant(cg, dtype=y.dtype))  # [E, 2l1+1, sum(2l3+1)]
            product = tf.einsum("eua,eac->euc", terms[k], coupling)  # [E, mul, sum(2l3+1)]
            start = 0
            for i in members:
                width = 2 * self.paths[i][2] + 1
                outputs[i] = product[:, :, start : start + width] * path_weights[i]
                start += width
        return tf.cast(tf.concat([tf.reshape(o, [tf.shape(x)[0], -1]) for o in outputs], axis=-1), self.compute_dtype)


def allowed_couplings(l1: int, p1: int, l3: int, p3: int, lmax_sh: int, parity: bool = True) -> Tuple[bool, bool]:
    """Which SO(2) couplings (l1, p1) -> (l3, p3) a tensor product with Y^l2 (l2 <= lmax_sh) allows.

    In the edge frame the product with Y^l2(e_z) maps m -> m when l1 + l2 + l3 is even
    ("symmetric") and m -> -m when it is odd ("antisymmetric"); with parity, (-1)^l2 = p1 p3.
    Returns (symmetric allowed, antisymmetric allowed).
    """
    symmetric = antisymmetric = False
    for l2 in range(abs(l1 - l3), min(l1 + l3, lmax_sh) + 1):
        if parity and (-1) ** l2 != p1 * p3:
            continue
        if (l1 + l2 + l3) % 2 == 0:
            symmetric = True
        else:
            antisymmetric = True
    return symmetric, antisymmetric


@keras.saving.register_keras_serializable(package="deeph_tf")
class SO2Convolution(keras.layers.Layer):
    """eSCN convolution (Passaro & Zitnick 2023): an SO(2)-equivariant linear map in the edge frame.

    Features are rotated so the edge lies along z (x' = D(R)^T x); there, every product of x
    with the edge harmonics preserves |m|, so the most general such map is, for each m >= 0,

        y'_{+m} = A_m x'_{+m} - B_m x'_{-m},    y'_{-m} = A_m x'_{-m} + B_m x'_{+m}

    with A_m, B_m mixing all (l, channel) pairs with l >= m (a complex multiplication; B only
    for m > 0). Per-edge radial weights scale x' per (m, l, channel). Then y = D(R) y'. Cost per
    edge: rotations sum_l C (2l+1)^2 plus sum_m (L C)^2, O(L^3) against the O(L^6) of the full
    Clebsch-Gordan product. Couplings that no harmonic l2 <= lmax_sh (with the parity rule)
    could produce are masked out (:func:`allowed_couplings`), so the layer is O(3)-equivariant.

    Args:
        irreps_in, irreps_out: feature irreps (l <= LMAX_SUPPORTED = 8).
        lmax_sh: largest harmonic l the coupling rule allows.
        parity: O(3) (True) or SO(3) only.

    Input: x [E, irreps_in.dim], vectors [E, 3], weights [E, num_weights], frame (optional
    :class:`~deeph_tf.so3.edge_frame.EdgeFrame` of the edges, shared by the blocks; the rotations
    are applied as angle mixings, never as dense [E, 2l+1, 2l+1] matrices). Output:
    [E, irreps_out.dim], compute dtype. Geometry is not cast (``autocast=False``): the rotations
    into and out of the edge frame are computed in the frame's dtype (float32 under mixed
    precision, where a bfloat16 rotation is orthogonal only to ~3 digits); the SO(2) maps in the
    edge frame run in the compute dtype.
    """

    def __init__(self, irreps_in, irreps_out, lmax_sh: int, parity: bool = True, **kwargs):
        super().__init__(autocast=False, **kwargs)  # edge vectors and rotations keep their (float32) dtype
        self.irreps_in, self.irreps_out = Irreps(irreps_in), Irreps(irreps_out)
        if not 0 <= int(lmax_sh) <= LMAX_SUPPORTED:
            raise ValueError(f"lmax_sh must be in 0..{LMAX_SUPPORTED}, received: lmax_sh={lmax_sh}")
        self.lmax_sh, self.parity = int(lmax_sh), bool(parity)
        self.m_max = min(max(ir.l for _, ir in self.irreps_in), max(ir.l for _, ir in self.irreps_out))
        self._in_slices, self._out_slices = self.irreps_in.slices(), self.irreps_out.slices()
        # For each m: input terms with l >= m and their channel offsets; same for outputs.
        self._in_terms = [[k for k, (_, ir) in enumerate(self.irreps_in) if ir.l >= m] for m in range(self.m_max + 1)]
        self._out_terms = [[k for k, (_, ir) in enumerate(self.irreps_out) if ir.l >= m] for m in range(self.m_max + 1)]
        self._masks = []
        for m in range(self.m_max + 1):
            rows = sum(self.irreps_in[k].mul for k in self._in_terms[m])
            cols = sum(self.irreps_out[k].mul for k in self._out_terms[m])
            sym, anti = np.zeros((rows, cols)), np.zeros((rows, cols))
            r = 0
            for k in self._in_terms[m]:
                mul_in, ir_in = self.irreps_in[k]
                c = 0
                for j in self._out_terms[m]:
                    mul_out, ir_out = self.irreps_out[j]
                    a, b = allowed_couplings(ir_in.l, ir_in.p, ir_out.l, ir_out.p, self.lmax_sh, self.parity)
                    sym[r : r + mul_in, c : c + mul_out] = a
                    anti[r : r + mul_in, c : c + mul_out] = b and m > 0
                    c += mul_out
                r += mul_in
            self._masks.append((sym, anti))
        if not any(mask.any() for pair in self._masks for mask in pair):
            raise ValueError(f"no coupling from {self.irreps_in} to {self.irreps_out} with lmax_sh={lmax_sh}")
        #: Per-edge radial weights: one per (m, input l >= m, channel).
        self.num_weights = sum(mask[0].shape[0] for mask in self._masks)

    def build(self, input_shape=None):
        self.symmetric_kernels, self.antisymmetric_kernels = [], []
        for m, (sym, anti) in enumerate(self._masks):
            fan_in = max(1.0, float(np.maximum(sym.sum(axis=0), anti.sum(axis=0)).max() * (2 if m > 0 else 1)))
            init = keras.initializers.RandomNormal(stddev=1.0 / np.sqrt(fan_in))
            self.symmetric_kernels.append(self.add_weight(name=f"A_{m}", shape=sym.shape, initializer=init))
            self.antisymmetric_kernels.append(
                self.add_weight(name=f"B_{m}", shape=anti.shape, initializer=init) if m > 0 else None
            )
        self.built = True

    @property
    def lmax_rotation(self) -> int:
        return max(max(ir.l for _, ir in self.irreps_in), max(ir.l for _, ir in self.irreps_out))

    def call(self, x, vectors, weights, frame: Optional[EdgeFrame] = None):
        if frame is None:
            frame = EdgeFrame(vectors, self.lmax_rotation)
        dtype, rotation_dtype = self.compute_dtype, frame.dtype
        x, weights = tf.cast(x, dtype), tf.cast(weights, dtype)
        edges = tf.shape(x)[0]
        rotated = []
        for (mul, ir), s in zip(self.irreps_in, self._in_slices):
            term = tf.reshape(x[:, s], [-1, mul, ir.dim])
            if ir.l > 0:  # x'^T = x^T D
                term = tf.cast(frame.to_frame(tf.cast(term, rotation_dtype), ir.l), dtype)
            rotated.append(term)
        columns = {}  # (output term j, m index in -l..l) -> [E, mul_j]
        offset = 0
        for m in range(self.m_max + 1):
            terms = self._in_terms[m]
            width = sum(self.irreps_in[k].mul for k in terms)
            radial = weights[:, offset : offset + width]
            offset += width
            plus = tf.concat([rotated[k][:, :, self.irreps_in[k].ir.l + m] for k in terms], axis=1) * radial
            sym_mask, anti_mask = self._masks[m]
            a = tf.cast(self.symmetric_kernels[m], dtype) * tf.constant(sym_mask, dtype)
            if m == 0:
                outputs = {0: tf.matmul(plus, a)}
            else:
                minus = tf.concat([rotated[k][:, :, self.irreps_in[k].ir.l - m] for k in terms], axis=1) * radial
                b = tf.cast(self.antisymmetric_kernels[m], dtype) * tf.constant(anti_mask, dtype)
                outputs = {m: tf.matmul(plus, a) - tf.matmul(minus, b), -m: tf.matmul(minus, a) + tf.matmul(plus, b)}
            for sign_m, y in outputs.items():
                c = 0
                for j in self._out_terms[m]:
                    mul_out = self.irreps_out[j].mul
                    columns[(j, sign_m)] = y[:, c : c + mul_out]
                    c += mul_out
        parts = []
        for j, (mul, ir) in enumerate(self.irreps_out):
            zeros = tf.zeros([edges, mul], dtype)
            in_frame = tf.stack([columns.get((j, m), zeros) for m in range(-ir.l, ir.l + 1)], axis=-1)
            out = tf.cast(frame.from_frame(tf.cast(in_frame, rotation_dtype), ir.l), dtype) if ir.l > 0 else in_frame
            parts.append(tf.reshape(out, [edges, mul * ir.dim]))
        return tf.concat(parts, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(irreps_in=str(self.irreps_in), irreps_out=str(self.irreps_out), lmax_sh=self.lmax_sh, parity=self.parity)
        return config


def edge_rotations(vectors, lmax: int) -> List[tf.Tensor]:
    """Per-l dense D(R) [E, 2l+1, 2l+1], l = 0..lmax, with R e_z = r_hat (zero vectors: identity).

    The reference that :class:`~deeph_tf.so3.edge_frame.EdgeFrame` (what the model uses) is
    tested against."""
    alpha, beta = edge_alignment_angles(vectors)
    gamma = tf.zeros_like(alpha)
    return [wigner_D_from_euler(l, alpha, beta, gamma) for l in range(lmax + 1)]
