"""The training report: ``report.md`` with PNG figures, from a run's training record.

At the end of a run ``dtrain`` writes the *training record* ``training_record.json`` into the
run folder (the folder of the checkpoints, usually the working directory) and then the report;
``dreport FOLDER`` rebuilds the report on demand. The record (JSON, format
``deeph_tf.training_record/1``)::

    {
      "format": "deeph_tf.training_record/1",
      "version": "0.1.0",                   # deeph_tf version of the run
      "target": "hamiltonian",              # or "overlap", "density_matrix", "energy_force"
      "config": {...},                      # the normalized input, as in out.json
      "lcurve": "lcurve.out",               # relative to the record's folder, or absolute; null: none
      "dataset": {"train": {"structures": 240, "atoms": 720}, "validate": {...}, "test": {...}},
      "parameters": 251234,                 # trainable parameters (null: unknown)
      "steps_per_epoch": 30.0,              # training structures / global batch size (null: unknown)
      "epochs": [                           # one per finished epoch (and a last partial one)
        {"epoch": 1, "step": 30, "seconds": 12.5, "elapsed": 12.5,
         "peak_rss_mib": 2011.3, "peak_device_mib": null}
      ],
      "last_step": 600, "seconds": 250.1,   # optimizer steps done; wall time of the run (s)
      "peak_rss_mib": 2100.0, "peak_device_mib": null,
      "final": {"subset": "validate", "structures": 20,            # null: no final evaluation
                "metrics": {"rmse_e": 0.0021, "rmse_f": 0.05},
                "units": {"rmse_e": "eV/atom", "rmse_f": "eV/A"}},
      "targets": {"rmse_f": 0.1},           # upper bounds from the input (may be {})
      "parity": "parity.npz",               # relative like lcurve, or null
      "comparisons": [                      # optional: extra evaluations (e.g. distillation)
        {"name": "student vs teacher", "subset": "validate", "structures": 20,
         "metrics": {...}, "units": {...}}
      ]
    }

Every top-level key but ``comparisons`` must be present (values may be null where noted);
epoch entries need all six keys (the numbers but ``epoch`` and ``step`` may be null);
``final`` needs ``subset``, ``structures``, ``metrics`` and ``units``; a comparison needs
``name`` and ``metrics``. Other keys are kept and ignored. A record built by
``dreport --partial`` (a run killed before its end) also has ``"partial": {"checkpoint": path,
"checkpoint_step": step}``.

``parity.npz`` holds pairs ``<quantity>_reference`` / ``<quantity>_predicted`` (same shape,
flattened when plotted), e.g. ``energy_per_atom_*`` (eV/atom), ``force_*`` (eV/A),
``hamiltonian_*`` (eV), and optionally the unit as a 0-d string array ``<quantity>_unit``.

The per-epoch table takes, for each epoch, the lcurve.out row with the largest step <= the
epoch's last step and prints its values the way lcurve.out does (``%.2e`` metrics, ``%.1e``
learning rate), so they read back exactly as in lcurve.out. No TensorFlow here: NumPy, and
matplotlib (Agg, bare ``Figure``) for the figures.
"""
from __future__ import annotations

import datetime
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from deeph_tf._version import __version__
from deeph_tf.atomic_io import atomic_path, atomic_write_text
from deeph_tf.train.lcurve import plot_lcurve, read_lcurve

logger = logging.getLogger(__name__)

__all__ = [
    "RECORD_NAME",
    "REPORT_NAME",
    "RECORD_FORMAT",
    "ReportError",
    "EpochTable",
    "validate_training_record",
    "write_training_record",
    "read_training_record",
    "epoch_rows",
    "write_report",
    "report_from_folder",
    "partial_record",
]

PathLike = Union[str, "os.PathLike[str]"]

