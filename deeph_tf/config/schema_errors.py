"""jsonschema's validation errors -> one :class:`ConfigError` naming path, value and what is expected."""
from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional, Tuple

import jsonschema
from jsonschema.exceptions import best_match

from deeph_tf.config.errors import ConfigError, PathParts, as_written, format_path, invalid
from deeph_tf.config.forms import child_schema, is_tagged, resolve, tagged_form


def _tagged_index(error: jsonschema.ValidationError, root: Dict[str, Any]) -> Optional[int]:
    """For a oneOf/anyOf error over tagged object forms: the index of the form the value names."""
    if error.validator not in ("oneOf", "anyOf") or not isinstance(error.instance, dict):
        return None
    forms = [resolve(b, root) for b in error.validator_value]
    if not all("properties" in f for f in forms) or not is_tagged(forms):
        return None
    form = tagged_form(error.instance, forms)
    return None if form is None else forms.index(form)


def best_error(
    errors: Iterator[jsonschema.ValidationError], root: Dict[str, Any]
) -> Optional[jsonschema.ValidationError]:
    """jsonschema's best match, except that inside tagged forms only the named form's errors count.

    best_match would otherwise pick among every alternative (often "'exp' was expected" from a
    form the value does not claim to follow).
    """
    error = best_match(errors)
    handled: List[jsonschema.ValidationError] = []  # tagged alternatives already narrowed
    while error is not None:
        chain = [error]
        while chain[-1].parent is not None and all(chain[-1].parent is not h for h in handled):
            chain.append(chain[-1].parent)
        narrowed = None
        for ancestor in reversed(chain):  # outermost first
            index = _tagged_index(ancestor, root)
            if index is not None:
                own = [c for c in ancestor.context if c.relative_schema_path and c.relative_schema_path[0] == index]
                if own:
                    handled.append(ancestor)
                    narrowed = best_match(own)
                break
        if narrowed is None:
            return error
        error = narrowed
    return error


def to_config_error(
    error: jsonschema.ValidationError, config: Dict[str, Any], raw: Dict[str, Any], root: Dict[str, Any]
) -> ConfigError:
    """Turn jsonschema's best error into a message naming path, value and expectation."""
    # An error from inside a oneOf/anyOf about the very value that has the alternatives
    # says little (it only describes one alternative): report the alternatives instead.
    # (Not for tagged forms: there the error is about the form the value names.)
    e = error
    while e.parent is not None:
        if (
            e.parent.validator in ("oneOf", "anyOf")
            and _tagged_index(e.parent, root) is None
            and list(e.parent.absolute_path) == list(error.absolute_path)
        ):
            error = e.parent
        e = e.parent
    parts: PathParts = tuple(error.absolute_path)
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        where = format_path(parts)
        return ConfigError(f"{where}: missing required key '{missing[0]}'", path=where)
    # The deepest node on the path that states what it accepts.
    node: Optional[Dict[str, Any]] = root
    best: Optional[Tuple[PathParts, str]] = (parts[:0], root["x-expected"]) if "x-expected" in root else None
    value: Any = config
    for depth, step in enumerate(parts):
        node = child_schema(node, value, step, root)
        if node is None:
            break
        value = value[step]
        if "x-expected" in node:
            best = (parts[: depth + 1], node["x-expected"])
    if best is None:
        where = format_path(parts)
        return ConfigError(f"{where}: {error.message}", path=where)
    return invalid(best[0], as_written(raw, config, best[0]), best[1])
