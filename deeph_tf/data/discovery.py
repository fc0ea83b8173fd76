"""Finding structure folders: DeePMD-style ``systems`` and DeepH's ``dft/`` with data_dir_depth.

A *system* is one entry of ``training_data.systems``. It can be
- a structure folder (holds POSCAR and info.json);
- an ``inputs`` folder holding ``dft/``, or a ``dft/`` folder itself: structures sit exactly
  ``data_dir_depth`` levels below ``dft/`` (0: dft/<sid>, 2: dft/<a>/<b>/<sid>);
- any other folder: searched recursively, not descending into structure folders.
A structure's id is its path relative to the system root (``dft/`` or the folder), with '/'.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

from deeph_tf.data.structure import is_structure_folder

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class System:
    """One entry of ``systems``: its root folder and its structure folders, sorted by id."""

    index: int
    root: Path
    structures: Tuple[Tuple[str, Path], ...]  # (structure id, folder)


def _dft_root(path: Path) -> Optional[Path]:
    if path.name == "dft" and path.is_dir():
        return path
    if (path / "dft").is_dir():
        return path / "dft"
    return None


def find_structure_folders(path: PathLike, data_dir_depth: Optional[int] = 0) -> Tuple[Path, List[Tuple[str, Path]]]:
    """(root, [(structure id, folder), ...]) for one system path, sorted by id.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: no structure folder found (the message says where it looked).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"system {path} does not exist")
    if is_structure_folder(path):
        return path.parent, [(path.name, path)]
    dft = _dft_root(path)
    found: List[Tuple[str, Path]] = []
    if dft is not None and data_dir_depth is not None:
        pattern = "/".join(["*"] * (data_dir_depth + 1))
        found = [
            (p.relative_to(dft).as_posix(), p) for p in dft.glob(pattern) if p.is_dir() and is_structure_folder(p)
        ]
        root, where = dft, f"exactly {data_dir_depth} level(s) below {dft}"
    else:
        root = dft or path
        for current, dirs, _ in os.walk(root):
            current_path = Path(current)
            if is_structure_folder(current_path):
                found.append((current_path.relative_to(root).as_posix(), current_path))
                dirs[:] = []
            else:
                dirs.sort()
        where = f"anywhere below {root}"
    if not found:
        raise ValueError(f"system {path}: no structure folder (POSCAR + info.json) found {where}")
    return root, sorted(found)


def discover_systems(paths: Union[PathLike, Sequence[PathLike]], data_dir_depth: Optional[int] = 0) -> List[System]:
    """Systems for a ``systems`` entry: a list of paths, or one directory searched recursively.

    A single string that is neither a structure folder nor a dft/inputs folder is searched
    recursively and each folder found becomes its own structure of ONE system, as DeePMD's
    ``systems: "dir"`` does.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    systems = []
    for index, path in enumerate(paths):
        root, structures = find_structure_folders(path, data_dir_depth)
        systems.append(System(index=index, root=root, structures=tuple(structures)))
    ids = {}
    for system in systems:
        for sid, folder in system.structures:
            if sid in ids and ids[sid] != folder:
                raise ValueError(
                    f"structure id {sid!r} appears twice ({ids[sid]} and {folder}); ids (paths relative to "
                    "dft/ or the system folder) must be unique across systems"
                )
            ids[sid] = folder
    return systems
