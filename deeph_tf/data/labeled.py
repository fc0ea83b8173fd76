"""Labelled frames (structure + total energy, forces, virial) for force-field training.

:func:`read_labeled_frames` turns a path into ``[(structure id, LabeledFrame), ...]``:

- DeepH data (``fmt="deeph"``, guessed for a structure folder or POSCAR, a ``dft/`` or
  inputs folder, or any folder tree holding structure folders): one frame per structure
  folder (POSCAR + info.json) found by :func:`~deeph_tf.data.discovery.find_structure_folders`,
  id = its path relative to ``dft/`` (or the folder); labels from its ``force.h5``
  (:mod:`~deeph_tf.data.force_h5`).
- anything dpdata reads (``"deepmd/npy"``, ``"deepmd/hdf5"``, ``"vasp/outcar"``,
  ``"extxyz"``, ...; guessed as in :mod:`~deeph_tf.data.atoms_input`): one frame per dpdata
  frame, ids ``"000000"``, ``"000001"``, ...; an HDF5 file holding several deepmd systems
  (one per group) gives ids ``"<group>/000000"`` (group without the leading '/').

DeepH frames are periodic (pbc True on all axes) with the POSCAR lattice. dpdata
frames flagged ``nopbc`` get ``pbc = (False, False, False)`` and, when their cell is
singular (deepmd/npy stores zeros), the vacuum box of
:data:`~deeph_tf.data.atoms_input.MOLECULE_VACUUM`. Units are dpdata's: energies eV,
forces eV/Angstrom, virials eV (virial = -dE/d(strain), DeePMD convention).

:func:`write_deepmd_npy` writes labelled frames as deepmd/npy systems (one per species
sequence), e.g. to train DeePMD-kit on the same data, and :func:`frame_from_atoms` wraps an
unlabelled :class:`~deeph_tf.data.atoms_input.AtomsInput`.
"""
from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from deeph_tf.data.atoms_input import (DEEPH_FORMAT, AtomsInput, _check_fmt, _hdf5_system_groups,
                                       guess_format)
from deeph_tf.data.atoms_input import _frames_from_system as atoms_frames_from_system
from deeph_tf.data.discovery import find_structure_folders
from deeph_tf.data.errors import DataFormatError
from deeph_tf.data.force_h5 import FORCE_FILENAME, read_force_h5
from deeph_tf.data.poscar import read_poscar
from deeph_tf.data.structure import POSCAR_FILENAME

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
#: Label keys of a dpdata System's data (dpdata's names, plural; not the graph fields of
#: :mod:`deeph_tf.data.keys`): energies [n_frames] eV, forces [n_frames, n_atoms, 3] eV/Angstrom,
#: virials [n_frames, 3, 3] eV.
DPDATA_ENERGIES, DPDATA_FORCES, DPDATA_VIRIALS = "energies", "forces", "virials"


@dataclass(frozen=True, eq=False)
class LabeledFrame:
    """One structure with (optional) energy/force/virial labels.

    Attributes:
        name: where it came from (the structure folder, ``<path>#<frame>`` for dpdata frames).
        species: element symbol of each atom (length n_atoms).
        positions: [n_atoms, 3] float64, Cartesian, Angstrom (read-only).
        lattice: [3, 3] float64, Angstrom, rows are the lattice vectors (read-only).
        pbc: periodicity along each lattice vector.
        energy: total energy, eV, or None.
        forces: [n_atoms, 3] float64, eV/Angstrom, or None (read-only).
        virial: [3, 3] float64, eV (virial = -dE/d(strain)), or None (read-only).
    """

    name: str
    species: List[str]
    positions: np.ndarray
    lattice: np.ndarray
    pbc: Tuple[bool, bool, bool] = (True, True, True)
    energy: Optional[float] = None
    forces: Optional[np.ndarray] = None
    virial: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        atoms = AtomsInput(name=self.name, species=self.species, positions=self.positions,
                           lattice=self.lattice, pbc=self.pbc)  # validates and freezes the structure
        for key in ("name", "species", "positions", "lattice", "pbc"):
            object.__setattr__(self, key, getattr(atoms, key))
        if self.energy is not None:
            try:
                energy = float(np.asarray(self.energy, dtype=np.float64).reshape(()))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{self.name}: energy must be one number (eV), got {self.energy!r}") from exc
            if not math.isfinite(energy):
                raise ValueError(f"{self.name}: non-finite energy {energy}")
            object.__setattr__(self, "energy", energy)
        for key, shape in (("forces", (atoms.n_atoms, 3)), ("virial", (3, 3))):
            value = getattr(self, key)
            if value is None:
                continue
            arr = np.array(value, dtype=np.float64)
            if arr.shape != shape:
                raise ValueError(f"{self.name}: {key} must be {list(shape)}, got {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{self.name}: non-finite {key}")
            arr.flags.writeable = False
            object.__setattr__(self, key, arr)

    @property
    def n_atoms(self) -> int:
        return len(self.species)

    @property
    def has_labels(self) -> bool:
        """True when both the energy and the forces are present."""
        return self.energy is not None and self.forces is not None

    def to_atoms(self) -> AtomsInput:
        """The structure without labels."""
        return AtomsInput(name=self.name, species=self.species, positions=self.positions,
                          lattice=self.lattice, pbc=self.pbc)


