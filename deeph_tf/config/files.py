"""Reading an input file (strict JSON, file name in messages) and writing the normalized out.json."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Tuple, Union

from deeph_tf.config.errors import ConfigError
from deeph_tf.config.normalize import normalize

PathLike = Union[str, "os.PathLike[str]"]


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _pairs_without_duplicates(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in pairs:
        if key in out and not key.startswith("_"):  # repeated comments are common and harmless
            raise ValueError(f"duplicate key '{key}'")
        out[key] = value
    return out


def load_input(path: PathLike) -> Dict[str, Any]:
    """Read a training input JSON file and return it normalized (see :func:`normalize`).

    A ``.toml`` file is read as a DeepH-pack training TOML (:mod:`deeph_tf.config.deeph_pack`,
    its conversion notes logged); its normalized input is returned.

    Raises:
        FileNotFoundError: no such file.
        ConfigError: a JSON syntax error (``input.json:12:5: invalid JSON: Expecting ',' delimiter``),
            a duplicate key or NaN/Infinity (with the file name), or any problem of :func:`normalize`.
    """
    path = os.fspath(path)
    if path.lower().endswith(".toml"):
        from deeph_tf.config.deeph_pack import load_train_toml, log_notes

        plan = load_train_toml(path)
        log_notes(plan.toml)
        return plan.config
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        raw = json.loads(text, object_pairs_hook=_pairs_without_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: invalid input: {exc}") from None
    return normalize(raw)


def write_normalized(config: Dict[str, Any], path: PathLike) -> None:
    """Write ``config`` (e.g. out.json) atomically: JSON with indent 2, keys in the given order."""
    from deeph_tf.atomic_io import atomic_write_text

    atomic_write_text(path, json.dumps(config, indent=2) + "\n")
