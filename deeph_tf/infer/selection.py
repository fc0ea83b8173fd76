"""Which structures dtest evaluates: a split file's subset, then the first N.

One matching rule for block models (structure folders) and force fields (labelled frames):
a structure with id ``sid`` (its path below ``dft/``, e.g. ``water-000012`` or
``batch_0/water-000012``; for dpdata frames ``<system path>/<index>``) belongs to a subset
listing ``name`` when

* ``name == sid``, or
* ``name`` is the last path component of ``sid`` (the structure folder's name), or
* ``name`` starts with ``dft/`` and the rest is one of the above (ids written relative to
  the inputs folder instead of ``dft/``).

The structures keep their input order. Ids of the subset that match no structure are
logged (a warning naming the first few); a subset that matches none is an error.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import List, Optional, Sequence, Set, Tuple, TypeVar, Union

logger = logging.getLogger(__name__)

__all__ = ["select_by_split", "select_structures"]

PathLike = Union[str, "os.PathLike[str]"]
T = TypeVar("T")
DFT_PREFIX = "dft/"
#: Ids named in a message before "..."
_SHOWN = 5


def _wanted_ids(split_file: PathLike, subset: str) -> Set[str]:
    split = json.loads(Path(split_file).read_text())
    if subset not in split:
        raise ValueError(f"{split_file}: no subset {subset!r} (has {sorted(split)})")
    return {str(s) for s in split[subset]}


def _normalized(name: str) -> str:
    return name[len(DFT_PREFIX):] if name.startswith(DFT_PREFIX) else name


def _shown(names: Sequence[str]) -> str:
    listed = ", ".join(repr(n) for n in names[:_SHOWN])
    return listed + (f", ... ({len(names)} in all)" if len(names) > _SHOWN else "")


def select_by_split(items: Sequence[Tuple[str, T]], split_file: Optional[PathLike] = None, subset: str = "test",
                    numb_test: int = 0, where: str = "in the inputs") -> List[Tuple[str, T]]:
    """The (id, item) pairs of ``items`` in ``subset`` of ``split_file`` (all without one), first ``numb_test``.

    Args:
        items: (structure id, anything) in input order.
        split_file: a DeepH split JSON ``{"train": [ids], "validate": [...], "test": [...]}``, or None.
        subset: which list of the split file.
        numb_test: keep only the first this many (0 or less: all).
        where: where the items come from, for messages ("in PATH", "under PATH").

    Raises:
        ValueError: the subset is not in the file, or none of its ids matches (the module rule).
        FileNotFoundError: no such split file.
    """
    chosen = list(items)
    if split_file is not None:
        wanted = {_normalized(name) for name in _wanted_ids(split_file, subset)}
        chosen, matched = [], set()
        for sid, item in items:
            hits = {name for name in (sid, sid.rsplit("/", 1)[-1]) if name in wanted}
            if hits:
                chosen.append((sid, item))
                matched |= hits
        if not chosen:
            raise ValueError(f"{split_file}: none of the {len(wanted)} {subset!r} structures "
                             f"({_shown(sorted(wanted))}) is {where}")
        missing = sorted(wanted - matched)
        if missing:
            logger.warning("%s: %d of the %r structures are not %s: %s", split_file, len(missing), subset,
                           where, _shown(missing))
    return chosen[:numb_test] if numb_test and numb_test > 0 else chosen


def select_structures(inputs: PathLike, data_dir_depth: Optional[int] = 0, split_file: Optional[PathLike] = None,
                      subset: str = "test", numb_test: int = 0) -> List[Tuple[str, Path]]:
    """(id, folder) of the structure folders to test under ``inputs`` (see :func:`select_by_split`)."""
    from deeph_tf.data.discovery import find_structure_folders

    _, found = find_structure_folders(inputs, data_dir_depth)
    return select_by_split(found, split_file, subset, numb_test, where=f"under {inputs}")
