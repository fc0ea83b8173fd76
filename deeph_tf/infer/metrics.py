"""Block-level errors of a predicted operator against the DFT reference (DeepH's metrics).

Everything is NumPy; energies enter in eV (the block files' unit) and are reported in meV.

At about 440 lines this module is longer than most: it keeps in one place the chain that every
block metric walks (pair alignment -> DeepH mask -> per-structure sums -> per element pair /
shell pair / dataset tables), so that dtest, the report and distillation count the same entries.

Counted entries (the DeepH mask, docs/conventions.md, section "1. Data format")
    Blocks are stored in each atom's own orbitals, so every entry of a real block belongs
    to an orbital pair the element pair really has. An entry counts if its block is
    on-site (R = 0, i = j) or max |S| over its shell pair exceeds
    ``OVERLAP_MASK_THRESHOLD`` (:func:`deeph_tf.data.graph.overlap_entry_mask`). With
    ``orthogonal_basis`` the overlap carries no off-site information, so every entry of
    every reference block counts. Spinful blocks ([[uu, ud], [du, dd]]) repeat the
    spinless mask in all four spin blocks.

Errors
    raw:             |H_pred - H_ref| per counted entry. Complex (spinful) entries count
                     (|Re dH| + |Im dH|) / 2: the structure MAE is then the mean over the real
                     and imaginary parts of all 4 n_i n_j entries of each counted orbital pair,
                     the quantity training minimizes (:mod:`deeph_tf.train.losses`).
    gauge-corrected: |dH - mu S| with mu = <dH, S> / <S, S> over the structure's counted
                     entries (dH = H_pred - H_ref); H and H + mu S give the same physics.
                     For spinful data S acts as S (x) 1 on the spin blocks.
    structure MAE:   mean over the structure's counted entries.
    dataset MAE:     mean of the structure MAEs (as DeepH reports it).
    breakdowns:      per element pair and per shell pair, pooled over entries of all
                     structures: sum |error| / count.

Breakdown labels
    Element pairs are unordered: the two symbols sorted alphabetically, so the C-H and
    H-C blocks (Hermitian partners) pool into "C-H". Shell pairs are unordered by
    angular momentum, lower l first: "s-s", "s-p", "p-d", ...
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from deeph_tf.conventions import SHELL_LETTERS, shell_letter
from deeph_tf.data.block_h5 import BlockSet
from deeph_tf.data.graph import overlap_entry_mask
from deeph_tf.data.keys import HAMILTONIAN, OVERLAP
from deeph_tf.data.structure import StructureFolder

logger = logging.getLogger(__name__)

EV_TO_MEV = 1000.0


@dataclass
class ErrorSums:
    """Accumulated absolute errors of a set of entries (eV); merge with :meth:`add`.

    Attributes:
        count: number of counted entries.
        sum_abs_raw_eV / sum_abs_gauge_eV: sum of |error| (raw / gauge-corrected), eV.
        max_abs_raw_eV / max_abs_gauge_eV: largest |error|, eV.
    """

    count: int = 0
    sum_abs_raw_eV: float = 0.0
    sum_abs_gauge_eV: float = 0.0
    max_abs_raw_eV: float = 0.0
    max_abs_gauge_eV: float = 0.0

    def add(self, other: "ErrorSums") -> None:
        """Pool ``other`` into this one (in place)."""
        self.count += other.count
        self.sum_abs_raw_eV += other.sum_abs_raw_eV
        self.sum_abs_gauge_eV += other.sum_abs_gauge_eV
        self.max_abs_raw_eV = max(self.max_abs_raw_eV, other.max_abs_raw_eV)
        self.max_abs_gauge_eV = max(self.max_abs_gauge_eV, other.max_abs_gauge_eV)

    @classmethod
    def of(cls, abs_raw: np.ndarray, abs_gauge: np.ndarray) -> "ErrorSums":
        """Sums of two 1-D arrays of |error| (eV) over the same entries."""
        if abs_raw.size == 0:
            return cls()
        return cls(count=int(abs_raw.size), sum_abs_raw_eV=float(abs_raw.sum()),
                   sum_abs_gauge_eV=float(abs_gauge.sum()), max_abs_raw_eV=float(abs_raw.max()),
                   max_abs_gauge_eV=float(abs_gauge.max()))

    @property
    def mae_raw_meV(self) -> float:
        return EV_TO_MEV * self.sum_abs_raw_eV / self.count if self.count else math.nan

    @property
    def mae_gauge_meV(self) -> float:
        return EV_TO_MEV * self.sum_abs_gauge_eV / self.count if self.count else math.nan

    def to_dict(self, gauge: bool = True) -> Dict[str, Any]:
        """``count`` and MAE / max |error| in meV (gauge-corrected ones only if ``gauge``)."""
        out: Dict[str, Any] = {"count": self.count, "mae_raw_meV": self.mae_raw_meV,
                               "max_abs_raw_meV": EV_TO_MEV * self.max_abs_raw_eV}
        if gauge:
            out["mae_gauge_meV"] = self.mae_gauge_meV
            out["max_abs_gauge_meV"] = EV_TO_MEV * self.max_abs_gauge_eV
        return out


@dataclass
class StructureErrors:
    """Errors of one structure (meV unless noted).

    Attributes:
        name: structure id (used in tables and error messages).
        n_entries: counted entries (DeepH mask).
        mae_raw_meV, max_abs_raw_meV: raw errors.
        mae_gauge_meV, max_abs_gauge_meV: after removing ``gauge_mu_meV`` * S
            (equal to the raw ones when ``gauge_corrected`` is False).
        gauge_mu_meV: the best mu = <dH, S> / <S, S> (0 when not gauge-corrected).
        gauge_corrected: False for operators without a gauge (e.g. density matrices).
        by_element_pair: e.g. {"C-H": ErrorSums, ...} (unordered, sorted symbols).
        by_shell_pair: e.g. {"s-p": ErrorSums, ...} (unordered, lower l first).
    """

    name: str
    n_entries: int
    mae_raw_meV: float
    mae_gauge_meV: float
    max_abs_raw_meV: float
    max_abs_gauge_meV: float
    gauge_mu_meV: float
    gauge_corrected: bool = True
    by_element_pair: Dict[str, ErrorSums] = field(default_factory=dict)
    by_shell_pair: Dict[str, ErrorSums] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict (floats in meV, breakdowns as nested dicts)."""
        out: Dict[str, Any] = {"name": self.name, "n_entries": self.n_entries,
                               "mae_raw_meV": self.mae_raw_meV, "max_abs_raw_meV": self.max_abs_raw_meV}
        if self.gauge_corrected:
            out.update(mae_gauge_meV=self.mae_gauge_meV, max_abs_gauge_meV=self.max_abs_gauge_meV,
                       gauge_mu_meV=self.gauge_mu_meV)
        g = self.gauge_corrected
        out["by_element_pair"] = {k: v.to_dict(g) for k, v in sorted(self.by_element_pair.items())}
        out["by_shell_pair"] = {k: v.to_dict(g) for k, v in
                                sorted(self.by_shell_pair.items(), key=lambda kv: _shell_pair_order(kv[0]))}
        return out