def frame_from_atoms(atoms: AtomsInput) -> LabeledFrame:
    """An unlabelled :class:`LabeledFrame` of ``atoms`` (energy, forces and virial None)."""
    return LabeledFrame(name=atoms.name, species=atoms.species, positions=atoms.positions,
                        lattice=atoms.lattice, pbc=atoms.pbc)


# ---- DeepH structure folders -----------------------------------------------------------------

def _deeph_folders(path: Path, data_dir_depth: Optional[int]) -> List[Tuple[str, Path]]:
    if path.is_file():  # a POSCAR: its folder is the structure
        return [(path.parent.resolve().name, path.parent)]
    if (path / POSCAR_FILENAME).is_file():
        return [(path.resolve().name, path)]
    try:
        return find_structure_folders(path, data_dir_depth)[1]
    except (ValueError, FileNotFoundError) as exc:
        raise DataFormatError(path, str(exc).replace(f"system {path}: ", "")) from None


def _read_deeph_frames(path: Path, data_dir_depth: Optional[int],
                       require_labels: bool) -> List[Tuple[str, LabeledFrame]]:
    out: List[Tuple[str, LabeledFrame]] = []
    missing: List[Path] = []
    for sid, folder in _deeph_folders(path, data_dir_depth):
        poscar = read_poscar(folder / POSCAR_FILENAME)
        force_path = folder / FORCE_FILENAME
        energy = forces = virial = None
        if force_path.is_file():
            labels = read_force_h5(force_path, n_atoms=poscar.n_atoms, lattice=poscar.lattice)
            energy, forces, virial = labels.energy, labels.forces, labels.virial
        else:
            missing.append(folder)
        out.append((sid, LabeledFrame(name=str(folder), species=poscar.species, positions=poscar.positions,
                                      lattice=poscar.lattice, pbc=(True, True, True), energy=energy,
                                      forces=forces, virial=virial)))
    if missing and require_labels:
        others = f"; {len(missing) - 1} other structure folder(s) below {path} lack it too" if len(missing) > 1 else ""
        raise DataFormatError(missing[0], f"no {FORCE_FILENAME}: energy_force training needs {FORCE_FILENAME} "
                                          f"(energy in eV, force [n_atoms, 3] in eV/Angstrom; see "
                                          f"deeph_tf.data.force_h5) in every structure folder{others}")
    return out


# ---- dpdata ----------------------------------------------------------------------------------

def _load_system(source: str, fmt: str, require_labels: bool):
    """dpdata.LabeledSystem; with ``require_labels=False`` dpdata.System when there are no labels."""
    import dpdata
    from dpdata.data_type import DataError

    try:
        return dpdata.LabeledSystem(source, fmt=fmt)
    except NotImplementedError as exc:
        if require_labels:
            raise DataFormatError(source, f"dpdata reads {fmt!r} only as unlabelled structures (no energies "
                                          f"or forces); use a labelled format (e.g. deepmd/npy with energy.npy "
                                          f"and force.npy, vasp/outcar, extxyz)") from exc
    except DataError as exc:
        if require_labels:
            raise DataFormatError(source, f"no energy/force labels as {fmt!r} (dpdata: {exc}); energy_force "
                                          f"training needs energies (eV) and forces (eV/Angstrom)") from exc
    logger.debug("%s: no labels, read as an unlabelled %s system", source, fmt)
    return dpdata.System(source, fmt=fmt)


