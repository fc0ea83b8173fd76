"""Training checkpoints: one HDF5 file per save, written atomically, with a pointer to the latest.

A checkpoint ``<save_ckpt>-<step>.h5`` (DeePMD's ``model.ckpt-<step>``) holds everything a
run needs to continue or to be frozen:

- ``model/<k>``: the model's variables, in ``model.weights`` order (attr ``path``);
- ``optimizer/<k>``: the optimizer's variables (slots, iteration count), in order;
- attrs: ``step``, and JSON strings ``model_config`` (``HamiltonianModel.get_config()``),
  ``layout`` (the orbital layout), ``input`` (the normalized input), ``schedule`` (the
  learning-rate schedule's state), ``extra`` (best loss, ...), ``version``.

Saving writes a temporary file in the same folder and renames it into place, then
rewrites the text file ``checkpoint`` (``latest``/``best``/kept files, JSON) the same way
and points the stable names ``<save_ckpt>.h5`` (latest) and ``<save_ckpt>-best.h5`` at the
files; a kill at any moment leaves the previous checkpoint intact and readable.
"""
from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import h5py
import numpy as np

from deeph_tf._version import __version__
from deeph_tf.atomic_io import atomic_path, atomic_write_text

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
#: Name of the pointer file in a checkpoint folder.
POINTER_NAME = "checkpoint"
SUFFIX = ".h5"
_FORMAT = "deeph_tf-checkpoint-1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be found or read, with the path and the reason."""


@dataclass
class Checkpoint:
    """The content of one checkpoint file (arrays as NumPy)."""

    step: int
    model_config: Dict[str, Any]
    layout: Dict[str, Any]
    model_weights: List[np.ndarray]
    optimizer_variables: List[np.ndarray] = field(default_factory=list)
    input: Dict[str, Any] = field(default_factory=dict)
    schedule: Dict[str, Any] = field(default_factory=dict)
    extra: Dict[str, Any] = field(default_factory=dict)
    version: str = __version__
    path: Optional[Path] = None


