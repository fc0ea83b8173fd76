"""ConfigError and the pieces of its messages (paths like ``training.training_data.systems[1]``, values)."""
from __future__ import annotations

import json
from typing import Any, Optional, Sequence, Tuple, Union

#: One step of a path inside the input: a key (str) or a list index (int).
PathParts = Tuple[Union[str, int], ...]


class ConfigError(ValueError):
    """An input that does not follow the schema (or a cross-field rule).

    Attributes:
        path: where the problem is, as shown in the message: keys joined with ".",
            list indices as ``[i]``, ``"<root>"`` for the whole input; for an unknown
            key, the path of that key (``"learning_rate.strat_lr"``). ``None`` for
            problems of the file itself (JSON syntax).
    """

    def __init__(self, message: str, path: Optional[str] = None) -> None:
        super().__init__(message)
        self.path = path


def format_path(parts: Sequence[Union[str, int]]) -> str:
    """("training", "training_data", "systems", 1) -> "training.training_data.systems[1]"."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<root>"


def show_value(value: Any, limit: int = 120) -> str:
    """A value as quoted in messages: strings as 'text', everything else as JSON."""
    if isinstance(value, str):
        text = repr(value)
    else:
        try:
            text = json.dumps(value)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def invalid(parts: PathParts, value: Any, expected: str) -> ConfigError:
    where = format_path(parts)
    return ConfigError(f"{where}: {show_value(value)} is not valid: expected {expected}", path=where)


def _value_at(config: Any, parts: PathParts) -> Any:
    for p in parts:
        config = config[p]
    return config


def as_written(raw: Any, filled: Any, parts: PathParts) -> Any:
    """The value at ``parts`` as the user wrote it (before defaults), if it is there."""
    try:
        return _value_at(raw, parts)
    except (KeyError, IndexError, TypeError):
        return _value_at(filled, parts)