def _frames_from_system(system, source: str, require_labels: bool) -> List[LabeledFrame]:
    data = system.data
    present = {k: k in data and np.asarray(data[k]).size > 0 for k in (DPDATA_ENERGIES, DPDATA_FORCES, DPDATA_VIRIALS)}
    if require_labels and not (present[DPDATA_ENERGIES] and present[DPDATA_FORCES]):
        lacking = " and ".join(k for k in (DPDATA_ENERGIES, DPDATA_FORCES) if not present[k])
        raise DataFormatError(source, f"labelled data needs energies and forces, but this system has no {lacking}")
    energies = np.asarray(data[DPDATA_ENERGIES], dtype=np.float64).reshape(-1) if present[DPDATA_ENERGIES] else None
    forces = np.asarray(data[DPDATA_FORCES], dtype=np.float64) if present[DPDATA_FORCES] else None
    virials = (np.asarray(data[DPDATA_VIRIALS], dtype=np.float64).reshape(-1, 3, 3) if present[DPDATA_VIRIALS]
               else None)
    out = []
    for f, atoms in enumerate(atoms_frames_from_system(system, source)):  # geometry as for prediction inputs
        out.append(LabeledFrame(name=atoms.name, species=atoms.species, positions=atoms.positions,
                                lattice=atoms.lattice, pbc=atoms.pbc,
                                energy=None if energies is None else energies[f],
                                forces=None if forces is None else forces[f],
                                virial=None if virials is None else virials[f]))
    return out


def _read_dpdata_frames(path: Path, fmt: str, require_labels: bool) -> List[Tuple[str, LabeledFrame]]:
    sources: List[Tuple[str, str]] = [("", str(path))]  # (id prefix, dpdata source)
    if fmt == "deepmd/hdf5" and path.exists():
        groups = _hdf5_system_groups(path)
        if not groups:
            raise DataFormatError(path, "no deepmd system in this HDF5 file (no group holds type.raw)")
        if len(groups) > 1:
            sources = [(g.lstrip("/") + "/", f"{path}#{g}") for g in groups]
        elif groups[0]:
            sources = [("", f"{path}#{groups[0]}")]
    out: List[Tuple[str, LabeledFrame]] = []
    for prefix, source in sources:
        system = _load_system(source, fmt, require_labels)
        out += [(f"{prefix}{k:06d}", frame)
                for k, frame in enumerate(_frames_from_system(system, source, require_labels))]
    return out


def _guess(path: Path, data_dir_depth: Optional[int]) -> str:
    if not path.exists() and "#" in str(path):  # "file.h5#/group"
        base = Path(str(path).split("#", 1)[0])
        if base.is_file():
            return guess_format(base)
    try:
        return guess_format(path)
    except DataFormatError as exc:
        if not path.is_dir():
            raise
        try:
            find_structure_folders(path, data_dir_depth)
        except ValueError:
            raise DataFormatError(path, f"{exc.detail}; no DeepH structure folder (POSCAR + info.json) "
                                        f"below it either") from None
        return DEEPH_FORMAT


def read_labeled_frames(path: PathLike, fmt: Optional[str] = None, data_dir_depth: Optional[int] = 0,
                        require_labels: bool = True) -> List[Tuple[str, LabeledFrame]]:
    """Read every labelled frame at ``path`` (see the module table).

    Args:
        path: DeepH structure folder / ``dft/`` / inputs folder / folder tree, a POSCAR, or
            anything dpdata reads (``"file.h5#/group"`` for one system of an HDF5 file).
        fmt: ``"deeph"``, a dpdata format name, or None to guess.
        data_dir_depth: for ``dft/`` and inputs folders: structures sit exactly this many
            levels below ``dft/``; None searches recursively.
        require_labels: True: every frame must have an energy and forces. False: frames
            without labels get None (formats without labels are read as plain structures).

    Returns:
        [(structure id, frame), ...], ids unique within ``path``, in id (DeepH) or file
        (dpdata) order.

    Raises:
        DataFormatError: (a ValueError) missing path, unguessable format, unreadable
            file, no frames, or (``require_labels``) missing force.h5 / energies / forces;
            the message names the file or folder.
        ValueError: unknown ``fmt`` (the message lists accepted values).
    """
    path = Path(path)
    fmt = _guess(path, data_dir_depth) if fmt is None else _check_fmt(fmt)
    hdf5_group = fmt == "deepmd/hdf5" and "#" in str(path)
    if not path.exists() and not hdf5_group:
        raise DataFormatError(path, "no such file or folder")
    if fmt == DEEPH_FORMAT:
        frames = _read_deeph_frames(path, data_dir_depth, require_labels)
    else:
        from dpdata.data_type import DataError

        try:
            frames = _read_dpdata_frames(path, fmt, require_labels)
        except DataFormatError:
            raise
        except (ValueError, OSError, KeyError, IndexError, TypeError, NotImplementedError, DataError) as exc:
            raise DataFormatError(path, f"dpdata could not read it as {fmt!r}: {type(exc).__name__}: {exc}") from exc
    if not frames:
        raise DataFormatError(path, f"no frames read as {fmt!r}")
    logger.debug("read %d labelled frame(s) from %s as %s", len(frames), path, fmt)
    return frames