RECORD_NAME = "training_record.json"
REPORT_NAME = "report.md"
RECORD_FORMAT = "deeph_tf.training_record/1"
#: Targets a record may name (others are reported as they are).
TARGETS = ("hamiltonian", "overlap", "density_matrix", "energy_force")
#: At most this many rows in the per-epoch table (evenly spaced, first and last kept).
MAX_EPOCH_ROWS = 50
LCURVE_PNG = "report_lcurve.png"

_REQUIRED = (
    "format", "version", "target", "config", "lcurve", "dataset", "parameters", "steps_per_epoch",
    "epochs", "last_step", "seconds", "peak_rss_mib", "peak_device_mib", "final", "targets", "parity",
)
_EPOCH_REQUIRED = ("epoch", "step", "seconds", "elapsed", "peak_rss_mib", "peak_device_mib")
_FINAL_REQUIRED = ("subset", "structures", "metrics", "units")
_COMPARISON_REQUIRED = ("name", "metrics")
#: Units of parity quantities without a stored ``<quantity>_unit``.
_DEFAULT_UNITS = {
    "energy": "eV", "energy_per_atom": "eV/atom", "force": "eV/A", "virial": "eV",
    "hamiltonian": "eV", "overlap": "", "density_matrix": "",
}


class ReportError(ValueError):
    """A training record or run folder that cannot give a report, with the file and the reason."""


# --------------------------------------------------------------------------- the record


def validate_training_record(record: Mapping[str, Any], source: str = "training record") -> None:
    """Check the keys and basic types of a record (see the module docstring).

    Raises:
        ReportError: naming ``source`` and the missing or bad key.
    """
    if not isinstance(record, Mapping):
        raise ReportError(f"{source}: a training record must be a JSON object, got {type(record).__name__}")
    missing = [key for key in _REQUIRED if key not in record]
    if missing:
        raise ReportError(f"{source}: missing key(s) {', '.join(repr(k) for k in missing)} "
                          f"(a {RECORD_FORMAT} record needs {', '.join(_REQUIRED)})")
    if record["format"] != RECORD_FORMAT:
        raise ReportError(f"{source}: 'format' is {record['format']!r}, expected {RECORD_FORMAT!r}")
    for key, kind in (("config", Mapping), ("dataset", Mapping), ("targets", Mapping), ("epochs", list)):
        if not isinstance(record[key], kind):
            raise ReportError(f"{source}: {key!r} must be a JSON {'array' if kind is list else 'object'}, "
                              f"got {type(record[key]).__name__}")
    if not isinstance(record["target"], str):
        raise ReportError(f"{source}: 'target' must be a string, got {record['target']!r}")
    if record["target"] not in TARGETS:
        logger.warning("%s: unknown target %r (known: %s)", source, record["target"], ", ".join(TARGETS))
    if record["lcurve"] is not None and not isinstance(record["lcurve"], str):
        raise ReportError(f"{source}: 'lcurve' must be a path (string) or null, got {record['lcurve']!r}")
    if record["parity"] is not None and not isinstance(record["parity"], str):
        raise ReportError(f"{source}: 'parity' must be a path (string) or null, got {record['parity']!r}")
    for k, entry in enumerate(record["epochs"]):
        if not isinstance(entry, Mapping):
            raise ReportError(f"{source}: epochs[{k}] must be an object, got {entry!r}")
        missing = [key for key in _EPOCH_REQUIRED if key not in entry]
        if missing:
            raise ReportError(f"{source}: epochs[{k}] lacks {', '.join(repr(m) for m in missing)} "
                              f"(an epoch entry needs {', '.join(_EPOCH_REQUIRED)})")
        for key in ("epoch", "step"):
            if isinstance(entry[key], bool) or not isinstance(entry[key], (int, float)):
                raise ReportError(f"{source}: epochs[{k}].{key} must be a number, got {entry[key]!r}")
    final = record["final"]
    if final is not None:
        if not isinstance(final, Mapping):
            raise ReportError(f"{source}: 'final' must be an object or null, got {final!r}")
        missing = [key for key in _FINAL_REQUIRED if key not in final]
        if missing:
            raise ReportError(f"{source}: 'final' lacks {', '.join(repr(m) for m in missing)} "
                              f"(it needs {', '.join(_FINAL_REQUIRED)})")
        if not isinstance(final["metrics"], Mapping):
            raise ReportError(f"{source}: 'final.metrics' must be an object, got {final['metrics']!r}")
    comparisons = record.get("comparisons", [])
    if comparisons is not None:
        if not isinstance(comparisons, list):
            raise ReportError(f"{source}: 'comparisons' must be an array, got {type(comparisons).__name__}")
        for k, entry in enumerate(comparisons):
            missing = [key for key in _COMPARISON_REQUIRED if not isinstance(entry, Mapping) or key not in entry]
            if missing:
                raise ReportError(f"{source}: comparisons[{k}] lacks {', '.join(repr(m) for m in missing)} "
                                  f"(a comparison needs {', '.join(_COMPARISON_REQUIRED)})")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return os.fspath(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_training_record(folder: PathLike, record: Mapping[str, Any]) -> Path:
    """Validate ``record`` and write it to ``folder/training_record.json`` atomically.

    NumPy scalars/arrays and paths are converted; the folder is created if needed.

    Returns:
        the file's path.
    """
    folder = Path(folder)
    path = folder / RECORD_NAME
    validate_training_record(record, source=f"record for {path}")
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=1, default=_json_default, allow_nan=True) + "\n")
    logger.debug("wrote %s", path)
    return path


