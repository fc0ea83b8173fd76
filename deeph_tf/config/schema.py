"""The training-input JSON Schema, shipped inside the package (``deeph_tf/schemas/``).

Read with :mod:`importlib.resources`, so it is found in a wheel install as in an editable one.
"""
from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from typing import Any, Dict

import jsonschema

#: Folder of the JSON Schemas (package data of ``deeph_tf``).
SCHEMA_DIR = resources.files("deeph_tf") / "schemas"
#: The schema of the training input.
INPUT_SCHEMA_PATH = SCHEMA_DIR / "input.schema.json"


@functools.lru_cache(maxsize=None)
def cached_schema() -> Dict[str, Any]:
    """The parsed, checked schema (shared; do not modify, see :func:`load_schema`)."""
    try:
        text = INPUT_SCHEMA_PATH.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{INPUT_SCHEMA_PATH}: input schema not found; it is package data of deeph_tf "
            "(deeph_tf/schemas/), so this install is incomplete"
        ) from None
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def load_schema() -> Dict[str, Any]:
    """The training-input schema (a fresh copy of a cached parse; safe to modify)."""
    return copy.deepcopy(cached_schema())


@functools.lru_cache(maxsize=None)
def validator() -> jsonschema.Draft202012Validator:
    """A validator of the training-input schema (cached)."""
    return jsonschema.Draft202012Validator(cached_schema())
