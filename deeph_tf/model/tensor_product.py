"""Tensor products of edge features with the edge direction, two ways that give the same result.

For an edge with unit vector r_hat and features x (irreps_in, channel-wise "uvu" mode):

    out[path = (k, l2, l3)] = w_e[path, u] * sum_{m1 m2} C^{l1 l2 l3}[m1, m2, :] x_k[u, m1] Y^l2_m2(r_hat)

with per-edge weights w_e from a radial MLP (one per path and channel). Output irreps are the
concatenation of the paths, mul_k x (l3, p_k * (-1)^l2), in path order.

* :class:`CGEdgeTensorProduct` contracts with Clebsch-Gordan tensors and the spherical
  harmonics of every edge: O(L^6) for features and harmonics up to L. The plain reference.
* :class:`SO2EdgeTensorProduct` (eSCN, Passaro & Zitnick 2023): rotate x into the frame where
  the edge lies along z (x' = D(R)^T x, R e_z = r_hat). There Y^l2(e_z) is non-zero only at
  m2 = 0, so each path is a constant sparse map x'[m1] -> out'[+-m1], block-diagonal in |m|;
  then rotate back with D^l3. O(L^3) per edge. Equal to the CG product to rounding.

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
                if l3 > 8 or (allowed is not None and Irrep(l3, p3) not in allowed):
                    continue
                paths.append((k, l2, l3, p3))
    return paths


class _EdgeTensorProductBase(keras.layers.Layer):
    """Shared bookkeeping: paths, output irreps, weight layout."""

    def __init__(self, irreps_in, lmax_sh: int, allowed_out=None, parity: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.parity = bool(parity)
        self.irreps_in = Irreps(irreps_in)
        if not 0 <= int(lmax_sh) <= 8:
            raise ValueError(f"lmax_sh must be in 0..8, received: lmax_sh={lmax_sh}")
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
    Output: [E, irreps_out.dim].
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
        terms = self._input_terms(x)
        path_weights = self._path_weights(weights)
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
        return tf.concat([tf.reshape(o, [tf.shape(x)[0], -1]) for o in outputs], axis=-1)


@keras.saving.register_keras_serializable(package="deeph_tf")
class SO2EdgeTensorProduct(_EdgeTensorProductBase):
    """eSCN-style tensor product: rotate to the edge frame, sparse m-diagonal maps, rotate back.

    Same inputs, outputs and weights as :class:`CGEdgeTensorProduct`, same values to rounding.
    In the edge frame each path maps x'[m1] only to out'[+-m1], so it is two gathers and two
    multiplications by constants; all paths ending in the same l3 are rotated back together.
    ``wigner`` (per-l D(R) of each edge, from :func:`edge_rotations`) can be passed to share
    the rotations between layers.
    """

    def build(self, input_shape=None):
        self._lmax_rotation = max(max(ir.l for _, ir in self.irreps_in), max(p[2] for p in self.paths))
        # In the edge frame Y^l2(e_z) = sqrt(2 l2 + 1) at m2 = 0 (component normalization), so
        # path (l1, l2 -> l3) is the constant map K = C[:, l2, :] sqrt(2 l2 + 1): [2l1+1, 2l3+1],
        # non-zero only between m1 = +-m3. Store it as two (index, coefficient) gathers; index
        # 2 l1 + 1 points at an appended zero column.
        self._groups = []
        for k, (mul, ir) in enumerate(self.irreps_in):
            l1 = ir.l
            members = [i for i, p in enumerate(self.paths) if p[0] == k]
            index_a, coef_a, index_b, coef_b = [], [], [], []
            for i in members:
                _, l2, l3, _ = self.paths[i]
                kernel = clebsch_gordan(l1, l2, l3)[:, l2, :] * np.sqrt(2 * l2 + 1)
                check = np.zeros_like(kernel)
                for c in range(2 * l3 + 1):
                    m = c - l3
                    rows = [l1 + m, l1 - m] if m != 0 else [l1, None]
                    for rows_list, coefs, row in ((index_a, coef_a, rows[0]), (index_b, coef_b, rows[1])):
                        if row is not None and 0 <= row <= 2 * l1 and abs(m) <= l1:
                            rows_list.append(row)
                            coefs.append(kernel[row, c])
                            check[row, c] = kernel[row, c]
                        else:
                            rows_list.append(2 * l1 + 1)
                            coefs.append(0.0)
                if np.abs(kernel - check).max() > 1e-12:
                    raise RuntimeError(f"path {self.paths[i]} is not m-diagonal in the edge frame")
            self._groups.append(
                (k, members, np.array(index_a), np.array(coef_a), np.array(index_b), np.array(coef_b))
            )
        self.built = True

    def call(self, x, vectors, weights, wigner: Optional[Sequence[tf.Tensor]] = None):
        if wigner is None:
            wigner = edge_rotations(vectors, self._lmax_rotation)
        terms = self._input_terms(x)
        path_weights = self._path_weights(weights)
        in_frame_outputs: List[Optional[tf.Tensor]] = [None] * len(self.paths)
        for k, members, index_a, coef_a, index_b, coef_b in self._groups:
            l1 = self.irreps_in[k].ir.l
            in_frame = tf.matmul(terms[k], wigner[l1]) if l1 > 0 else terms[k]  # x'^T = x^T D
            padded = tf.pad(in_frame, [[0, 0], [0, 0], [0, 1]])
            dtype = in_frame.dtype
            product = tf.gather(padded, index_a, axis=2) * tf.constant(coef_a, dtype) + tf.gather(
                padded, index_b, axis=2
            ) * tf.constant(coef_b, dtype)
            start = 0
            for i in members:
                width = 2 * self.paths[i][2] + 1
                in_frame_outputs[i] = product[:, :, start : start + width] * path_weights[i]
                start += width
        outputs: List[Optional[tf.Tensor]] = [None] * len(self.paths)
        for l3 in sorted({p[2] for p in self.paths}):
            members = [i for i, p in enumerate(self.paths) if p[2] == l3]
            if l3 == 0:
                for i in members:
                    outputs[i] = in_frame_outputs[i]
                continue
            stacked = tf.concat([in_frame_outputs[i] for i in members], axis=1)  # [E, sum mul, 2l3+1]
            rotated = tf.matmul(stacked, wigner[l3], transpose_b=True)
            sizes = [self.irreps_in[self.paths[i][0]].mul for i in members]
            for i, part in zip(members, tf.split(rotated, sizes, axis=1)):
                outputs[i] = part
        return tf.concat([tf.reshape(o, [tf.shape(x)[0], -1]) for o in outputs], axis=-1)


def edge_rotations(vectors, lmax: int) -> List[tf.Tensor]:
    """Per-l D(R) [E, 2l+1, 2l+1], l = 0..lmax, with R e_z = r_hat (zero vectors: identity)."""
    alpha, beta = edge_alignment_angles(vectors)
    gamma = tf.zeros_like(alpha)
    return [wigner_D_from_euler(l, alpha, beta, gamma) for l in range(lmax + 1)]
