"""``dreport FOLDER [--partial]``: the report of a run folder, from its record or, for a run killed
before its end, from lcurve.out and the latest checkpoint (:func:`partial_record`)."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import numpy as np

from deeph_tf.data import keys
from deeph_tf.train.lcurve import read_lcurve
from deeph_tf.train.report.markdown import write_report
from deeph_tf.train.report.record import RECORD_FORMAT, RECORD_NAME, ReportError, resolve_path
from deeph_tf.train.report.sections import config_value

logger = logging.getLogger(__name__)

__all__ = ["partial_record", "report_from_folder"]

PathLike = Union[str, "os.PathLike[str]"]


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
    disp_file = config_value(config, "training", "disp_file") or "lcurve.out"
    lcurve = disp_file
    for candidate in (folder / disp_file, path.parent / disp_file, folder / "lcurve.out"):
        if candidate.is_file():
            lcurve = os.path.relpath(candidate, folder)
            break
    last_step = int(checkpoint.step)
    lcurve_path = resolve_path(folder, lcurve)
    if lcurve_path is not None and lcurve_path.is_file():
        try:
            table = read_lcurve(lcurve_path)
            if len(table) and table.dtype.names and "step" in table.dtype.names:
                last_step = max(last_step, int(np.nanmax(table["step"])))
        except (OSError, ValueError) as error:
            logger.warning("%s: unreadable (%s)", lcurve_path, error)
    target = config_value(config, "model", "target") or checkpoint.model_config.get("target") or keys.HAMILTONIAN
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
