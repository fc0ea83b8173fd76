"""DeePMD-kit's ``normalize``: comments dropped, unknown keys reported, defaults filled, input validated."""
from __future__ import annotations

import copy
import difflib
from typing import Any, Dict, List

from deeph_tf.config.cross_fields import check_cross_fields
from deeph_tf.config.errors import ConfigError, PathParts, format_path, invalid
from deeph_tf.config.forms import TAG, child_schema, is_tagged, object_forms, pick_form, resolve, tag_expected
from deeph_tf.config.schema import cached_schema, validator
from deeph_tf.config.schema_errors import best_error, to_config_error


def strip_comments(obj: Any) -> Any:
    """A copy of ``obj`` without the keys starting with ``_`` (comments), at any depth."""
    if isinstance(obj, dict):
        return {k: strip_comments(v) for k, v in obj.items() if not (isinstance(k, str) and k.startswith("_"))}
    if isinstance(obj, list):
        return [strip_comments(v) for v in obj]
    return obj


def _check_unknown_keys(value: Any, node: Dict[str, Any], root: Dict[str, Any], path: PathParts) -> None:
    """Raise on the first key (document order, depth first) that the schema does not define."""
    if isinstance(value, dict):
        forms = object_forms(node, root)
        if not forms:
            return  # a free-form object (e.g. a section still to be specified)
        form = pick_form(value, forms)
        if form is None and is_tagged(forms):
            tag_path = path + (TAG,)
            if TAG in value:
                raise invalid(tag_path, value[TAG], tag_expected(forms))
            where = format_path(path)
            raise ConfigError(f"{where}: missing required key '{TAG}' (one of {tag_expected(forms)})", path=where)
        candidates = [form] if form is not None else forms
        closed = all(f.get("additionalProperties", True) is False for f in candidates)
        allowed: List[str] = []
        for f in candidates:
            allowed += [k for k in f["properties"] if k not in allowed]
        for key, sub in value.items():
            if closed and key not in allowed:
                where = format_path(path)
                message = f"undefined key '{key}' at {where}"
                close = difflib.get_close_matches(key, allowed, n=1)
                if close:
                    message += f"; did you mean {close[0]}?"
                raise ConfigError(message, path=format_path(path + (key,)))
            child = child_schema(node, value, key, root)
            if child is not None:
                _check_unknown_keys(sub, child, root, path + (key,))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            child = child_schema(node, value, i, root)
            if child is not None:
                _check_unknown_keys(sub, child, root, path + (i,))


def _fill_defaults(value: Any, node: Dict[str, Any], root: Dict[str, Any]) -> Any:
    """A copy of ``value`` with absent keys set to their defaults, keys in schema order.

    A default that is an object is filled in turn (``"dataset": {}`` gets every dataset
    default). For a ``oneOf``/``anyOf`` of object forms, defaults come from the one form
    the value fits (required keys present, no foreign keys); none are added when it fits
    none or several (validation then reports the problem).
    """
    if isinstance(value, dict):
        form = pick_form(value, object_forms(node, root))
        if form is None:
            return copy.deepcopy(value)
        out: Dict[str, Any] = {}
        for key, sub in form["properties"].items():
            sub = resolve(sub, root)
            if key in value:
                out[key] = _fill_defaults(value[key], sub, root)
            elif "default" in sub:
                out[key] = _fill_defaults(copy.deepcopy(sub["default"]), sub, root)
        for key, sub_value in value.items():  # free-form keys, if the form allows them
            if key not in out:
                out[key] = copy.deepcopy(sub_value)
        return out
    if isinstance(value, list):
        out_list = []
        for i, sub_value in enumerate(value):
            child = child_schema(node, value, i, root)
            out_list.append(copy.deepcopy(sub_value) if child is None else _fill_defaults(sub_value, child, root))
        return out_list
    return value


def normalize(config: Dict[str, Any]) -> Dict[str, Any]:
    """Validate a training input and fill its defaults (DeePMD-kit's ``normalize``).

    Steps: drop comments (keys starting with ``_``, any depth); report the first unknown
    key with the closest valid one; fill defaults; validate against the schema; check the
    cross-field rules (list lengths against systems, split fractions, orbital strings).
    Keys come out in schema order. ``normalize(normalize(c)) == normalize(c)``.

    Args:
        config: the parsed input JSON (not modified).

    Returns:
        a new dict: the normalized input, as written to out.json.

    Raises:
        ConfigError: naming the path of the problem, e.g.
            ``undefined key 'storgae' at training.dataset; did you mean storage?``.
    """
    root = cached_schema()
    if not isinstance(config, dict):
        raise ConfigError(f"<root>: expected a JSON object, got {type(config).__name__}", path="<root>")
    raw = strip_comments(config)
    _check_unknown_keys(raw, root, root, ())
    config = _fill_defaults(raw, root, root)
    error = best_error(validator().iter_errors(config), root)
    if error is not None:
        raise to_config_error(error, config, raw, root)
    check_cross_fields(config, raw)
    return config