def element_pair_label(a: str, b: str) -> str:
    """Unordered element-pair label, symbols sorted alphabetically: ("H", "C") -> "C-H"."""
    return "-".join(sorted((a, b)))


def shell_pair_label(l1: int, l2: int) -> str:
    """Unordered shell-pair label, lower l first: (1, 0) -> "s-p"."""
    lo, hi = sorted((int(l1), int(l2)))
    return f"{shell_letter(lo)}-{shell_letter(hi)}"


def _shell_pair_order(label: str) -> Tuple[int, ...]:
    return tuple(SHELL_LETTERS.index(c) for c in label.split("-"))


def entry_error(difference: np.ndarray) -> np.ndarray:
    """|d| of real entries; (|Re d| + |Im d|) / 2 of complex ones (the mean over their two real parts)."""
    if np.iscomplexobj(difference):
        return 0.5 * (np.abs(difference.real) + np.abs(difference.imag))
    return np.abs(difference)


def _entry_l(shells: Sequence[int]) -> np.ndarray:
    """l of each orbital of an atom, [n_orb]."""
    return np.repeat(np.asarray(shells, dtype=np.int64), [2 * l + 1 for l in shells])


def aligned_blocks(what: BlockSet, keys: List[Tuple[int, ...]], name: str, role: str) -> List[np.ndarray]:
    """The blocks of ``what`` for the pairs ``keys`` ((R1, R2, R3, i, j), in that order); pairs beyond
    them are ignored.

    Raises:
        ValueError: ``what`` lacks a pair or repeats one (naming structure ``name`` and its ``role``).
    """
    try:
        index = what.pair_index()
    except ValueError as exc:
        raise ValueError(f"structure {name}: {role}: {exc}") from None
    missing = [k for k in keys if k not in index]
    if missing:
        raise ValueError(
            f"structure {name}: the {role} lacks {len(missing)} of the reference's {len(keys)} atom pairs, "
            f"e.g. [R1,R2,R3,i,j] = {list(missing[0])} (it must hold every pair of the reference, whose "
            f"atom_pairs come from overlap.h5)")
    if len(index) > len(keys):
        logger.debug("structure %s: the %s has %d pairs beyond the reference's; ignored", name, role,
                     len(index) - len(keys))
    return [what.blocks[index[k]] for k in keys]