def read_training_record(folder_or_file: PathLike) -> Dict[str, Any]:
    """Read and validate a training record: a folder's ``training_record.json`` or a file.

    Raises:
        ReportError: the file is missing, not JSON, or lacks a key (the message names both).
    """
    path = Path(folder_or_file)
    if path.is_dir():
        path = path / RECORD_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise ReportError(f"{path}: no such training record") from error
    except OSError as error:
        raise ReportError(f"{path}: cannot read the training record ({error})") from error
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise ReportError(f"{path}: not valid JSON ({error})") from error
    validate_training_record(record, source=str(path))
    return record


def _resolve(base: Path, name: Optional[str]) -> Optional[Path]:
    if name is None:
        return None
    path = Path(name)
    return path if path.is_absolute() else base / path


# --------------------------------------------------------------------------- the per-epoch table


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


def _fmt(value: Any, spec: str) -> str:
    if value is None:
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return spec % number if math.isfinite(number) else str(number)


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
            cells += [_fmt(entry.get("seconds"), "%.2f"), _fmt(entry.get("peak_rss_mib"), "%.1f")]
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


# --------------------------------------------------------------------------- figures


def _parity_pairs(npz_path: Path) -> List[Tuple[str, np.ndarray, np.ndarray, str]]:
    """(quantity, reference, predicted, unit) for each complete pair in parity.npz, sorted by name."""
    pairs = []
    with np.load(npz_path, allow_pickle=False) as data:
        names = set(data.files)
        for name in sorted(names):
            if not name.endswith("_reference"):
                continue
            quantity = name[: -len("_reference")]
            if f"{quantity}_predicted" not in names:
                logger.warning("%s: %s without %s_predicted, skipped", npz_path, name, quantity)
                continue
            reference = np.asarray(data[name], dtype=float).ravel()
            predicted = np.asarray(data[f"{quantity}_predicted"], dtype=float).ravel()
            if f"{quantity}_unit" in names:
                unit = str(data[f"{quantity}_unit"][()])
            else:
                unit = _DEFAULT_UNITS.get(quantity, "")
            pairs.append((quantity, reference, predicted, unit))
    return pairs


