"""The training input: one JSON Schema drives validation, defaults, out.json and the docs.

``schemas/input.schema.json`` (at the repository root) is the single source of every key
of ``dtrain INPUT.json``: its type, its default, its documentation (``description``) and
a short statement of the accepted values (``x-expected``, used in error messages).
This module reads it and offers:

* :func:`normalize`: the DeePMD-kit ``normalize`` step. Comments (keys starting with
  ``_``) are dropped, unknown keys are reported DeePMD-style with the closest valid key::

      undefined key 'strat_lr' at learning_rate; did you mean start_lr?

  a section whose object forms are told apart by ``type`` (``learning_rate``: "exp",
  "reduce_on_plateau", "warmup_cosine") is checked against the form its ``type`` names
  (or the form whose ``type`` has a default); then defaults are filled and the result is
  validated; the first (most relevant) error names the path, the bad value and what was
  expected::

      training.training_data.batch_size: 'autox' is not valid: expected an integer >= 1,
      a list of integers, "auto" or "auto:N"

* :func:`load_input` / :func:`write_normalized`: read an input file, write out.json.
* :func:`schema_doc_markdown`: the key reference (docs/input.md, made by
  ``tools/gen_input_docs.py``).

The schema is found as ``Path(__file__).resolve().parents[1] / "schemas"``, i.e. in the
checkout: the package is installed editable (``pip install -e .``, as tools/setup_env.sh
does). No TensorFlow (nor NumPy) here: stdlib and jsonschema only, so the command-line
parsers stay light.
"""
from __future__ import annotations

import copy
import difflib
import functools
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import jsonschema
from jsonschema.exceptions import best_match

PathLike = Union[str, "os.PathLike[str]"]
#: One step of a path inside the input: a key (str) or a list index (int).
PathParts = Tuple[Union[str, int], ...]

#: Folder of the JSON Schemas (in the checkout; installs are editable).
SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"
#: The schema of the training input.
INPUT_SCHEMA_PATH = SCHEMA_DIR / "input.schema.json"

#: Shell letters accepted in ``common_orbital_types`` strings (l = 0..4).
_ORBITAL_LETTERS = "spdfg"

#: Chemical symbols Z = 1..118, for ``training.dataset.elements``.
_ELEMENT_SYMBOLS = frozenset(
    """H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge
    As Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm
    Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U
    Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og""".split()
)

#: One ``start:end:weight`` block of an ``auto_prob`` string.
_PROB_BLOCK = re.compile(r"^\s*([0-9]+)\s*:\s*([0-9]+)\s*:\s*(\S+)\s*$")


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


# --------------------------------------------------------------------------- schema


@functools.lru_cache(maxsize=None)
def _cached_schema() -> Dict[str, Any]:
    try:
        text = INPUT_SCHEMA_PATH.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{INPUT_SCHEMA_PATH}: input schema not found; deeph_tf reads it from the checkout, "
            "so install the package editable (pip install -e .)"
        ) from None
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def load_schema() -> Dict[str, Any]:
    """The training-input schema (a fresh copy of a cached parse; safe to modify)."""
    return copy.deepcopy(_cached_schema())


@functools.lru_cache(maxsize=None)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(_cached_schema())


def _resolve(node: Dict[str, Any], root: Dict[str, Any]) -> Dict[str, Any]:
    """``node`` with a local ``$ref`` ("#/$defs/x") merged in; the node's own keywords win."""
    ref = node.get("$ref")
    if ref is None:
        return node
    if not ref.startswith("#/"):
        raise ValueError(f"only local $ref are supported in the input schema, got {ref!r}")
    target: Any = root
    for part in ref[2:].split("/"):
        target = target[part]
    merged = dict(_resolve(target, root))
    merged.update({k: v for k, v in node.items() if k != "$ref"})
    return merged


def _types(node: Dict[str, Any]) -> List[str]:
    t = node.get("type", [])
    return [t] if isinstance(t, str) else list(t)


