"""``report.md``: the markdown document of a run, from its training record (sections in order:
configuration, data, model, training, per-epoch table, final metrics vs targets, figures)."""
from __future__ import annotations

import datetime
import logging
import os
from pathlib import Path
from typing import Any, List, Mapping, Optional, Union

import numpy as np

from deeph_tf._version import __version__
from deeph_tf.atomic_io import atomic_write_text
from deeph_tf.train.lcurve import read_lcurve
from deeph_tf.train.report.epochs import epoch_rows, full_epochs
from deeph_tf.train.report.figures import figure_lines
from deeph_tf.train.report.record import (REPORT_NAME, read_training_record, resolve_path,
                                          validate_training_record)
from deeph_tf.train.report.sections import (cell_text, config_value, configuration_rows, format_duration,
                                            format_mib, format_number, markdown_table, metrics_section)

logger = logging.getLogger(__name__)

__all__ = ["write_report"]

PathLike = Union[str, "os.PathLike[str]"]


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

    lcurve_path = resolve_path(folder, record["lcurve"])
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

    lines += ["", "## Configuration", "", markdown_table(["setting", "value"], configuration_rows(record))]

    lines += ["", "## Data", ""]
    dataset = record.get("dataset") or {}
    if dataset:
        order = [s for s in ("train", "validate", "test") if s in dataset] + [s for s in dataset if s not in ("train", "validate", "test")]
        rows = []
        for subset in order:
            entry = dataset[subset] if isinstance(dataset[subset], Mapping) else {}
            rows.append((subset, cell_text(entry.get("structures", "n/a")), cell_text(entry.get("atoms", "n/a"))))
        lines.append(markdown_table(["subset", "structures", "atoms"], rows))
    else:
        lines.append("No dataset sizes in the record.")

    lines += ["", "## Model", ""]
    parameters = record.get("parameters")
    lines.append(f"Trainable parameters: {parameters:,}" if isinstance(parameters, int) else
                 f"Trainable parameters: {cell_text(parameters) if parameters is not None else 'n/a'}")

    lines += ["", "## Training", ""]
    epochs = list(record.get("epochs") or [])
    steps_per_epoch = record.get("steps_per_epoch")
    training_rows = [("total time", format_duration(record.get("seconds"))),
                     ("steps", f"{record['last_step']}" + (f" of {config_value(record['config'], 'training', 'numb_steps')}"
                                                           if config_value(record["config"], "training", "numb_steps") is not None else "")),
                     ("steps per epoch", format_number(steps_per_epoch)),
                     ("epochs", str(len(epochs)) if epochs else "n/a")]
    seconds = [float(e["seconds"]) for e in full_epochs(epochs, steps_per_epoch) if e.get("seconds") is not None]
    if seconds:
        excluded = len(epochs) - len(full_epochs(epochs, steps_per_epoch))
        note = f" over {len(seconds)} full epoch(s)" + (" (the last, partial epoch left out)" if excluded else "")
        training_rows.append(("time per epoch (median / min / max)",
                              f"{np.median(seconds):.2f} / {min(seconds):.2f} / {max(seconds):.2f} s{note}"))
    training_rows += [("peak RSS", format_mib(record.get("peak_rss_mib"))),
                      ("peak device memory", format_mib(record.get("peak_device_mib")))]
    lines.append(markdown_table(["", ""], training_rows))

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
    lines += metrics_section(record.get("final"), record.get("targets") or {})
    for comparison in record.get("comparisons") or []:
        lines += ["", f"### {comparison['name']}", ""]
        subset, count = comparison.get("subset"), comparison.get("structures")
        if subset is not None or count is not None:
            lines += [f"On the `{subset}` subset ({count} structures):", ""]
        units = comparison.get("units") or {}
        lines.append(markdown_table(["metric", "value", "unit"],
                            [(f"`{name}`", format_number(value), cell_text(units.get(name, "")))
                             for name, value in (comparison.get("metrics") or {}).items()]))

    lines += ["", "## Figures", ""]
    lines += figure_lines(record, folder, figures_dir, lcurve_path if lcurve_table is not None else None, plots)

    atomic_write_text(output, "\n".join(lines) + "\n")
    logger.info("wrote %s", output)
    return output