def plot_parity_pair(quantity: str, reference: np.ndarray, predicted: np.ndarray, unit: str,
                     png_path: PathLike) -> Path:
    """Predicted against reference (hexbin above 20000 points), MAE and RMSE in the title; atomic write.

    Raises:
        ValueError: the arrays differ in size or are empty.
    """
    from matplotlib.figure import Figure

    reference = np.asarray(reference, dtype=float).ravel()
    predicted = np.asarray(predicted, dtype=float).ravel()
    if reference.shape != predicted.shape:
        raise ValueError(f"{quantity}: {reference.size} reference values but {predicted.size} predicted")
    if reference.size == 0:
        raise ValueError(f"{quantity}: no values")
    error = predicted - reference
    mae, rmse = float(np.mean(np.abs(error))), float(np.sqrt(np.mean(error**2)))
    suffix = f" ({unit})" if unit else ""
    fig = Figure(figsize=(5.0, 4.6), layout="constrained")
    ax = fig.add_subplot()
    lo = float(min(np.nanmin(reference), np.nanmin(predicted)))
    hi = float(max(np.nanmax(reference), np.nanmax(predicted)))
    if reference.size > 20000:
        ax.hexbin(reference, predicted, gridsize=120, bins="log", mincnt=1, cmap="viridis")
    else:
        ax.scatter(reference, predicted, s=4, alpha=0.5)
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlabel(f"reference {quantity}{suffix}")
    ax.set_ylabel(f"predicted {quantity}{suffix}")
    unit_text = f" {unit}" if unit else ""
    ax.set_title(f"{quantity}: {reference.size} values\nMAE {mae:.3g}{unit_text}, RMSE {rmse:.3g}{unit_text}",
                 fontsize="medium")
    ax.grid(True, alpha=0.3)
    png_path = Path(png_path)
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return png_path


# --------------------------------------------------------------------------- markdown helpers


def _get(config: Mapping[str, Any], *keys: str) -> Any:
    node: Any = config
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _text(value: Any, limit: int = 120) -> str:
    if isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
        text = ", ".join(items[:4]) + (f", ... ({len(items)} in all)" if len(items) > 4 else "")
    elif isinstance(value, Mapping):
        text = ", ".join(f"{k}: {v}" for k, v in value.items())
    elif isinstance(value, float):
        text = f"{value:g}"
    else:
        text = str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _number(value: Any) -> str:
    if value is None:
        return "n/a"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _text(value)
    return f"{number:.4g}" if math.isfinite(number) else str(number)


