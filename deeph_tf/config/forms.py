"""Walking the schema: local ``$ref``, ``oneOf``/``anyOf`` object forms, forms told apart by ``type``."""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence, Union


def resolve(node: Dict[str, Any], root: Dict[str, Any]) -> Dict[str, Any]:
    """``node`` with a local ``$ref`` ("#/$defs/x") merged in; the node's own keywords win."""
    ref = node.get("$ref")
    if ref is None:
        return node
    if not ref.startswith("#/"):
        raise ValueError(f"only local $ref are supported in the input schema, got {ref!r}")
    target: Any = root
    for part in ref[2:].split("/"):
        target = target[part]
    merged = dict(resolve(target, root))
    merged.update({k: v for k, v in node.items() if k != "$ref"})
    return merged


def type_names(node: Dict[str, Any]) -> List[str]:
    t = node.get("type", [])
    return [t] if isinstance(t, str) else list(t)


def branches(node: Dict[str, Any], root: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [resolve(b, root) for b in node.get("oneOf", []) + node.get("anyOf", [])]


def object_forms(node: Dict[str, Any], root: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The object schemas with ``properties`` that a dict at ``node`` may follow."""
    if "properties" in node:
        return [node]
    return [b for b in branches(node, root) if "properties" in b]


#: The key that names the form of a value when object forms are told apart by a tag.
TAG = "type"


def tag_node(form: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The ``type`` property of an object form when it is a ``const`` tag, else None."""
    node = form.get("properties", {}).get(TAG)
    return node if isinstance(node, dict) and "const" in node else None


def is_tagged(forms: Sequence[Dict[str, Any]]) -> bool:
    """Whether ``forms`` (two or more) are told apart by ``properties.type.const``."""
    return len(forms) > 1 and all(tag_node(f) is not None for f in forms)


def tagged_form(value: Dict[str, Any], forms: Sequence[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The form named by ``value["type"]`` or, with no ``type``, the form whose tag has a default."""
    for f in forms:
        tag = tag_node(f)
        if (TAG in value and type(value[TAG]) is type(tag["const"]) and value[TAG] == tag["const"]) or (
            TAG not in value and "default" in tag
        ):
            return f
    return None


def tag_expected(forms: Sequence[Dict[str, Any]]) -> str:
    """'"exp", "reduce_on_plateau" or "warmup_cosine"' for tagged forms."""
    names = [json.dumps(tag_node(f)["const"]) for f in forms]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def pick_form(value: Dict[str, Any], forms: Sequence[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The single object form ``value`` follows, else None.

    Forms told apart by a tag (every form has ``properties.type.const``) are chosen by
    ``value["type"]``, or, when ``type`` is absent, the form whose ``type`` has a default.
    Other forms are chosen by fit: required keys present, no foreign keys.
    """
    if is_tagged(forms):
        return tagged_form(value, forms)
    fits = [
        f
        for f in forms
        if set(f.get("required", [])) <= value.keys()
        and (f.get("additionalProperties", True) is not False or value.keys() <= f["properties"].keys())
    ]
    return fits[0] if len(fits) == 1 else None


def child_schema(node: Dict[str, Any], value: Any, step: Union[str, int], root: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Schema of ``value[step]`` given the (resolved) schema ``node`` of ``value``."""
    if isinstance(step, int):
        if "items" in node:
            return resolve(node["items"], root)
        for b in branches(node, root):
            if "items" in b:
                return resolve(b["items"], root)
        return None
    forms = object_forms(node, root)
    form = pick_form(value, forms) if isinstance(value, dict) else None
    for f in [form] if form is not None else forms:
        if step in f["properties"]:
            return resolve(f["properties"][step], root)
    return None
