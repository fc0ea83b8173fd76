"""Helpers of the DeepH-pack TOML tests: the reference files and editing their keys as text."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Dict

from conftest import REPO_ROOT

TOMLS = REPO_ROOT / "tests" / "fixtures" / "deeph_pack"
MOLECULES = REPO_ROOT / "tests" / "fixtures" / "mixed_molecules" / "dft"


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value) if not isinstance(value, list) else "[" + ", ".join(toml_value(v) for v in value) + "]"


def set_keys(text: str, values: Dict[str, Any]) -> str:
    """``text`` with each dotted key's line set to its value (added at the end of its table if absent;
    None removes the line)."""
    lines = text.splitlines()
    for dotted, value in values.items():
        section, _, key = dotted.rpartition(".")
        current, found, end = "", None, None
        for i, line in enumerate(lines):
            header = re.match(r"^\[(.+)\]\s*$", line)
            if header:
                current = header.group(1)
            elif current == section and re.match(rf"^{re.escape(key)}\s*=", line):
                found = i
            if current == section and line.strip():
                end = i
        if found is not None:
            if value is None:
                del lines[found]
            else:
                lines[found] = f"{key} = {toml_value(value)}"
        elif value is not None:
            if end is None:
                lines += [f"[{section}]", f"{key} = {toml_value(value)}"]
            else:
                lines.insert(end + 1, f"{key} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def write_toml(folder: Path, name: str, values: Dict[str, Any] = None, source: str = None) -> Path:
    """``folder/name``: the reference TOML ``source`` (default: ``name``) with ``values`` set."""
    text = (TOMLS / (source or name)).read_text()
    path = folder / name
    path.write_text(set_keys(text, values or {}))
    return path


def link_inputs(folder: Path) -> None:
    """``folder/inputs/dft`` -> the 8 molecules (graphs then go to ``folder/inputs/graph/``)."""
    (folder / "inputs").mkdir(exist_ok=True)
    if not (folder / "inputs" / "dft").exists():
        os.symlink(MOLECULES, folder / "inputs" / "dft")