def block_mask(key: Sequence[int], overlap_block: np.ndarray, shells_i: Sequence[int], shells_j: Sequence[int],
               orthogonal: bool = False) -> np.ndarray:
    """[n_i, n_j] bool: the DeepH-counted entries of the (spinless) block ``key`` = (R1, R2, R3, i, j).

    On-site blocks and every block of an orthogonal basis count whole; off-site blocks count
    the shell pairs whose overlap has max |S| > OVERLAP_MASK_THRESHOLD.
    """
    r1, r2, r3, i, j = (int(x) for x in key)
    if orthogonal or (r1 == r2 == r3 == 0 and i == j):
        return np.ones(np.shape(overlap_block), dtype=bool)
    return overlap_entry_mask(overlap_block, shells_i, shells_j)


def counted_entries(prediction: BlockSet, reference: BlockSet, overlap: BlockSet,
                    structure: StructureFolder) -> Tuple[np.ndarray, np.ndarray]:
    """(reference, prediction) values [n] of the counted entries (same mask as :func:`structure_errors`),
    for parity plots and detail files; spinful blocks repeat the spinless mask per spin block."""
    name = structure.name
    keys = reference.keys()
    pred_blocks = aligned_blocks(prediction, keys, name, "prediction")
    s_blocks = aligned_blocks(overlap, keys, name, "overlap")
    orthogonal = bool(structure.info.get("orthogonal_basis", False))
    ref_out, pred_out = [], []
    for key, ref, pred, s in zip(keys, reference.blocks, pred_blocks, s_blocks):
        mask = block_mask(key, s, structure.orbital_shells(key[3]), structure.orbital_shells(key[4]), orthogonal)
        if mask.shape != ref.shape:
            mask = np.tile(mask, (ref.shape[0] // mask.shape[0], ref.shape[1] // mask.shape[1]))
        ref_out.append(np.real(ref[mask]))
        pred_out.append(np.real(pred[mask]))
    return np.concatenate(ref_out), np.concatenate(pred_out)


def structure_errors(
    prediction: BlockSet,
    reference: BlockSet,
    overlap: BlockSet,
    structure: StructureFolder,
    name: Optional[str] = None,
    operator: str = HAMILTONIAN,
    gauge: bool = True,
) -> StructureErrors:
    """Errors of ``prediction`` against ``reference`` on the DeepH-masked entries of one structure.

    Args:
        prediction: predicted blocks (eV for Hamiltonians); must hold every pair of
            ``reference`` (extra pairs are ignored), any order.
        reference: DFT blocks of the same operator; its pairs are the ones evaluated.
        overlap: the structure's spinless overlap (mask and gauge), with the reference's pairs.
        structure: the structure (species, ``elements_orbital_map``, ``spinful``,
            ``orthogonal_basis``).
        name: label for tables and errors; default the folder name.
        operator: block-file stem, decides spinful block shapes ("overlap" is spinless).
        gauge: remove the best mu S (meaningful for Hamiltonians only).

    Raises:
        ValueError: naming the structure, if the prediction or overlap lacks reference
            pairs, a block has the wrong shape, or nothing is counted.
    """
    name = structure.name if name is None else name
    keys = reference.keys()
    ref_blocks = list(reference.blocks)
    pred_blocks = aligned_blocks(prediction, keys, name, "prediction")
    s_blocks = aligned_blocks(overlap, keys, name, "overlap")
    f = structure.spin_factor(operator)
    counts = structure.atom_orbital_counts()
    species = structure.species
    orthogonal = bool(structure.info.get("orthogonal_basis", False))
    if orthogonal:
        logger.debug("structure %s: orthogonal basis, every entry of every reference block counts", name)

    # group blocks by ordered element pair: equal shapes, stackable
    groups: Dict[Tuple[str, str], List[int]] = {}
    for k, (_, _, _, i, j) in enumerate(keys):
        if not (0 <= i < len(species) and 0 <= j < len(species)):
            raise ValueError(f"structure {name}: atom pair {list(keys[k])} refers to an atom index outside "
                             f"0..{len(species) - 1}")
        groups.setdefault((species[i], species[j]), []).append(k)

    stacks = []
    dot_ds = 0.0
    dot_ss = 0.0
    for (ei, ej), members in groups.items():
        i0, j0 = keys[members[0]][3], keys[members[0]][4]
        ni, nj = int(counts[i0]), int(counts[j0])
        for k in members:
            for role, blk, shape in (("reference", ref_blocks[k], (f * ni, f * nj)),
                                     ("prediction", pred_blocks[k], (f * ni, f * nj)),
                                     ("overlap", s_blocks[k], (ni, nj))):
                if blk.shape != shape:
                    raise ValueError(f"structure {name}: {role} block {list(keys[k])} has shape {blk.shape}, "
                                     f"expected {shape} ({ei}-{ej}{', spinful' if f == 2 and role != 'overlap' else ''})")
        shells_i = structure.orbital_shells(i0)
        shells_j = structure.orbital_shells(j0)
        s = np.stack([s_blocks[k] for k in members]).astype(np.float64)  # [nb, ni, nj]
        d = np.stack([pred_blocks[k] for k in members]) - np.stack([ref_blocks[k] for k in members])
        mask = np.stack([block_mask(keys[k], s[m], shells_i, shells_j, orthogonal) for m, k in enumerate(members)])
        l_i, l_j = _entry_l(shells_i), _entry_l(shells_j)
        codes = np.minimum.outer(l_i, l_j) * len(SHELL_LETTERS) + np.maximum.outer(l_i, l_j)  # [ni, nj]
        if f == 2:
            s_full = np.zeros(d.shape, dtype=np.float64)
            s_full[:, :ni, :nj] = s
            s_full[:, ni:, nj:] = s
            s, mask, codes = s_full, np.tile(mask, (1, 2, 2)), np.tile(codes, (2, 2))
        dot_ds += float(np.sum(np.real(d)[mask] * s[mask]))
        dot_ss += float(np.sum(s[mask] ** 2))
        stacks.append((element_pair_label(ei, ej), d, s, mask, codes))

    mu = dot_ds / dot_ss if (gauge and dot_ss > 0.0) else 0.0
    total = ErrorSums()
    by_element: Dict[str, ErrorSums] = {}
    by_shell: Dict[str, ErrorSums] = {}
    for label, d, s, mask, codes in stacks:
        e_raw = entry_error(d)[mask]
        e_gauge = entry_error(d - mu * s)[mask] if mu != 0.0 else e_raw
        sums = ErrorSums.of(e_raw, e_gauge)
        total.add(sums)
        by_element.setdefault(label, ErrorSums()).add(sums)
        entry_codes = np.broadcast_to(codes, d.shape)[mask]
        for code in np.unique(entry_codes):
            sel = entry_codes == code
            key = shell_pair_label(int(code) // len(SHELL_LETTERS), int(code) % len(SHELL_LETTERS))
            by_shell.setdefault(key, ErrorSums()).add(ErrorSums.of(e_raw[sel], e_gauge[sel]))
    if total.count == 0:
        raise ValueError(f"structure {name}: no entry passes the DeepH mask (no blocks, or no on-site "
                         f"blocks and every overlap below threshold)")
    result = StructureErrors(
        name=name, n_entries=total.count, mae_raw_meV=total.mae_raw_meV, mae_gauge_meV=total.mae_gauge_meV,
        max_abs_raw_meV=EV_TO_MEV * total.max_abs_raw_eV, max_abs_gauge_meV=EV_TO_MEV * total.max_abs_gauge_eV,
        gauge_mu_meV=EV_TO_MEV * mu, gauge_corrected=gauge, by_element_pair=by_element, by_shell_pair=by_shell)
    logger.debug("structure %s: %d entries, MAE raw %.4g meV, gauge-corrected %.4g meV (mu %.4g meV)", name,
                 result.n_entries, result.mae_raw_meV, result.mae_gauge_meV, result.gauge_mu_meV)
    return result


def evaluate_structure_folder(
    structure: StructureFolder,
    prediction_name: str = "hamiltonian_pred",
    reference_name: str = HAMILTONIAN,
    name: Optional[str] = None,
    gauge: Optional[bool] = None,
) -> StructureErrors:
    """:func:`structure_errors` of ``<folder>/<prediction_name>.h5`` against ``<reference_name>.h5``.

    ``gauge`` defaults to True for Hamiltonians and False otherwise (e.g. density matrices).
    """
    if gauge is None:
        gauge = reference_name.startswith(HAMILTONIAN)
    reference = structure.read_blocks(reference_name)
    overlap = structure.read_blocks(OVERLAP)
    prediction = structure.read_blocks(prediction_name, check=False)
    return structure_errors(prediction, reference, overlap, structure, name=name, operator=reference_name,
                            gauge=gauge)


@dataclass
class DatasetErrors:
    """Errors over many structures: add :class:`StructureErrors`, then :meth:`summary` / :meth:`format_table`.

    The headline MAE is the mean of the structure MAEs (DeepH); breakdowns pool entries.
    """

    structures: List[StructureErrors] = field(default_factory=list)
    by_element_pair: Dict[str, ErrorSums] = field(default_factory=dict)
    by_shell_pair: Dict[str, ErrorSums] = field(default_factory=dict)

    def add(self, errors: StructureErrors) -> None:
        """Add one structure's errors."""
        if self.structures and errors.gauge_corrected != self.gauge_corrected:
            raise ValueError(f"structure {errors.name}: mixing gauge-corrected and uncorrected errors")
        self.structures.append(errors)
        for src, dst in ((errors.by_element_pair, self.by_element_pair),
                         (errors.by_shell_pair, self.by_shell_pair)):
            for key, sums in src.items():
                dst.setdefault(key, ErrorSums()).add(sums)

    def __len__(self) -> int:
        return len(self.structures)

    @property
    def gauge_corrected(self) -> bool:
        return all(s.gauge_corrected for s in self.structures)

    def summary(self) -> Dict[str, Any]:
        """Dataset numbers, meV: MAEs are means over structures, max |error| over all entries.

        Keys: n_structures, n_entries, mae_raw_meV, max_abs_raw_meV, (mae_gauge_meV,
        max_abs_gauge_meV if gauge-corrected), by_element_pair, by_shell_pair.

        Raises:
            ValueError: if no structure was added.
        """
        if not self.structures:
            raise ValueError("no structures were evaluated")
        g = self.gauge_corrected
        out: Dict[str, Any] = {
            "n_structures": len(self.structures),
            "n_entries": int(sum(s.n_entries for s in self.structures)),
            "mae_raw_meV": float(np.mean([s.mae_raw_meV for s in self.structures])),
            "max_abs_raw_meV": float(max(s.max_abs_raw_meV for s in self.structures)),
        }
        if g:
            out["mae_gauge_meV"] = float(np.mean([s.mae_gauge_meV for s in self.structures]))
            out["max_abs_gauge_meV"] = float(max(s.max_abs_gauge_meV for s in self.structures))
        out["by_element_pair"] = {k: v.to_dict(g) for k, v in sorted(self.by_element_pair.items())}
        out["by_shell_pair"] = {k: v.to_dict(g) for k, v in
                                sorted(self.by_shell_pair.items(), key=lambda kv: _shell_pair_order(kv[0]))}
        return out

    def to_dict(self) -> Dict[str, Any]:
        """:meth:`summary` plus ``structures``: every :meth:`StructureErrors.to_dict`."""
        out = self.summary()
        out["structures"] = [s.to_dict() for s in self.structures]
        return out

    def format_table(self, title: str = HAMILTONIAN, per_structure: bool = False) -> str:
        """Human-readable report (meV), as ``dtest`` prints it."""
        if not self.structures:
            return f"{title}: no structures evaluated"
        summ = self.summary()
        g = self.gauge_corrected
        lines = [(f"{title} errors in meV: {summ['n_structures']} structure(s), {summ['n_entries']} counted "
                  f"entries (DeepH mask)")]
        if g:
            lines += [f"  {'':34s}{'raw':>12s}{'gauge-corrected':>17s}",
                      f"  {'MAE (mean of structure MAEs)':34s}{summ['mae_raw_meV']:12.4f}{summ['mae_gauge_meV']:17.4f}",
                      f"  {'max |error|':34s}{summ['max_abs_raw_meV']:12.4f}{summ['max_abs_gauge_meV']:17.4f}",
                      "  raw: |H_pred - H_ref|; gauge-corrected: |dH - mu S|, mu = <dH,S>/<S,S> per structure"]
        else:
            lines += [f"  {'MAE (mean of structure MAEs)':34s}{summ['mae_raw_meV']:12.4f}",
                      f"  {'max |error|':34s}{summ['max_abs_raw_meV']:12.4f}",
                      "  raw errors (no gauge correction for this operator)"]

        def section(header: str, rows: Dict[str, Dict[str, Any]], key_name: str) -> None:
            lines.append("")
            lines.append(f"  by {header} (pooled over entries)")
            head = f"  {key_name:<8s}{'entries':>10s}{'MAE raw':>12s}"
            head += f"{'MAE gauge':>12s}{'max raw':>12s}{'max gauge':>12s}" if g else f"{'max raw':>12s}"
            lines.append(head)
            for key, r in rows.items():
                row = f"  {key:<8s}{r['count']:>10d}{r['mae_raw_meV']:12.4f}"
                row += (f"{r['mae_gauge_meV']:12.4f}{r['max_abs_raw_meV']:12.4f}{r['max_abs_gauge_meV']:12.4f}"
                        if g else f"{r['max_abs_raw_meV']:12.4f}")
                lines.append(row)

        section("element pair", summ["by_element_pair"], "pair")
        section("shell pair", summ["by_shell_pair"], "shells")
        if per_structure:
            width = max(9, max(len(s.name) for s in self.structures))
            header = f"  {'structure':<{width}s}{'entries':>10s}{'MAE raw':>12s}"
            header += f"{'MAE gauge':>12s}{'mu':>12s}" if g else ""
            lines += ["", "  per structure", header]
            for s in self.structures:
                lines.append(f"  {s.name:<{width}s}{s.n_entries:>10d}{s.mae_raw_meV:12.4f}"
                             + (f"{s.mae_gauge_meV:12.4f}{s.gauge_mu_meV:12.4f}" if g else ""))
        return "\n".join(lines)
