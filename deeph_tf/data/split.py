"""Dataset split into train / validate / test, by sizes or from a split JSON.

Sizes: ``{"train": 0.8, "validate": 0.1, "test": 0.1, "seed": 0}``: integer counts when
all three are integers, else fractions (summing to at most 1); structures are shuffled
with the seed first. Relative split-file paths are relative to the working directory. File:
``{"file": "split.json"}`` holding ``{"train": [ids], "validate": [ids], "test": [ids]}``
(DeepH's format). The split used is written back as such a file.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from deeph_tf.atomic_io import atomic_write_text

SUBSETS = ("train", "validate", "test")


def make_split(structure_ids: Sequence[str], spec: Optional[Mapping], base_dir: Optional[Path] = None) -> Dict[str, List[str]]:
    """Assign every id to at most one subset.

    Args:
        structure_ids: all available ids.
        spec: None (everything is "train"), sizes, or {"file": path} (relative to base_dir).
    Raises:
        ValueError: sizes that exceed the data, unknown or repeated ids in a split file.
    """
    ids = sorted(structure_ids)
    if spec is None:
        return {"train": ids, "validate": [], "test": []}
    if "file" in spec:
        path = Path(spec["file"])
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"split file {path}: cannot read it ({error})") from None
        unknown_keys = set(data) - set(SUBSETS)
        if unknown_keys:
            raise ValueError(f"split file {path}: unknown keys {sorted(unknown_keys)}; expected {list(SUBSETS)}")
        split = {name: [str(i) for i in data.get(name, [])] for name in SUBSETS}
        known, seen = set(ids), {}
        for name, members in split.items():
            for sid in members:
                if sid not in known:
                    raise ValueError(f"split file {path}: {name} lists {sid!r}, which is not among the structures found")
                if sid in seen:
                    raise ValueError(f"split file {path}: {sid!r} is in both {seen[sid]} and {name}")
                seen[sid] = name
        return split
    sizes = {name: spec.get(name, 0) for name in SUBSETS}
    n = len(ids)
    as_counts = all(isinstance(v, int) and not isinstance(v, bool) for v in sizes.values())
    if as_counts:  # all three JSON integers: counts (the schema's rule)
        counts = {name: int(v) for name, v in sizes.items()}
    else:  # fractions of the structures found
        if sum(sizes.values()) > 1 + 1e-9:
            raise ValueError(f"split fractions {sizes} sum to more than 1")
        counts = {name: int(math.floor(float(frac) * n + 1e-9)) for name, frac in sizes.items()}
        if sum(sizes.values()) > 1 - 1e-9:
            counts["train"] = n - counts["validate"] - counts["test"]  # fractions summing to 1 use all data
    if sum(counts.values()) > n:
        raise ValueError(f"split sizes {counts} need {sum(counts.values())} structures but only {n} were found")
    order = np.random.default_rng(spec.get("seed", 0)).permutation(n)
    shuffled = [ids[k] for k in order]
    out, start = {}, 0
    for name in SUBSETS:
        out[name] = sorted(shuffled[start : start + counts[name]])
        start += counts[name]
    return out


def write_split(split: Mapping[str, Sequence[str]], path: Path) -> None:
    """Write ``{"train": [...], "validate": [...], "test": [...]}`` atomically."""
    atomic_write_text(Path(path), json.dumps({name: list(split.get(name, [])) for name in SUBSETS}, indent=1) + "\n")
