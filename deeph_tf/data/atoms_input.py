"""Structures from any format dpdata reads, for inference without DFT files.

:func:`read_structures` turns a path into a list of :class:`AtomsInput` (one per frame):

=================================================  ==========================================
path                                               read as (``fmt`` when guessed)
=================================================  ==========================================
folder with POSCAR (+ info.json: DeepH structure)  ``"deeph"``: :func:`deeph_tf.data.poscar.read_poscar`
file named ``POSCAR``                              ``"deeph"`` (same reader)
folder with ``type.raw`` and ``set.*/``            ``"deepmd/npy"`` (dpdata)
folder with ``type.raw`` and ``coord.raw``         ``"deepmd/raw"`` (dpdata)
``*.h5`` / ``*.hdf5`` (not a DeepH block file)     ``"deepmd/hdf5"`` (dpdata; every system group)
``CONTCAR*``, ``POSCAR*`` (other names), ``*.vasp``  ``"vasp/poscar"`` (dpdata)
``*OUTCAR*``                                       ``"vasp/outcar"`` (dpdata)
``vasprun*.xml``                                   ``"vasp/xml"`` (dpdata)
``*.xyz``                                          ``"xyz"`` (dpdata; plain XYZ, a molecule)
=================================================  ==========================================

Any other format name dpdata knows (``dpdata.format.Format.get_formats()``, e.g.
``"abacus/stru"``, ``"qe/pw/scf"``, ``"extxyz"``) can be given explicitly as ``fmt``.
Formats dpdata implements only for labelled systems (OUTCAR, vasprun.xml, extxyz, ...)
are read through ``dpdata.LabeledSystem``; the labels are ignored.

DeepH folders and POSCARs are periodic on all axes (a molecule in a box stays
periodic-with-a-big-box, as in DeepH datasets). dpdata systems flagged ``nopbc`` get
``pbc = (False, False, False)``; when their cell is singular (deepmd/npy stores zeros)
an orthorhombic box with :data:`MOLECULE_VACUUM` of vacuum on each side replaces it.

dpdata 1.1.0 quirks handled here: ``System(..., fmt="deepmd/hdf5")`` on a file that holds
several systems (one group each, as ``MultiSystems.to`` writes) silently returns an
empty system, so each group is read separately (``"file.h5#/group"``); the ``xyz``
reader keeps only the first frame of a multi-frame file (a warning is logged);
``atom_names`` come back as ``numpy.str_`` (converted to ``str``).

:func:`write_deeph_structure_folder` turns an :class:`AtomsInput` into a DeepH inference
input folder (POSCAR + minimal info.json).
"""
from __future__ import annotations

import difflib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from deeph_tf.data.errors import DataFormatError
from deeph_tf.data.poscar import Poscar, read_poscar, write_poscar
from deeph_tf.data.structure import (INFO_FILENAME, POSCAR_FILENAME, is_structure_folder,
                                     write_info_json)

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

#: ``fmt`` value for DeepH structure folders and VASP 5 POSCARs read by deeph_tf's own reader.
DEEPH_FORMAT = "deeph"
#: Vacuum (Angstrom) on each side of a non-periodic system whose cell is singular.
MOLECULE_VACUUM = 10.0
#: The ``fmt`` values :func:`read_structures` guesses (any dpdata format is accepted explicitly).
GUESSED_FORMATS: Tuple[str, ...] = (DEEPH_FORMAT, "deepmd/npy", "deepmd/raw", "deepmd/hdf5",
                                    "vasp/poscar", "vasp/outcar", "vasp/xml", "xyz")