def _duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "n/a"
    seconds = float(seconds)
    hours, rest = divmod(int(round(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{seconds:.1f} s ({hours:d}:{minutes:02d}:{secs:02d})"


def _mib(value: Optional[float]) -> str:
    return "not measured" if value is None else f"{float(value):.1f} MiB"


def _configuration_rows(record: Mapping[str, Any]) -> List[Tuple[str, str]]:
    config = record.get("config") or {}
    rows: List[Tuple[str, str]] = [("target", _text(record.get("target")))]
    for label, keys in (
        ("model preset", ("model", "preset")),
        ("precision", ("model", "precision")),
        ("cutoff (A)", ("model", "cutoff")),
        ("hidden irreps", ("model", "irreps_hidden")),
        ("blocks", ("model", "num_blocks")),
        ("lmax of the spherical harmonics", ("model", "lmax_sh")),
        ("loss type", ("loss", "type")),
    ):
        value = _get(config, *keys)
        if value is not None:
            rows.append((label, _text(value)))
    loss = _get(config, "loss")
    if isinstance(loss, Mapping):
        prefactors = [(k, v) for k, v in loss.items() if k.startswith(("start_pref_", "limit_pref_"))]
        if prefactors:
            rows.append(("loss prefactors", ", ".join(f"{k} {_text(v)}" for k, v in sorted(prefactors))))
    lr = _get(config, "learning_rate")
    if isinstance(lr, Mapping) and lr:
        parts = [f"{k} {_text(lr[k])}" for k in ("start_lr", "stop_lr", "decay_steps", "warmup_steps") if k in lr]
        rows.append(("learning rate", _text(lr.get("type", "exp")) + (" (" + ", ".join(parts) + ")" if parts else "")))
    for label, keys in (
        ("optimizer", ("optimizer", "type")),
        ("batch size", ("training", "training_data", "batch_size")),
        ("numb_steps", ("training", "numb_steps")),
        ("seed", ("training", "seed")),
        ("training systems", ("training", "training_data", "systems")),
        ("validation systems", ("training", "validation_data", "systems")),
        ("dataset split", ("training", "dataset", "split")),
    ):
        value = _get(config, *keys)
        if value is not None:
            rows.append((label, _text(value)))
    return rows


def _status(value: Any, target: Any) -> str:
    try:
        value_f, target_f = float(value), float(target)
    except (TypeError, ValueError):
        return "NOT met (not a number)"
    if math.isnan(value_f):
        return "NOT met (nan)"
    return "met" if value_f <= target_f else "NOT met"


def _metrics_section(final: Optional[Mapping[str, Any]], targets: Mapping[str, Any]) -> List[str]:
    lines: List[str] = []
    if final is None:
        lines.append("No final evaluation in the record (a partial report, or a run without one).")
        metrics: Mapping[str, Any] = {}
        units: Mapping[str, Any] = {}
    else:
        metrics = final.get("metrics") or {}
        units = final.get("units") or {}
        lines.append(f"On the `{final.get('subset')}` subset ({final.get('structures')} structures):")
        lines.append("")
        if metrics:
            lines.append(_table(["metric", "value", "unit"],
                                [(f"`{name}`", _number(value), _text(units.get(name, ""))) for name, value in metrics.items()]))
        else:
            lines.append("No metrics were computed.")
    lines.append("")
    if not targets:
        lines.append("No targets were set in the input.")
        return lines
    available = ", ".join(f"`{name}`" for name in metrics) or "none"
    rows = []
    for name, target in targets.items():
        unit = _text(units.get(name, ""))
        if name in metrics:
            rows.append((f"`{name}`", _number(metrics[name]), _number(target), unit, _status(metrics[name], target)))
        else:
            rows.append((f"`{name}`", "", _number(target), unit, f"not computed (available: {available})"))
    lines.append("Targets (upper bounds):")
    lines.append("")
    lines.append(_table(["metric", "value", "target", "unit", "status"], rows))
    met = sum(1 for row in rows if row[-1] == "met")
    lines.append("")
    lines.append(f"{met} of {len(rows)} target(s) met.")
    return lines


# --------------------------------------------------------------------------- the report


def write_report(folder: PathLike, record: Optional[Mapping[str, Any]] = None,
                 output: Optional[PathLike] = None, plots: bool = True) -> Path:
    """Write ``report.md`` (atomically) and its PNG figures for a run folder.

    Args:
        folder: the run folder (holds training_record.json unless ``record`` is given; paths
            in the record are relative to it).
        record: the training record (default: read from ``folder``); validated.
        output: the markdown file (default ``folder/report.md``); the figures
            (``report_lcurve.png``, ``report_parity_<quantity>.png``) go next to it.
        plots: draw the figures; a figure that fails is logged and noted in the report.

    Returns:
        the report's path.

    Raises:
        ReportError: a missing or invalid record.
    """
    folder = Path(folder)
    if record is None:
        record = read_training_record(folder)
    else:
        validate_training_record(record, source=f"training record for {folder}")
    output = folder / REPORT_NAME if output is None else Path(output)
    if output.is_dir():
        output = output / REPORT_NAME
    output.parent.mkdir(parents=True, exist_ok=True)
    figures_dir = output.parent

    lcurve_path = _resolve(folder, record["lcurve"])
    lcurve_table: Optional[np.ndarray] = None
    lcurve_problem = None
    if lcurve_path is None:
        lcurve_problem = "the record names no lcurve.out"
    elif not lcurve_path.is_file():
        lcurve_problem = f"{lcurve_path} not found"
    else:
        try:
            lcurve_table = read_lcurve(lcurve_path)
            if lcurve_table.dtype.names is None or "step" not in lcurve_table.dtype.names:
                lcurve_problem, lcurve_table = f"{lcurve_path}: no `step` column", None
        except (OSError, ValueError) as error:
            lcurve_problem = f"{lcurve_path}: unreadable ({error})"
    if lcurve_problem:
        logger.warning("report: %s", lcurve_problem)

    partial = record.get("partial")
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    lines: List[str] = [f"# Training report: {record['target']}", ""]
    lines.append(f"Generated {now} by deeph_tf {__version__} (trained with deeph_tf {record['version']}); "
                 f"run folder `{folder.resolve()}`.")
    if partial:
        lines += ["", f"**Partial report**: no training record (the run did not finish); built from "
                      f"`{lcurve_path.name if lcurve_path else 'lcurve.out'}` and the checkpoint "
                      f"`{partial.get('checkpoint')}` (step {partial.get('checkpoint_step')})."]

    lines += ["", "## Configuration", "", _table(["setting", "value"], _configuration_rows(record))]

    lines += ["", "## Data", ""]
    dataset = record.get("dataset") or {}
    if dataset:
        order = [s for s in ("train", "validate", "test") if s in dataset] + [s for s in dataset if s not in ("train", "validate", "test")]
        rows = []
        for subset in order:
            entry = dataset[subset] if isinstance(dataset[subset], Mapping) else {}
            rows.append((subset, _text(entry.get("structures", "n/a")), _text(entry.get("atoms", "n/a"))))
        lines.append(_table(["subset", "structures", "atoms"], rows))
    else:
        lines.append("No dataset sizes in the record.")

    lines += ["", "## Model", ""]
    parameters = record.get("parameters")
    lines.append(f"Trainable parameters: {parameters:,}" if isinstance(parameters, int) else
                 f"Trainable parameters: {_text(parameters) if parameters is not None else 'n/a'}")

    lines += ["", "## Training", ""]
    epochs = list(record.get("epochs") or [])
    steps_per_epoch = record.get("steps_per_epoch")
    training_rows = [("total time", _duration(record.get("seconds"))),
                     ("steps", f"{record['last_step']}" + (f" of {_get(record['config'], 'training', 'numb_steps')}"
                                                           if _get(record["config"], "training", "numb_steps") is not None else "")),
                     ("steps per epoch", _number(steps_per_epoch)),
                     ("epochs", str(len(epochs)) if epochs else "n/a")]
    seconds = [float(e["seconds"]) for e in _full_epochs(epochs, steps_per_epoch) if e.get("seconds") is not None]
    if seconds:
        excluded = len(epochs) - len(_full_epochs(epochs, steps_per_epoch))
        note = f" over {len(seconds)} full epoch(s)" + (" (the last, partial epoch left out)" if excluded else "")
        training_rows.append(("time per epoch (median / min / max)",
                              f"{np.median(seconds):.2f} / {min(seconds):.2f} / {max(seconds):.2f} s{note}"))
    training_rows += [("peak RSS", _mib(record.get("peak_rss_mib"))),
                      ("peak device memory", _mib(record.get("peak_device_mib")))]
    lines.append(_table(["", ""], training_rows))

    lines += ["", "## Per-epoch table", ""]
    if lcurve_problem:
        lines += [f"lcurve.out could not be read: {lcurve_problem}.", ""]
    table = epoch_rows(record, lcurve_table)
    if table.rows:
        units = (record.get("final") or {}).get("units") or {}
        metric_units = sorted({f"`{m}` {units[m]}" for m in units if any(c.startswith(m + "_") for c in table.columns)})
        notes = list(table.notes) + ([f"Units as for the final metrics of the same name: {', '.join(metric_units)}."]
                                     if metric_units else [])
        lines += [" ".join(notes), "", table.to_markdown()]
    else:
        lines.append("No rows.")

    lines += ["", "## Final metrics vs targets", ""]
    lines += _metrics_section(record.get("final"), record.get("targets") or {})
    for comparison in record.get("comparisons") or []:
        lines += ["", f"### {comparison['name']}", ""]
        subset, count = comparison.get("subset"), comparison.get("structures")
        if subset is not None or count is not None:
            lines += [f"On the `{subset}` subset ({count} structures):", ""]
        units = comparison.get("units") or {}
        lines.append(_table(["metric", "value", "unit"],
                            [(f"`{name}`", _number(value), _text(units.get(name, "")))
                             for name, value in (comparison.get("metrics") or {}).items()]))

    lines += ["", "## Figures", ""]
    lines += _figures(record, folder, figures_dir, lcurve_path if lcurve_table is not None else None, plots)

    atomic_write_text(output, "\n".join(lines) + "\n")
    logger.info("wrote %s", output)
    return output


def _full_epochs(epochs: Sequence[Mapping[str, Any]], steps_per_epoch: Optional[float]) -> List[Mapping[str, Any]]:
    """The epochs but a last partial one (its step below floor(epoch * steps_per_epoch))."""
    if not epochs or not steps_per_epoch:
        return list(epochs)
    last = epochs[-1]
    try:
        partial = int(last["step"]) < math.floor(float(last["epoch"]) * float(steps_per_epoch) + 1e-9)
    except (TypeError, ValueError):
        partial = False
    return list(epochs[:-1]) if partial and len(epochs) > 1 else list(epochs)


def _figures(record: Mapping[str, Any], folder: Path, figures_dir: Path, lcurve_path: Optional[Path],
             plots: bool) -> List[str]:
    """Draw the figures (each failure logged and noted) and return their markdown lines."""
    parity_path = _resolve(folder, record.get("parity"))
    if not plots:
        return ["Figures were not drawn (`--no-plots`)."]
    lines: List[str] = []
    if lcurve_path is not None:
        try:
            png = plot_lcurve(lcurve_path, figures_dir / LCURVE_PNG)
            lines += [f"![learning curve]({png.name})", ""]
        except Exception as error:  # a figure must never cost the report
            logger.warning("report: cannot draw the learning curve: %s", error)
            lines += [f"*The learning-curve figure could not be drawn: {_text(error, 300)}*", ""]
    else:
        lines += ["*No learning curve: lcurve.out is missing or unreadable.*", ""]
    if parity_path is None:
        lines.append("No parity data in the record.")
    elif not parity_path.is_file():
        logger.warning("report: %s not found", parity_path)
        lines.append(f"*Parity data `{parity_path}` not found.*")
    else:
        try:
            pairs = _parity_pairs(parity_path)
        except Exception as error:
            logger.warning("report: cannot read %s: %s", parity_path, error)
            pairs = []
            lines.append(f"*Parity data `{parity_path.name}` could not be read: {_text(error, 300)}*")
        for quantity, reference, predicted, unit in pairs:
            try:
                png = plot_parity_pair(quantity, reference, predicted, unit, figures_dir / f"report_parity_{quantity}.png")
                lines += [f"![parity: {quantity}]({png.name})", ""]
            except Exception as error:
                logger.warning("report: cannot draw the %s parity plot: %s", quantity, error)
                lines += [f"*The {quantity} parity figure could not be drawn: {_text(error, 300)}*", ""]
    while lines and lines[-1] == "":
        lines.pop()
    return lines


# --------------------------------------------------------------------------- dreport


def _find_checkpoint(folder: Path) -> Path:
    """The latest checkpoint of a run folder: its ``checkpoint`` pointer, ``model.ckpt.h5``, or a
    subfolder's pointer (``save_ckpt`` like ``ckpt/model.ckpt``)."""
    from deeph_tf.artifacts.checkpoint import POINTER_NAME, CheckpointError, resolve_checkpoint

    candidates = [folder, folder / "model.ckpt"]
    candidates += sorted(p.parent for p in folder.glob(f"*/{POINTER_NAME}") if p.is_file())
    problems = []
    for spec in candidates:
        try:
            path = resolve_checkpoint(spec)
        except (CheckpointError, TypeError) as error:  # TypeError: a pointer with latest null
            problems.append(str(error))
            continue
        if path.is_file():
            return path
        problems.append(f"{path}: missing")
    raise ReportError(f"{folder}: no checkpoint found for --partial ({'; '.join(problems)})")


def partial_record(folder: PathLike) -> Dict[str, Any]:
    """A minimal record for a run without training_record.json (killed before its end).

    From the latest checkpoint (its input, step and version) and lcurve.out
    (``training.disp_file`` of that input, relative to ``folder``); no epoch timing, no
    final metrics. Reading the checkpoint imports h5py only.

    Raises:
        ReportError: no readable checkpoint.
    """
    from deeph_tf.artifacts.checkpoint import CheckpointError, read_checkpoint

    folder = Path(folder)
    path = _find_checkpoint(folder)
    try:
        checkpoint = read_checkpoint(path)
    except CheckpointError as error:
        raise ReportError(str(error)) from error
    config = checkpoint.input or {}
    disp_file = _get(config, "training", "disp_file") or "lcurve.out"
    lcurve = disp_file
    for candidate in (folder / disp_file, path.parent / disp_file, folder / "lcurve.out"):
        if candidate.is_file():
            lcurve = os.path.relpath(candidate, folder)
            break
    last_step = int(checkpoint.step)
    lcurve_path = _resolve(folder, lcurve)
    if lcurve_path is not None and lcurve_path.is_file():
        try:
            table = read_lcurve(lcurve_path)
            if len(table) and table.dtype.names and "step" in table.dtype.names:
                last_step = max(last_step, int(np.nanmax(table["step"])))
        except (OSError, ValueError) as error:
            logger.warning("%s: unreadable (%s)", lcurve_path, error)
    target = _get(config, "model", "target") or checkpoint.model_config.get("target") or "hamiltonian"
    return {
        "format": RECORD_FORMAT, "version": checkpoint.version, "target": target, "config": config,
        "lcurve": lcurve, "dataset": {}, "parameters": None, "steps_per_epoch": None, "epochs": [],
        "last_step": last_step, "seconds": None, "peak_rss_mib": None, "peak_device_mib": None,
        "final": None, "targets": dict(config.get("targets") or {}) if isinstance(config, Mapping) else {},
        "parity": None,
        "partial": {"checkpoint": os.path.relpath(path, folder), "checkpoint_step": int(checkpoint.step)},
    }


def report_from_folder(folder: PathLike, output: Optional[PathLike] = None, partial: bool = False,
                       plots: bool = True) -> Path:
    """``dreport``: the report of a run folder from its training_record.json.

    Args:
        folder: the run folder.
        output: the markdown file (default ``folder/report.md``).
        partial: without a record, build the report from lcurve.out and the latest
            checkpoint's input (a run killed before its end); ignored when a record exists.
        plots: draw the figures.

    Raises:
        ReportError: no folder, no record (without ``partial``), an invalid record, or
            (``partial``) no checkpoint.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportError(f"{folder}: no such folder")
    if (folder / RECORD_NAME).is_file():
        if partial:
            logger.info("%s exists: --partial is not needed, using the record", folder / RECORD_NAME)
        return write_report(folder, output=output, plots=plots)
    if not partial:
        raise ReportError(
            f"{folder}: no {RECORD_NAME}. dtrain writes it at the end of a run; for a run killed before "
            f"its end, pass --partial to build the report from lcurve.out and the latest checkpoint's input alone"
        )
    logger.info("%s: no %s, building a partial report", folder, RECORD_NAME)
    return write_report(folder, record=partial_record(folder), output=output, plots=plots)
