"""The per-epoch table of the report, matched against lcurve.out.

The per-epoch table takes, for each epoch, the lcurve.out row with the largest step <= the
epoch's last step and prints its values the way lcurve.out does (``%.2e`` metrics, ``%.1e``
learning rate), so they read back exactly as in lcurve.out. No TensorFlow here: NumPy, and
matplotlib (Agg, bare ``Figure``) for the figures.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, List, Mapping, Optional, Sequence

import numpy as np

from deeph_tf.train.report.sections import format_number

__all__ = ["MAX_EPOCH_ROWS", "EpochTable", "epoch_rows", "full_epochs"]

#: At most this many rows in the per-epoch table (evenly spaced, first and last kept).
MAX_EPOCH_ROWS = 50


@dataclass
class EpochTable:
    """The per-epoch table as text cells.

    Attributes:
        columns: ``epoch``, ``step``, ``lcurve step``, lcurve.out's metric columns in its order
            (``loss_val loss_trn ...``), ``lr``, ``seconds``, ``peak RSS (MiB)``.
        rows: one list of cells per row shown ("" where there is no value).
        total: rows before subsampling (epochs in the record, or lcurve rows for a partial record).
        notes: sentences to print above the table.
    """

    columns: List[str]
    rows: List[List[str]]
    total: int
    notes: List[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        """A GitHub-flavoured markdown table (without the notes)."""
        lines = ["| " + " | ".join(self.columns) + " |",
                 "|" + "|".join("---:" for _ in self.columns) + "|"]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in self.rows]
        return "\n".join(lines)


def _metric_columns(table: Optional[np.ndarray]) -> List[str]:
    if table is None or table.dtype.names is None:
        return []
    return [name for name in table.dtype.names if name not in ("step", "lr")]


def _lcurve_cells(table: np.ndarray, index: int, metrics: Sequence[str]) -> List[str]:
    """One lcurve.out row formatted as lcurve.out writes it (``%d``, ``%.2e``, ``%.1e``)."""
    row = table[index]
    cells = ["%d" % int(row["step"])]
    cells += ["%.2e" % float(row[name]) for name in metrics]
    cells.append("%.1e" % float(row["lr"]) if "lr" in table.dtype.names else "")
    return cells


def _subsample(count: int, limit: int = MAX_EPOCH_ROWS) -> List[int]:
    """``limit`` evenly spaced indices of ``range(count)`` including the first and the last."""
    if count <= limit:
        return list(range(count))
    return sorted({int(round(x)) for x in np.linspace(0, count - 1, limit)})


def epoch_rows(record: Mapping[str, Any], lcurve_table: Optional[np.ndarray],
               max_rows: int = MAX_EPOCH_ROWS) -> EpochTable:
    """The per-epoch table: for each epoch the lcurve.out row with the largest step <= its last step.

    An epoch that ended before the first lcurve row after step 0 gets the step-0 row; the
    ``lcurve step`` column says which row each line comes from. An epoch ending before the
    first row of lcurve.out has empty lcurve cells. A record without epochs (a partial report)
    lists lcurve.out's rows with empty epoch and time cells. More than ``max_rows`` rows: that
    many, evenly spaced, the first and the last included (said in ``notes``).

    Args:
        record: the training record (its ``epochs``).
        lcurve_table: :func:`deeph_tf.train.lcurve.read_lcurve`'s array, or None.
        max_rows: the most rows shown.
    """
    metrics = _metric_columns(lcurve_table)
    columns = ["epoch", "step", "lcurve step", *metrics, "lr", "seconds", "peak RSS (MiB)"]
    have_lcurve = lcurve_table is not None and lcurve_table.dtype.names is not None and len(lcurve_table) > 0
    rows: List[List[str]] = []
    notes: List[str] = []
    epochs = list(record.get("epochs") or [])
    if epochs:
        if have_lcurve:
            steps = np.asarray(lcurve_table["step"], dtype=float)
            order = np.argsort(steps, kind="stable")  # ties: the later row wins
            sorted_steps = steps[order]
        for entry in epochs:
            cells = [str(entry["epoch"]), "%d" % int(entry["step"])]
            position = np.searchsorted(sorted_steps, float(entry["step"]), side="right") - 1 if have_lcurve else -1
            if position >= 0:
                cells += _lcurve_cells(lcurve_table, int(order[position]), metrics)
            else:
                cells += [""] * (len(metrics) + 2)
            cells += [format_number(entry.get(key), spec, missing="", text=str)
                      for key, spec in (("seconds", "%.2f"), ("peak_rss_mib", "%.1f"))]
            rows.append(cells)
        notes.append("Each row shows the lcurve.out row with the largest step <= the epoch's last step "
                     "(column `lcurve step`), with lcurve.out's formatting; `seconds` is the epoch's wall time.")
    elif have_lcurve:
        for index in range(len(lcurve_table)):
            lcurve_cells = _lcurve_cells(lcurve_table, index, metrics)
            rows.append(["", lcurve_cells[0], *lcurve_cells, "", ""])
        notes.append("No per-epoch timing in the record: the rows are lcurve.out's, without time columns.")
    total = len(rows)
    keep = _subsample(total, max_rows)
    if len(keep) < total:
        what = "epochs" if epochs else "lcurve.out rows"
        notes.insert(0, f"Showing {len(keep)} of {total} {what}, evenly spaced, the first and the last included.")
        rows = [rows[k] for k in keep]
    return EpochTable(columns=columns, rows=rows, total=total, notes=notes)


def full_epochs(epochs: Sequence[Mapping[str, Any]], steps_per_epoch: Optional[float]) -> List[Mapping[str, Any]]:
    """The epochs but a last partial one (its step below floor(epoch * steps_per_epoch))."""
    if not epochs or not steps_per_epoch:
        return list(epochs)
    last = epochs[-1]
    try:
        partial = int(last["step"]) < math.floor(float(last["epoch"]) * float(steps_per_epoch) + 1e-9)
    except (TypeError, ValueError):
        partial = False
    return list(epochs[:-1]) if partial and len(epochs) > 1 else list(epochs)