@dataclass(frozen=True, eq=False)
class AtomsInput:
    """One structure to predict on.

    Attributes:
        name: where it came from (the path, ``<path>#<frame>`` for dpdata frames).
        species: element symbol of each atom (length n_atoms).
        positions: [n_atoms, 3] float64, Cartesian, Angstrom (read-only).
        lattice: [3, 3] float64, Angstrom, rows are the lattice vectors (read-only).
        pbc: periodicity along each lattice vector.
    """

    name: str
    species: List[str]
    positions: np.ndarray
    lattice: np.ndarray
    pbc: Tuple[bool, bool, bool] = (True, True, True)

    def __post_init__(self) -> None:
        species = [str(s) for s in self.species]
        positions = np.array(self.positions, dtype=np.float64)
        if positions.size == 0:
            positions = positions.reshape(0, 3)
        lattice = np.array(self.lattice, dtype=np.float64)
        if positions.ndim != 2 or positions.shape[1] != 3:
            raise ValueError(f"{self.name}: positions must be [n_atoms, 3], got {positions.shape}")
        if lattice.shape != (3, 3):
            raise ValueError(f"{self.name}: lattice must be [3, 3], got {lattice.shape}")
        if len(species) != positions.shape[0]:
            raise ValueError(f"{self.name}: {len(species)} species for {positions.shape[0]} positions")
        if not (np.all(np.isfinite(positions)) and np.all(np.isfinite(lattice))):
            raise ValueError(f"{self.name}: non-finite positions or lattice")
        pbc = tuple(bool(p) for p in (self.pbc if not isinstance(self.pbc, (bool, np.bool_))
                                      else (self.pbc,) * 3))
        if len(pbc) != 3:
            raise ValueError(f"{self.name}: pbc must be 3 bools, got {self.pbc!r}")
        if any(pbc) and abs(np.linalg.det(lattice)) < 1e-10:
            raise ValueError(f"{self.name}: lattice is singular but pbc = {pbc}")
        positions.flags.writeable = False
        lattice.flags.writeable = False
        object.__setattr__(self, "name", str(self.name))
        object.__setattr__(self, "species", species)
        object.__setattr__(self, "positions", positions)
        object.__setattr__(self, "lattice", lattice)
        object.__setattr__(self, "pbc", pbc)

    @property
    def n_atoms(self) -> int:
        return len(self.species)

    @property
    def elements(self) -> List[str]:
        """Distinct element symbols in order of first appearance."""
        return list(dict.fromkeys(self.species))

    def to_poscar(self) -> Poscar:
        """The structure as a :class:`Poscar` (always periodic; the name is the comment).

        A non-periodic structure with a singular lattice gets an orthorhombic box with
        :data:`MOLECULE_VACUUM` Angstrom of vacuum on each side.
        """
        lattice = self.lattice
        if not any(self.pbc) and abs(np.linalg.det(lattice)) < 1e-10:
            lattice = _molecule_box(self.positions)
        return Poscar(lattice=lattice, species=list(self.species), positions=self.positions,
                      comment=self.name)


# ---- format guessing -------------------------------------------------------------------------