# ---- writer ----------------------------------------------------------------------------------

def _system_data(frames: Sequence[LabeledFrame], nopbc: bool) -> Dict[str, object]:
    species = frames[0].species
    atom_names = list(dict.fromkeys(species))
    data: Dict[str, object] = {
        "atom_names": atom_names,
        "atom_numbs": [species.count(e) for e in atom_names],
        "atom_types": np.array([atom_names.index(s) for s in species], dtype=np.int64),
        "orig": np.zeros(3),
        "cells": np.stack([f.lattice for f in frames]),
        "coords": np.stack([f.positions for f in frames]),
        DPDATA_ENERGIES: np.array([f.energy for f in frames], dtype=np.float64),
        DPDATA_FORCES: np.stack([f.forces for f in frames]),
    }
    with_virial = [f.virial is not None for f in frames]
    if all(with_virial):
        data[DPDATA_VIRIALS] = np.stack([f.virial for f in frames])
    elif any(with_virial):
        lacking = frames[with_virial.index(False)].name
        raise ValueError(f"{sum(with_virial)} of {len(frames)} frames with species {''.join(atom_names)} have a "
                         f"virial but {lacking} has none (a deepmd system has a virial for all frames or none)")
    if nopbc:
        data["nopbc"] = True
    return data


def _default_dir_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


def write_deepmd_npy(frames: Sequence[LabeledFrame], folder: PathLike, set_size: int = 5000,
                     overwrite: bool = False) -> List[Path]:
    """Write labelled frames as deepmd/npy systems (float64, via dpdata).

    A deepmd system holds frames of one atom sequence, so frames are grouped by their
    species sequence and periodicity (fully non-periodic frames form ``nopbc`` systems;
    partly periodic ones are written as periodic, with a warning), in order of first
    appearance. One group is written directly in ``folder``; several go to
    ``folder/sys.000``, ``folder/sys.001``, ... Everything is written in a temporary
    sibling folder renamed to ``folder`` when complete, so an interrupted write never
    leaves a partial system.

    Args:
        frames: labelled frames (energy and forces; virial in all frames of a group or none).
        folder: the output folder; must be missing or empty unless ``overwrite``.
        set_size: frames per ``set.*`` folder.
        overwrite: replace an existing non-empty ``folder``.

    Returns:
        the system folders (readable with ``dpdata.LabeledSystem(p, fmt="deepmd/npy")``).

    Raises:
        ValueError: no frames, a frame without energy or forces, virials in only some frames
            of a group, or ``set_size < 1``.
        FileExistsError: ``folder`` is a non-empty folder (or a file) and ``overwrite`` is False.
    """
    import dpdata

    frames = list(frames)
    folder = Path(folder)
    if not frames:
        raise ValueError(f"{folder}: no frames to write")
    if set_size < 1:
        raise ValueError(f"set_size must be >= 1, got {set_size}")
    unlabeled = [f.name for f in frames if not f.has_labels]
    if unlabeled:
        raise ValueError(f"{len(unlabeled)} frame(s) lack an energy or forces (first: {unlabeled[0]}); deepmd/npy "
                         f"training data needs both")
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise FileExistsError(f"{folder} exists and is not empty; pass overwrite=True to replace it")
    partial = [f.name for f in frames if any(f.pbc) and not all(f.pbc)]
    if partial:
        logger.warning("%d frame(s) are periodic along some axes only (first: %s); deepmd/npy has no partial "
                       "periodicity, they are written as periodic", len(partial), partial[0])
    groups: Dict[Tuple[Tuple[str, ...], bool], List[LabeledFrame]] = {}
    for frame in frames:
        groups.setdefault((tuple(frame.species), not any(frame.pbc)), []).append(frame)
    systems = [(key, _system_data(group, nopbc=key[1])) for key, group in groups.items()]
    names = [""] if len(systems) == 1 else [f"sys.{i:03d}" for i in range(len(systems))]

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
    old: Optional[Path] = None
    try:
        os.chmod(tmp, _default_dir_mode())
        for name, (_, data) in zip(names, systems):
            dpdata.LabeledSystem(data=data).to("deepmd/npy", str(tmp / name if name else tmp), set_size=set_size)
        if folder.is_dir():
            if any(folder.iterdir()):
                old = tmp.with_name(tmp.name + ".old")
                os.rename(folder, old)
            else:
                folder.rmdir()
        try:
            os.rename(tmp, folder)
        except BaseException:
            if old is not None:
                os.rename(old, folder)
                old = None
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    out = [folder / name if name else folder for name in names]
    logger.info("wrote %d frame(s) as %d deepmd/npy system(s) in %s", len(frames), len(out), folder)
    return out
