"""The training record ``training_record.json``: its format, validation, writing and reading.

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
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Union

from deeph_tf.atomic_io import atomic_write_text
from deeph_tf.data import keys
from deeph_tf.jsonutil import json_text

logger = logging.getLogger(__name__)

__all__ = ["RECORD_NAME", "REPORT_NAME", "RECORD_FORMAT", "TARGETS", "ReportError", "validate_training_record",
           "write_training_record", "read_training_record", "resolve_path"]

PathLike = Union[str, "os.PathLike[str]"]

RECORD_NAME = "training_record.json"
REPORT_NAME = "report.md"
RECORD_FORMAT = "deeph_tf.training_record/1"
#: Targets a record may name (others are reported as they are).
TARGETS = (keys.HAMILTONIAN, keys.OVERLAP, keys.DENSITY_MATRIX, keys.ENERGY_FORCE)

_REQUIRED = (
    "format", "version", "target", "config", "lcurve", "dataset", "parameters", "steps_per_epoch",
    "epochs", "last_step", "seconds", "peak_rss_mib", "peak_device_mib", "final", "targets", "parity",
)
_EPOCH_REQUIRED = ("epoch", "step", "seconds", "elapsed", "peak_rss_mib", "peak_device_mib")
_FINAL_REQUIRED = ("subset", "structures", "metrics", "units")
_COMPARISON_REQUIRED = ("name", "metrics")


class ReportError(ValueError):
    """A training record or run folder that cannot give a report, with the file and the reason."""


def _require_keys(entry: Any, required: Sequence[str], problem: str, needs: str) -> None:
    """Raise ``ReportError("<problem> 'a', 'b' (<needs> <required>)")`` for the keys ``entry`` lacks
    (all of them when it is not an object)."""
    missing = [key for key in required if not isinstance(entry, Mapping) or key not in entry]
    if missing:
        raise ReportError(f"{problem} {', '.join(repr(key) for key in missing)} ({needs} {', '.join(required)})")


def validate_training_record(record: Mapping[str, Any], source: str = "training record") -> None:
    """Check the keys and basic types of a record (see the module docstring).

    Raises:
        ReportError: naming ``source`` and the missing or bad key.
    """
    if not isinstance(record, Mapping):
        raise ReportError(f"{source}: a training record must be a JSON object, got {type(record).__name__}")
    _require_keys(record, _REQUIRED, f"{source}: missing key(s)", f"a {RECORD_FORMAT} record needs")
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
        _require_keys(entry, _EPOCH_REQUIRED, f"{source}: epochs[{k}] lacks", "an epoch entry needs")
        for key in ("epoch", "step"):
            if isinstance(entry[key], bool) or not isinstance(entry[key], (int, float)):
                raise ReportError(f"{source}: epochs[{k}].{key} must be a number, got {entry[key]!r}")
    final = record["final"]
    if final is not None:
        if not isinstance(final, Mapping):
            raise ReportError(f"{source}: 'final' must be an object or null, got {final!r}")
        _require_keys(final, _FINAL_REQUIRED, f"{source}: 'final' lacks", "it needs")
        if not isinstance(final["metrics"], Mapping):
            raise ReportError(f"{source}: 'final.metrics' must be an object, got {final['metrics']!r}")
    comparisons = record.get("comparisons", [])
    if comparisons is not None:
        if not isinstance(comparisons, list):
            raise ReportError(f"{source}: 'comparisons' must be an array, got {type(comparisons).__name__}")
        for k, entry in enumerate(comparisons):
            _require_keys(entry, _COMPARISON_REQUIRED, f"{source}: comparisons[{k}] lacks", "a comparison needs")


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
    atomic_write_text(path, json_text(record))
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


def resolve_path(base: Path, name: Optional[str]) -> Optional[Path]:
    """A record's path (``lcurve``, ``parity``): relative to ``base`` unless absolute; None stays None."""
    if name is None:
        return None
    path = Path(name)
    return path if path.is_absolute() else base / path