def _is_deeph_block_file(path: Path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return "atom_pairs" in f and "entries" in f
    except OSError:
        return False


def guess_format(path: PathLike) -> str:
    """The ``fmt`` :func:`read_structures` uses for ``path`` when none is given.

    Raises:
        DataFormatError: (a ValueError) when the path does not exist or matches no rule;
            the message lists the accepted ``fmt`` values.
    """
    path = Path(path)
    if not path.exists():
        raise DataFormatError(path, "no such file or folder")
    if path.is_dir():
        if is_structure_folder(path) or (path / POSCAR_FILENAME).is_file():
            return DEEPH_FORMAT
        if (path / "type.raw").is_file():
            if any(p.is_dir() for p in path.glob("set.*")):
                return "deepmd/npy"
            if (path / "coord.raw").is_file():
                return "deepmd/raw"
        reason = "folder holds neither a POSCAR nor a deepmd system (type.raw with set.*/ or coord.raw)"
    else:
        name = path.name
        lower = name.lower()
        if name == POSCAR_FILENAME:
            return DEEPH_FORMAT
        if lower.endswith((".h5", ".hdf5")):
            if _is_deeph_block_file(path):
                raise DataFormatError(path, "this is a DeepH block file (atom_pairs/entries); pass its "
                                            "structure folder (with POSCAR and info.json) instead")
            return "deepmd/hdf5"
        if name.startswith(("POSCAR", "CONTCAR")) or lower.endswith(".vasp"):
            return "vasp/poscar"
        if "OUTCAR" in name:
            return "vasp/outcar"
        if lower.startswith("vasprun") and lower.endswith(".xml"):
            return "vasp/xml"
        if lower.endswith(".xyz"):
            return "xyz"
        reason = "cannot guess the format from the file name"
    raise DataFormatError(path, f"{reason}; pass fmt= one of {', '.join(GUESSED_FORMATS)}, or any other "
                                f"format name dpdata knows (dpdata.format.Format.get_formats())")


def _dpdata_formats() -> List[str]:
    from dpdata.format import Format

    return sorted(Format.get_formats())


def _check_fmt(fmt: str) -> str:
    fmt = fmt.strip().lower()
    if fmt == DEEPH_FORMAT:
        return fmt
    known = _dpdata_formats()
    if fmt not in known:
        close = difflib.get_close_matches(fmt, known + [DEEPH_FORMAT], n=3)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "."
        raise ValueError(f"unknown structure format {fmt!r}{hint} Accepted: {DEEPH_FORMAT!r} (DeepH folder "
                         f"or POSCAR) or a dpdata format: {', '.join(known)}")
    return fmt


# ---- readers ---------------------------------------------------------------------------------

def _read_deeph(path: Path) -> List[AtomsInput]:
    poscar_path = path / POSCAR_FILENAME if path.is_dir() else path
    poscar = read_poscar(poscar_path)
    return [AtomsInput(name=str(path), species=poscar.species, positions=poscar.positions,
                       lattice=poscar.lattice, pbc=(True, True, True))]


def _molecule_box(positions: np.ndarray) -> np.ndarray:
    extent = positions.max(axis=0) - positions.min(axis=0) if len(positions) else np.zeros(3)
    return np.diag(extent + 2 * MOLECULE_VACUUM)


def _frames_from_system(system, name: str) -> List[AtomsInput]:
    names = [str(s) for s in system["atom_names"]]
    types = np.asarray(system["atom_types"], dtype=np.int64)
    species = [names[t] for t in types]
    nopbc = bool(getattr(system, "nopbc", False))
    pbc = (not nopbc,) * 3
    cells = np.asarray(system["cells"], dtype=np.float64)
    coords = np.asarray(system["coords"], dtype=np.float64)
    out = []
    for f in range(coords.shape[0]):
        lattice = cells[f]
        if nopbc and abs(np.linalg.det(lattice)) < 1e-10:
            lattice = _molecule_box(coords[f])
        out.append(AtomsInput(name=f"{name}#{f}", species=species, positions=coords[f], lattice=lattice,
                              pbc=pbc))
    return out


def _load_dpdata(source: str, fmt: str):
    import dpdata

    try:
        return dpdata.System(source, fmt=fmt)
    except NotImplementedError:  # formats implemented for labelled systems only (OUTCAR, extxyz, ...)
        return dpdata.LabeledSystem(source, fmt=fmt)


def _hdf5_system_groups(path: Path) -> List[str]:
    """'' if the file root is one deepmd system, else every group holding a type.raw."""
    import h5py

    with h5py.File(path, "r") as f:
        if "type.raw" in f:
            return [""]
        groups: List[str] = []

        def visit(name, obj):
            if isinstance(obj, h5py.Group) and "type.raw" in obj:
                groups.append("/" + name)

        f.visititems(visit)
    return groups


def _count_xyz_frames(path: Path) -> int:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    k = frames = 0
    while k < len(lines):
        head = lines[k].strip()
        if not head:
            k += 1
            continue
        try:
            n = int(head)
        except ValueError:
            break
        frames += 1
        k += n + 2
    return frames


def _read_dpdata(path: Path, fmt: str) -> List[AtomsInput]:
    if fmt == "deepmd/hdf5" and not path.exists():  # "file.h5#/group"
        return _frames_from_system(_load_dpdata(str(path), fmt), str(path))
    if fmt == "deepmd/hdf5":
        groups = _hdf5_system_groups(path)
        if not groups:
            raise DataFormatError(path, "no deepmd system in this HDF5 file (no group holds type.raw)")
        out: List[AtomsInput] = []
        for g in groups:
            source = f"{path}#{g}" if g else str(path)
            out += _frames_from_system(_load_dpdata(source, fmt), source)
        return out
    system = _load_dpdata(str(path), fmt)
    frames = _frames_from_system(system, str(path))
    if fmt == "xyz" and path.is_file():
        n_file = _count_xyz_frames(path)
        if n_file > len(frames):
            logger.warning("%s: dpdata's xyz reader keeps only the first of %d frames; convert the file "
                           "(e.g. to deepmd/npy) to use every frame", path, n_file)
    return frames


def read_structures(path: PathLike, fmt: Optional[str] = None) -> List[AtomsInput]:
    """Read every structure (frame) at ``path``.

    Args:
        path: a DeepH structure folder, a POSCAR, or anything dpdata reads.
        fmt: ``"deeph"``, a dpdata format name, or ``None`` to guess (see the module table).

    Returns:
        one :class:`AtomsInput` per frame, in file order; positions and lattice in Angstrom.

    Raises:
        DataFormatError: (a ValueError) missing path, unguessable format, unreadable file.
        ValueError: unknown ``fmt`` (the message lists accepted values).
    """
    path = Path(path)
    fmt = guess_format(path) if fmt is None else _check_fmt(fmt)
    hdf5_group = fmt == "deepmd/hdf5" and "#" in str(path)  # "file.h5#/group", as dpdata accepts
    if not path.exists() and not hdf5_group:
        raise DataFormatError(path, "no such file or folder")
    if fmt == DEEPH_FORMAT:
        return _read_deeph(path)
    try:
        frames = _read_dpdata(path, fmt)
    except DataFormatError:
        raise
    except (ValueError, OSError, KeyError, IndexError, TypeError, NotImplementedError) as exc:
        raise DataFormatError(path, f"dpdata could not read it as {fmt!r}: {type(exc).__name__}: {exc}") from exc
    logger.debug("read %d frame(s) from %s as %s", len(frames), path, fmt)
    return frames


# ---- writer ----------------------------------------------------------------------------------

def write_deeph_structure_folder(atoms: AtomsInput, folder: PathLike,
                                 elements_orbital_map: Mapping[str, Sequence[int]]) -> Path:
    """Write ``atoms`` as a DeepH structure folder (POSCAR + minimal info.json).

    info.json gets ``atoms_quantity``, ``orbits_quantity`` (spinless, sum over atoms of
    sum(2l + 1) from ``elements_orbital_map``), ``orthogonal_basis`` false, ``spinful``
    false, ``fermi_energy_eV`` null and the map restricted to the elements present. The
    POSCAR is always periodic: a non-periodic structure keeps its (box) lattice, and a
    warning is logged when the vacuum between images is thinner than
    :data:`MOLECULE_VACUUM`. Existing POSCAR/info.json are replaced; other files are kept.

    Args:
        atoms: the structure.
        folder: created if missing.
        elements_orbital_map: e.g. ``{"O": [0, 0, 1, 1, 2], "H": [0, 0, 1]}``.

    Returns:
        the folder, loadable with :func:`deeph_tf.data.structure.load_structure`.

    Raises:
        ValueError: an element of ``atoms`` is missing from ``elements_orbital_map``.
    """
    folder = Path(folder)
    missing = [e for e in atoms.elements if e not in elements_orbital_map]
    if missing:
        raise ValueError(f"{atoms.name}: elements_orbital_map has no entry for {', '.join(missing)} "
                         f"(map: {', '.join(elements_orbital_map) or 'empty'})")
    eom: Dict[str, List[int]] = {e: [int(l) for l in elements_orbital_map[e]] for e in atoms.elements}
    n_orb = sum(sum(2 * l + 1 for l in eom[s]) for s in atoms.species)
    poscar = atoms.to_poscar()
    if not all(atoms.pbc) and atoms.n_atoms:
        inv = np.linalg.inv(poscar.lattice)
        heights = 1.0 / np.linalg.norm(inv, axis=0)
        frac = atoms.positions @ inv
        gaps = heights * (1.0 - (frac.max(axis=0) - frac.min(axis=0)))
        thin = [a for a in range(3) if not atoms.pbc[a] and gaps[a] < MOLECULE_VACUUM]
        if thin:
            logger.warning("%s: non-periodic along axes %s but the box leaves only %s A between images; "
                           "the POSCAR will be read as periodic", atoms.name, thin,
                           ", ".join(f"{gaps[a]:.2f}" for a in thin))
    folder.mkdir(parents=True, exist_ok=True)
    write_poscar(folder / POSCAR_FILENAME, poscar)
    write_info_json(folder / INFO_FILENAME, {
        "atoms_quantity": atoms.n_atoms, "orbits_quantity": int(n_orb), "orthogonal_basis": False,
        "spinful": False, "fermi_energy_eV": None, "elements_orbital_map": eom})
    return folder
