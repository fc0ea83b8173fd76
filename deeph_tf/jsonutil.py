"""The package's JSON encoding for records and summaries (NumPy values, paths, NaN kept).

Policy: NumPy arrays become lists, NumPy scalars Python numbers, :class:`pathlib.Path` its
string; NaN and infinities are written as JSON's non-standard ``NaN`` / ``Infinity`` (as
Python's :mod:`json` reads them back), so an uncomputed metric stays visibly ``NaN``
rather than turning into 0 or null. Anything else raises ``TypeError``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["json_default", "json_text"]


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)`` hook: NumPy arrays and scalars, and paths, as plain JSON values.

    Raises:
        TypeError: any other type (naming it).
    """
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return os.fspath(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def json_text(value: Any, indent: int = 1) -> str:
    """``value`` as JSON text (``indent`` spaces, NaN kept, :func:`json_default` types) plus a newline."""
    import json

    return json.dumps(value, indent=indent, default=json_default, allow_nan=True) + "\n"