def write_checkpoint(path: PathLike, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (temporary file + rename)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            handle.attrs["format"] = _FORMAT
            handle.attrs["step"] = int(checkpoint.step)
            handle.attrs["version"] = checkpoint.version
            for name in ("model_config", "layout", "input", "schedule", "extra"):
                handle.attrs[name] = json.dumps(getattr(checkpoint, name))
            for group_name, arrays in (("model", checkpoint.model_weights), ("optimizer", checkpoint.optimizer_variables)):
                group = handle.create_group(group_name)
                group.attrs["count"] = len(arrays)
                for k, value in enumerate(arrays):
                    group.create_dataset(f"{k:05d}", data=np.asarray(value))
    return path


def read_checkpoint(path: PathLike) -> Checkpoint:
    """Read a checkpoint file (see :func:`resolve_checkpoint` for folders and prefixes)."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as handle:
            if handle.attrs.get("format") != _FORMAT:
                raise CheckpointError(f"{path}: not a deeph_tf checkpoint (format attribute is {handle.attrs.get('format')!r})")
            arrays = {}
            for group_name in ("model", "optimizer"):
                group = handle[group_name]
                arrays[group_name] = [np.asarray(group[f"{k:05d}"]) for k in range(int(group.attrs["count"]))]
            meta = {name: json.loads(handle.attrs[name]) for name in ("model_config", "layout", "input", "schedule", "extra")}
            step, version = int(handle.attrs["step"]), str(handle.attrs["version"])
    except (OSError, KeyError) as error:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({error})") from error
    return Checkpoint(step=step, model_weights=arrays["model"], optimizer_variables=arrays["optimizer"],
                      version=version, path=path, **meta)


def resolve_checkpoint(spec: PathLike) -> Path:
    """The checkpoint file named by ``spec``, DeePMD style.

    Accepts a file (``model.ckpt-1000.h5``), a prefix with a step (``model.ckpt-1000``),
    the stable prefix (``model.ckpt``: the latest), or a folder (its latest, from the
    ``checkpoint`` pointer file).
    """
    spec = Path(spec)
    if spec.is_dir():
        pointer = spec / POINTER_NAME
        if not pointer.is_file():
            raise CheckpointError(f"{spec}: a folder without a '{POINTER_NAME}' file; pass a checkpoint file or prefix")
        return spec / _read_pointer(pointer)["latest"]
    for candidate in (spec, spec.with_name(spec.name + SUFFIX)):
        if candidate.is_file():
            return candidate.resolve() if candidate.is_symlink() else candidate
    pointer = spec.parent / POINTER_NAME
    if pointer.is_file():
        latest = _read_pointer(pointer).get("latest")
        if latest and latest.startswith(spec.name):
            return spec.parent / latest
    raise CheckpointError(f"{spec}: no such checkpoint (tried {spec}, {spec}{SUFFIX} and {pointer})")


def _read_pointer(pointer: Path) -> dict:
    try:
        return json.loads(pointer.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{pointer}: unreadable checkpoint pointer ({error})") from error


def _link(target_name: str, link: Path) -> None:
    """Point ``link`` at ``target_name`` (same folder) atomically; a copy where links fail."""
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(target_name, tmp)
    except OSError:  # file systems without symlinks
        import shutil

        shutil.copyfile(link.parent / target_name, tmp)
    os.replace(tmp, link)


class CheckpointManager:
    """Saves ``<prefix>-<step>.h5``, keeps the newest ``max_to_keep``, tracks the best.

    Args:
        prefix: e.g. "model.ckpt" (relative to the working directory) or "ckpt/model.ckpt".
        max_to_keep: checkpoints kept besides the best one (DeePMD's max_ckpt_keep).
    """

    def __init__(self, prefix: PathLike, max_to_keep: int = 5):
        self.prefix = Path(prefix)
        self.folder = self.prefix.parent
        self.max_to_keep = max(1, int(max_to_keep))
        self.pointer = self.folder / POINTER_NAME
        state = _read_pointer(self.pointer) if self.pointer.is_file() else {}
        self.kept: List[str] = [name for name in state.get("kept", []) if (self.folder / name).is_file()]
        self.best: Optional[str] = state.get("best")

    def step_path(self, step: int) -> Path:
        return self.folder / f"{self.prefix.name}-{int(step)}{SUFFIX}"

    @property
    def best_path(self) -> Path:
        return self.folder / f"{self.prefix.name}-best{SUFFIX}"

    @property
    def latest_path(self) -> Optional[Path]:
        return self.folder / self.kept[-1] if self.kept else None

    def save(self, checkpoint: Checkpoint) -> Path:
        """Write the step's file, then the pointer and the stable name; prune old files."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = write_checkpoint(self.step_path(checkpoint.step), checkpoint)
        self.kept = [name for name in self.kept if name != path.name] + [path.name]
        stale, self.kept = self.kept[: -self.max_to_keep], self.kept[-self.max_to_keep :]
        self._write_pointer()
        _link(path.name, self.folder / f"{self.prefix.name}{SUFFIX}")
        for name in stale:
            try:
                (self.folder / name).unlink()
            except FileNotFoundError:
                pass
        return path

    def save_best(self, checkpoint: Checkpoint) -> Path:
        """Write the best model so far (not rotated away)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = write_checkpoint(self.best_path, checkpoint)
        self.best = path.name
        self._write_pointer()
        return path

    def _write_pointer(self) -> None:
        atomic_write_text(
            self.pointer,
            json.dumps({"latest": self.kept[-1] if self.kept else None, "kept": self.kept, "best": self.best}, indent=1) + "\n",
        )

    def prune_after(self, step: int) -> None:
        """Forget kept checkpoints later than ``step`` (a restart from an older one)."""
        pattern = re.compile(re.escape(self.prefix.name) + r"-(\d+)" + re.escape(SUFFIX) + "$")
        self.kept = [name for name in self.kept if not (pattern.match(name) and int(pattern.match(name).group(1)) > step)]


def variable_values(variables: Sequence) -> List[np.ndarray]:
    """NumPy copies of (Keras or TF) variables."""
    return [np.array(v.numpy() if hasattr(v, "numpy") else v) for v in variables]


def assign_values(variables: Sequence, values: Sequence[np.ndarray], what: str, source: PathLike) -> None:
    """Assign ``values`` to ``variables`` in order, checking count and shapes."""
    if len(variables) != len(values):
        raise CheckpointError(f"{source}: {what} has {len(values)} arrays, the model expects {len(variables)}")
    for variable, value in zip(variables, values):
        if tuple(variable.shape) != tuple(np.shape(value)):
            name = getattr(variable, "path", getattr(variable, "name", "?"))
            raise CheckpointError(f"{source}: {what} variable {name} has shape {np.shape(value)}, expected {tuple(variable.shape)}")
    for variable, value in zip(variables, values):
        variable.assign(np.asarray(value, dtype=np.dtype(getattr(variable.dtype, "name", variable.dtype))))


def best_checkpoint(folder: PathLike) -> Path:
    """The best model recorded in ``folder``'s ``checkpoint`` pointer (saved at display steps with a lower loss)."""
    folder = Path(folder)
    pointer = folder / POINTER_NAME
    name = _read_pointer(pointer).get("best") if pointer.is_file() else None
    if not name:
        raise CheckpointError(f"{folder}: no best model recorded (it is saved at display steps with a lower loss)")
    return folder / name