def _branches(node: Dict[str, Any], root: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [_resolve(b, root) for b in node.get("oneOf", []) + node.get("anyOf", [])]


def _object_forms(node: Dict[str, Any], root: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The object schemas with ``properties`` that a dict at ``node`` may follow."""
    if "properties" in node:
        return [node]
    return [b for b in _branches(node, root) if "properties" in b]


#: The key that names the form of a value when object forms are told apart by a tag.
_TAG = "type"


def _tag_node(form: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The ``type`` property of an object form when it is a ``const`` tag, else None."""
    node = form.get("properties", {}).get(_TAG)
    return node if isinstance(node, dict) and "const" in node else None


def _is_tagged(forms: Sequence[Dict[str, Any]]) -> bool:
    """Whether ``forms`` (two or more) are told apart by ``properties.type.const``."""
    return len(forms) > 1 and all(_tag_node(f) is not None for f in forms)


def _tagged_form(value: Dict[str, Any], forms: Sequence[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The form named by ``value["type"]`` or, with no ``type``, the form whose tag has a default."""
    for f in forms:
        tag = _tag_node(f)
        if (_TAG in value and type(value[_TAG]) is type(tag["const"]) and value[_TAG] == tag["const"]) or (
            _TAG not in value and "default" in tag
        ):
            return f
    return None


def _tag_expected(forms: Sequence[Dict[str, Any]]) -> str:
    """'"exp", "reduce_on_plateau" or "warmup_cosine"' for tagged forms."""
    names = [json.dumps(_tag_node(f)["const"]) for f in forms]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _pick_form(value: Dict[str, Any], forms: Sequence[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The single object form ``value`` follows, else None.

    Forms told apart by a tag (every form has ``properties.type.const``) are chosen by
    ``value["type"]``, or, when ``type`` is absent, the form whose ``type`` has a default.
    Other forms are chosen by fit: required keys present, no foreign keys.
    """
    if _is_tagged(forms):
        return _tagged_form(value, forms)
    fits = [
        f
        for f in forms
        if set(f.get("required", [])) <= value.keys()
        and (f.get("additionalProperties", True) is not False or value.keys() <= f["properties"].keys())
    ]
    return fits[0] if len(fits) == 1 else None


def _child(node: Dict[str, Any], value: Any, step: Union[str, int], root: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Schema of ``value[step]`` given the (resolved) schema ``node`` of ``value``."""
    if isinstance(step, int):
        if "items" in node:
            return _resolve(node["items"], root)
        for b in _branches(node, root):
            if "items" in b:
                return _resolve(b["items"], root)
        return None
    forms = _object_forms(node, root)
    form = _pick_form(value, forms) if isinstance(value, dict) else None
    for f in [form] if form is not None else forms:
        if step in f["properties"]:
            return _resolve(f["properties"][step], root)
    return None


def format_path(parts: Sequence[Union[str, int]]) -> str:
    """("training", "training_data", "systems", 1) -> "training.training_data.systems[1]"."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<root>"


# --------------------------------------------------------------------------- normalize


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
        forms = _object_forms(node, root)
        if not forms:
            return  # a free-form object (e.g. a section still to be specified)
        form = _pick_form(value, forms)
        if form is None and _is_tagged(forms):
            tag_path = path + (_TAG,)
            if _TAG in value:
                raise _invalid(tag_path, value[_TAG], _tag_expected(forms))
            where = format_path(path)
            raise ConfigError(f"{where}: missing required key '{_TAG}' (one of {_tag_expected(forms)})", path=where)
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
            child = _child(node, value, key, root)
            if child is not None:
                _check_unknown_keys(sub, child, root, path + (key,))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            child = _child(node, value, i, root)
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
        form = _pick_form(value, _object_forms(node, root))
        if form is None:
            return copy.deepcopy(value)
        out: Dict[str, Any] = {}
        for key, sub in form["properties"].items():
            sub = _resolve(sub, root)
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
            child = _child(node, value, i, root)
            out_list.append(copy.deepcopy(sub_value) if child is None else _fill_defaults(sub_value, child, root))
        return out_list
    return value


def _show(value: Any, limit: int = 120) -> str:
    """A value as quoted in messages: strings as 'text', everything else as JSON."""
    if isinstance(value, str):
        text = repr(value)
    else:
        try:
            text = json.dumps(value)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _invalid(parts: PathParts, value: Any, expected: str) -> ConfigError:
    where = format_path(parts)
    return ConfigError(f"{where}: {_show(value)} is not valid: expected {expected}", path=where)


def _value_at(config: Any, parts: PathParts) -> Any:
    for p in parts:
        config = config[p]
    return config


def _as_written(raw: Any, filled: Any, parts: PathParts) -> Any:
    """The value at ``parts`` as the user wrote it (before defaults), if it is there."""
    try:
        return _value_at(raw, parts)
    except (KeyError, IndexError, TypeError):
        return _value_at(filled, parts)


def _tagged_index(error: jsonschema.ValidationError, root: Dict[str, Any]) -> Optional[int]:
    """For a oneOf/anyOf error over tagged object forms: the index of the form the value names."""
    if error.validator not in ("oneOf", "anyOf") or not isinstance(error.instance, dict):
        return None
    forms = [_resolve(b, root) for b in error.validator_value]
    if not all("properties" in f for f in forms) or not _is_tagged(forms):
        return None
    form = _tagged_form(error.instance, forms)
    return None if form is None else forms.index(form)


def _best_error(
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


def _error_to_config_error(
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
        node = _child(node, value, step, root)
        if node is None:
            break
        value = value[step]
        if "x-expected" in node:
            best = (parts[: depth + 1], node["x-expected"])
    if best is None:
        where = format_path(parts)
        return ConfigError(f"{where}: {error.message}", path=where)
    return _invalid(best[0], _as_written(raw, config, best[0]), best[1])


def _systems_count(data: Dict[str, Any]) -> Optional[int]:
    systems = data.get("systems")
    return len(systems) if isinstance(systems, list) else None


def _check_cross_fields(config: Dict[str, Any], raw: Dict[str, Any]) -> None:
    """Rules a JSON Schema cannot state (sums, lengths, orderings); ``raw`` is for messages."""
    training = config["training"]
    for section in ("training_data", "validation_data"):
        data = training.get(section)
        if not isinstance(data, dict):
            continue
        base = ("training", section)
        n_sys = _systems_count(data)
        batch_size = data.get("batch_size")
        if isinstance(batch_size, list) and n_sys is not None and len(batch_size) != n_sys:
            raise _invalid(base + ("batch_size",), batch_size,
                           f"one batch size per system ({len(batch_size)} given for {n_sys} systems)")
        sys_probs = data.get("sys_probs")
        if isinstance(sys_probs, list):
            if n_sys is not None and len(sys_probs) != n_sys:
                raise _invalid(base + ("sys_probs",), sys_probs,
                               f"one probability per system ({len(sys_probs)} given for {n_sys} systems)")
            if not sum(sys_probs) > 0:
                raise _invalid(base + ("sys_probs",), sys_probs, "at least one probability > 0")
        auto_prob = data.get("auto_prob", "")
        if auto_prob.startswith("prob_sys_size") and ";" in auto_prob:
            blocks = [_PROB_BLOCK.match(b) for b in auto_prob.split(";")[1:]]
            for m in blocks:  # the schema's pattern guarantees every block matches
                start, end, weight = int(m.group(1)), int(m.group(2)), float(m.group(3))
                if start >= end or (n_sys is not None and end > n_sys) or not math.isfinite(weight):
                    limit = "" if n_sys is None else f" <= {n_sys} (the number of systems)"
                    raise _invalid(base + ("auto_prob",), auto_prob,
                                   f"blocks start:end:weight with start < end{limit}, got {m.group(0).strip()}")
            if not sum(float(m.group(3)) for m in blocks) > 0:
                raise _invalid(base + ("auto_prob",), auto_prob, "block weights with a sum > 0")

    dataset = training["dataset"]
    path = ("training", "dataset")
    cot = dataset.get("common_orbital_types")
    if isinstance(cot, str):
        letters = re.findall(r"([a-z])([0-9]+)", cot)
        ls = [_ORBITAL_LETTERS.index(letter) for letter, _ in letters]
        if ls != sorted(set(ls)) or any(int(count) < 1 for _, count in letters):
            raise _invalid(path + ("common_orbital_types",), cot,
                           "letters s, p, d, f, g in this order, each at most once, with counts >= 1, "
                           "like \"s3p2d1\"")
    elif isinstance(cot, list) and cot != sorted(cot):
        raise _invalid(path + ("common_orbital_types",), cot, "one l per shell in ascending order, like [0, 0, 1, 2]")
    elements = dataset.get("elements")
    if isinstance(elements, list):
        for i, symbol in enumerate(elements):
            if symbol not in _ELEMENT_SYMBOLS:
                raise _invalid(path + ("elements", i), symbol, "a chemical element symbol such as \"H\" or \"Fe\"")
    split = dataset.get("split")
    if isinstance(split, dict) and "train" in split:
        parts = [split["train"], split["validate"], split["test"]]
        if not all(isinstance(x, int) for x in parts):  # fractions
            total = sum(parts)
            if total > 1 + 1e-9:
                raise _invalid(path + ("split",), _as_written(raw, config, path + ("split",)),
                               f"fractions summing to at most 1 (they sum to {total:g}) or integer counts")

    _check_training_cross_fields(config)
    _check_target_cross_fields(config, raw)


def _check_target_cross_fields(config: Dict[str, Any], raw: Dict[str, Any]) -> None:
    """The loss and data formats that go with model.target (``ener`` is the force-field loss)."""
    target = config["model"]["target"]
    loss = config["loss"]
    written = isinstance(raw.get("loss"), dict) and "type" in raw["loss"]
    if target == "energy_force":
        if not written:
            loss["type"] = "ener"
        elif loss["type"] != "ener":
            raise _invalid(("loss", "type"), loss["type"], "\"ener\" for model.target \"energy_force\" (DeePMD's "
                           "energy/force loss)")
    elif loss["type"] == "ener":
        raise _invalid(("loss", "type"), "ener", f"\"mae\", \"mse\", \"huber\" or \"wmae\" for model.target "
                       f"{_show(target)} (\"ener\" is the loss of target \"energy_force\")")
    for section in ("training_data", "validation_data"):
        data = config["training"].get(section)
        fmt = data.get("fmt") if isinstance(data, dict) else None
        if fmt not in (None, "deeph") and target != "energy_force":
            raise _invalid(("training", section, "fmt"), fmt, f"null or \"deeph\" for model.target {_show(target)} "
                           "(other formats carry no Hamiltonian; they need target \"energy_force\")")


def _check_training_cross_fields(config: Dict[str, Any]) -> None:
    """Learning rates in order (stop/min at most start) and optimizer keys of the chosen type only."""
    lr = config["learning_rate"]
    lowest = "min_lr" if lr["type"] == "reduce_on_plateau" else "stop_lr"
    if lr[lowest] > lr["start_lr"]:
        raise _invalid(("learning_rate", lowest), lr[lowest],
                       f"a learning rate at most start_lr ({_show(lr['start_lr'])})")
    opt = config["optimizer"]
    for key, owner in (("weight_decay", "adamw"), ("momentum", "sgd")):
        if opt[key] != 0 and opt["type"] != owner:
            raise _invalid(("optimizer", key), opt[key],
                           f"0 with optimizer type {_show(opt['type'])} ({key} is used by type \"{owner}\" only)")


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
    root = _cached_schema()
    if not isinstance(config, dict):
        raise ConfigError(f"<root>: expected a JSON object, got {type(config).__name__}", path="<root>")
    raw = strip_comments(config)
    _check_unknown_keys(raw, root, root, ())
    config = _fill_defaults(raw, root, root)
    error = _best_error(_validator().iter_errors(config), root)
    if error is not None:
        raise _error_to_config_error(error, config, raw, root)
    _check_cross_fields(config, raw)
    return config


# --------------------------------------------------------------------------- files


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

    Raises:
        FileNotFoundError: no such file.
        ConfigError: a JSON syntax error (``input.json:12:5: invalid JSON: Expecting ',' delimiter``),
            a duplicate key or NaN/Infinity (with the file name), or any problem of :func:`normalize`.
    """
    path = os.fspath(path)
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


# --------------------------------------------------------------------------- docs


def _type_text(node: Dict[str, Any], root: Dict[str, Any]) -> str:
    if "enum" in node:
        return " | ".join(_show(v) if not isinstance(v, str) else f'"{v}"' for v in node["enum"])
    if "const" in node:
        return json.dumps(node["const"])
    names = []
    for t in _types(node):
        if t == "array" and "items" in node:
            item = _resolve(node["items"], root)
            inner = "enum" if "enum" in item else "|".join(_types(item)) or "any"
            names.append(f"array of {inner}")
        else:
            names.append(t)
    for b in _branches(node, root):
        text = _type_text(b, root)
        if text not in names:
            names.append(text)
    return " | ".join(names) or "any"


def _walk_keys(root: Dict[str, Any]) -> Iterator[Tuple[str, Dict[str, Any], bool, Optional[Dict[str, Any]]]]:
    """(path, resolved node, required, tagged form or None) for every key, depth first."""

    def walk(node: Dict[str, Any], prefix: str):
        forms = _object_forms(node, root)
        tagged = _is_tagged(forms)
        for form in forms:
            required = set(form.get("required", []))
            for key, sub in form["properties"].items():
                sub = _resolve(sub, root)
                path = f"{prefix}.{key}" if prefix else key
                yield path, sub, key in required, form if tagged else None
                yield from walk(sub, path)

    yield from walk(root, "")


def iter_schema_keys(schema: Optional[Dict[str, Any]] = None) -> Iterator[Tuple[str, Dict[str, Any], bool]]:
    """Every key of the schema, depth first in schema order: (path, resolved node, required).

    Keys of the object forms inside ``oneOf``/``anyOf`` are listed under the same path
    (``training.dataset.split.train``, ``training.dataset.split.file``); keys shared by
    several tagged forms (``learning_rate.start_lr``) are listed once per form.
    """
    root = _cached_schema() if schema is None else schema
    for path, node, required, _ in _walk_keys(root):
        yield path, node, required


def schema_doc_markdown() -> str:
    """Markdown reference of every input key (path, type, default, accepted values, description).

    The keys of forms told apart by ``type`` (learning_rate) are grouped per type, each group
    introduced by the form's description, and their headings name the type.
    """
    root = _cached_schema()
    lines = [
        "# Training input reference (`dtrain INPUT.json`)",
        "",
        "<!-- Generated by tools/gen_input_docs.py from schemas/input.schema.json; do not edit. -->",
        "",
        root["description"],
        "",
        "Paths are written with dots: `training.training_data.batch_size` is the key `batch_size` of",
        "the object `training_data` inside `training`. A key with a default may be left out; the",
        "normalized input written to out.json has every default filled in.",
        "",
    ]
    current_form: Optional[Dict[str, Any]] = None
    for path, node, required, form in _walk_keys(root):
        depth = path.count(".")
        heading = f"`{path}`"
        if form is not None:
            tag = _tag_node(form)
            label = f'`"{_TAG}": {json.dumps(tag["const"])}`'
            heading += f" ({label})"
            if form is not current_form:
                parent = path.rsplit(".", 1)[0]
                default = " (the default)" if "default" in tag else ""
                lines.append(f"**`{parent}` with {label}**{default}: {form.get('description', '')}")
                lines.append("")
            current_form = form
        lines.append(f"{'#' * min(2 + depth, 6)} {heading}")
        lines.append("")
        facts = [f"type: {_type_text(node, root)}"]
        if required:
            facts.append("required")
        elif "default" in node:
            facts.append(f"default: `{json.dumps(node['default'])}`")
        else:
            facts.append("optional")
        lines.append("- " + "; ".join(facts))
        if "x-expected" in node:
            lines.append(f"- accepted: {node['x-expected']}")
        lines.append("")
        lines.append(node.get("description", ""))
        lines.append("")
    return "\n".join(lines)
