"""Reading a DeepH-pack TOML: syntax, kind (training or inference), unknown keys, types, defaults."""
from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Set, Union

from deeph_tf.config.deeph_pack.keys import ABSENT, INFER, REQUIRED, TRAIN, Key, sections
from deeph_tf.config.errors import ConfigError, show_value

PathLike = Union[str, "os.PathLike[str]"]
TRAIN_KIND, INFER_KIND = "train", "infer"
_COMMANDS = {TRAIN_KIND: "dtrain FILE", INFER_KIND: "dpredict FILE"}


def is_toml(path: PathLike) -> bool:
    """Whether ``path`` names a TOML file (by its suffix, as DeepH-pack's commands take them)."""
    return Path(path).suffix.lower() == ".toml"


@dataclass
class TomlInput:
    """A checked DeepH-pack TOML: every key of its kind, by dotted name, absent ones at their default."""

    path: Path
    kind: str
    values: Dict[str, Any]
    #: The keys the file itself sets (the others hold DeepH-pack's defaults).
    written: Set[str] = field(default_factory=set)
    #: What the conversion tells the user (logged at INFO), in order.
    notes: List[str] = field(default_factory=list)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def given(self, key: str) -> bool:
        return key in self.written

    def note(self, message: str) -> None:
        self.notes.append(message)

    def refuse(self, key: str, why: str) -> ConfigError:
        """The error for a key whose value deeph_tf cannot honour: names the key, its value, why, the alternative."""
        value = self.values.get(key)
        shown = "" if value is ABSENT else f" = {show_value(value)}"
        return ConfigError(f"{self.path}: {key}{shown}: {why}", path=key)


def _flatten(table: Dict[str, Any], prefix: str, known: Dict[str, Key], tables: Set[str], path: Path,
             out: Dict[str, Any]) -> None:
    for name, value in table.items():
        key = f"{prefix}.{name}" if prefix else name
        if key in known and not isinstance(value, dict):
            out[key] = value
        elif key in tables and isinstance(value, dict):
            _flatten(value, key, known, tables, path, out)
        elif key in known or key in tables:
            want = "a table [" + key + "]" if key in tables else known[key].expected
            raise ConfigError(f"{path}: {key}: {show_value(value)} is not valid: expected {want}", path=key)
        else:
            start = f"{prefix}." if prefix else ""
            siblings = sorted({k[len(start):].split(".")[0] for k in known if k.startswith(start)})
            message = f"{path}: undefined key '{name}' at {prefix or '<root>'}"
            close = difflib.get_close_matches(name, siblings, n=1)
            if close:
                message += f"; did you mean {close[0]}?"
            raise ConfigError(message, path=key)


def _kind(raw: Dict[str, Any]) -> str:
    process = raw.get("process") if isinstance(raw.get("process"), dict) else {}
    if "train" in process and "infer" in process:
        raise ConfigError("a TOML with both [process.train] and [process.infer]: give one (training or inference)",
                          path="process")
    model = raw.get("model") if isinstance(raw.get("model"), dict) else {}
    return INFER_KIND if "infer" in process or "model_dir" in model else TRAIN_KIND


def read_toml(path: PathLike, expected_kind: str) -> TomlInput:
    """Read and check a DeepH-pack TOML of ``expected_kind`` ("train" or "infer").

    Raises:
        FileNotFoundError: no such file.
        ConfigError: a syntax error (file, line, column), a file of the other kind (with the
            command that takes it), an unknown key (``undefined key 'batchsize' at
            process.train.dataloader; did you mean batch_size?``), a value of the wrong type,
            or a missing required key.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        try:
            raw = tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: invalid TOML: {error}") from None
    kind = _kind(raw)
    if kind != expected_kind:
        what = "an inference" if kind == INFER_KIND else "a training"
        raise ConfigError(f"{path} is {what} TOML ([process.{kind}]); run {_COMMANDS[kind].replace('FILE', str(path))}",
                          path=f"process.{kind}")
    known = TRAIN if kind == TRAIN_KIND else INFER
    flat: Dict[str, Any] = {}
    _flatten(raw, "", known, set(sections(known)), path, flat)
    for key, value in flat.items():
        if not known[key].accepts(value):
            raise ConfigError(f"{path}: {key}: {show_value(value)} is not valid: expected {known[key].expected}",
                              path=key)
    values: Dict[str, Any] = {}
    for key, spec in known.items():
        if key in flat:
            value = flat[key]
            values[key] = float(value) if spec.kind == "float" else [float(v) for v in value] if spec.kind == "pair" else value
        elif spec.default is REQUIRED:
            raise ConfigError(f"{path}: missing required key '{key}'", path=key)
        else:
            values[key] = spec.default
    return TomlInput(path, kind, values, set(flat))
