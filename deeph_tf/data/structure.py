"""One DeepH structure folder: ``info.json`` + ``POSCAR`` + block files.

A folder is a structure only if it holds both ``POSCAR`` and ``info.json``
(docs/conventions.md, section "1. Data format"). ``info.json`` keys::

    atoms_quantity        int   number of atoms (must equal the POSCAR)
    orbits_quantity       int   spinless orbital count = sum over atoms of sum(2l + 1)
    orthogonal_basis      bool
    spinful               bool  spinful H / density blocks are 2n_i x 2n_j, spin outer, orbital inner
    fermi_energy_eV       number or null
    elements_orbital_map  {"O": [0, 0, 1, 1, 2], ...}: one l per radial shell, storage order
    occupation, basis     optional

Orbitals of an atom are stored shell by shell in ``elements_orbital_map`` order,
each shell as m = -l..l (``deeph_tf.conventions``).
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

import numpy as np

from deeph_tf.conventions import SHELL_LETTERS
from deeph_tf.atomic_io import atomic_path
from deeph_tf.data import keys
from deeph_tf.data.block_h5 import BlockSet, read_block_h5, write_block_h5
from deeph_tf.data.errors import DataFormatError
from deeph_tf.data.poscar import Poscar, read_poscar, write_poscar

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

INFO_FILENAME = "info.json"
POSCAR_FILENAME = "POSCAR"
#: Keys every info.json must hold.
REQUIRED_INFO_KEYS = ("atoms_quantity", "orbits_quantity", "orthogonal_basis", "spinful",
                      "fermi_energy_eV", "elements_orbital_map")
#: Block files that stay spinless (n_i x n_j) even in spinful structures.
SPINLESS_BLOCK_NAMES = frozenset({keys.OVERLAP})


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate_info(info: Mapping[str, Any], source: PathLike) -> Dict[str, Any]:
    """Check keys and types of an info.json mapping; return a plain-dict copy.

    ``elements_orbital_map`` is returned with int lists. Unknown keys are kept.

    Raises:
        DataFormatError: naming ``source`` and the offending key.
    """
    if not isinstance(info, Mapping):
        raise DataFormatError(source, f"expected a JSON object, got {type(info).__name__}")
    missing = [k for k in REQUIRED_INFO_KEYS if k not in info]
    if missing:
        raise DataFormatError(source, f"missing key(s) {', '.join(missing)} (required: "
                                      f"{', '.join(REQUIRED_INFO_KEYS)})")
    out = dict(info)
    for key in ("atoms_quantity", "orbits_quantity"):
        v = info[key]
        if not _is_int(v) or v < 0:
            raise DataFormatError(source, f"key {key} = {v!r} (expected a non-negative integer)")
    for key in ("orthogonal_basis", "spinful"):
        if not isinstance(info[key], bool):
            raise DataFormatError(source, f"key {key} = {info[key]!r} (expected true or false)")
    fermi = info["fermi_energy_eV"]
    if fermi is not None and (not isinstance(fermi, (int, float)) or isinstance(fermi, bool)
                              or not math.isfinite(fermi)):
        raise DataFormatError(source, f"key fermi_energy_eV = {fermi!r} (expected a number in eV or null)")
    if "occupation" in info and info["occupation"] is not None and (
            not isinstance(info["occupation"], (int, float)) or isinstance(info["occupation"], bool)):
        raise DataFormatError(source, f"key occupation = {info['occupation']!r} (expected a number)")
    eom = info["elements_orbital_map"]
    if not isinstance(eom, Mapping) or not eom:
        raise DataFormatError(source, f"key elements_orbital_map = {eom!r} (expected a non-empty object "
                                      f"like {{\"O\": [0, 0, 1, 1, 2], \"H\": [0, 0, 1]}})")
    clean: Dict[str, List[int]] = {}
    for element, shells in eom.items():
        if not isinstance(shells, list) or not all(_is_int(l) and 0 <= l < len(SHELL_LETTERS)
                                                   for l in shells):
            raise DataFormatError(source, f"key elements_orbital_map[{element!r}] = {shells!r} (expected a "
                                          f"list of angular momenta l in 0..{len(SHELL_LETTERS) - 1})")
        clean[str(element)] = [int(l) for l in shells]
    out["elements_orbital_map"] = clean
    return out


def read_info_json(path: PathLike) -> Dict[str, Any]:
    """Read and validate an ``info.json``.

    Returns:
        the JSON object as a dict (required keys checked, optional keys kept).

    Raises:
        DataFormatError: missing file, invalid JSON, missing key or wrong type; the
            message names the file and the key.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "info.json not found" if not path.exists() else "not a file")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(path, f"cannot read ({exc})") from exc
    return validate_info(info, path)


def write_info_json(path: PathLike, info: Mapping[str, Any]) -> None:
    """Validate ``info`` and write it atomically as one-line JSON (the DeepH style).

    Raises:
        DataFormatError: if ``info`` would not read back (nothing is written then).
    """
    path = Path(path)
    clean = validate_info(info, path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(clean) + "\n", encoding="utf-8")


def is_structure_folder(folder: PathLike) -> bool:
    """True if ``folder`` holds both POSCAR and info.json (the DeepH definition)."""
    folder = Path(folder)
    return (folder / POSCAR_FILENAME).is_file() and (folder / INFO_FILENAME).is_file()


@dataclass(frozen=True, eq=False)
class StructureFolder:
    """A loaded structure folder (use :func:`load_structure`).

    Attributes:
        path: the folder.
        info: validated info.json content.
        poscar: the structure; atom k of the POSCAR is atom index k in the block files.
    """

    path: Path
    info: Dict[str, Any]
    poscar: Poscar

    # ---- info shortcuts -------------------------------------------------------------------
    @property
    def name(self) -> str:
        """Folder name (the structure id in DeepH datasets)."""
        return self.path.name

    @property
    def n_atoms(self) -> int:
        return self.poscar.n_atoms

    @property
    def species(self) -> List[str]:
        return self.poscar.species

    @property
    def spinful(self) -> bool:
        return bool(self.info["spinful"])

    @property
    def elements_orbital_map(self) -> Dict[str, List[int]]:
        return self.info["elements_orbital_map"]

    @property
    def n_orbitals(self) -> int:
        """Spinless orbital count (= info["orbits_quantity"])."""
        return int(self.atom_orbital_offsets()[-1])

    @property
    def fermi_energy_eV(self) -> Union[float, None]:
        v = self.info["fermi_energy_eV"]
        return None if v is None else float(v)

    # ---- orbitals -------------------------------------------------------------------------
    def orbital_shells(self, atom_index: int) -> List[int]:
        """Angular momentum l of each radial shell of atom ``atom_index``, storage order."""
        return list(self.elements_orbital_map[self.poscar.species[atom_index]])

    def orbital_slices(self, atom_index: int) -> List[slice]:
        """One slice per shell into the atom's (spinless) rows/columns of a block.

        E.g. O with [0, 0, 1, 1, 2] gives 0:1, 1:2, 2:5, 5:8, 8:13. For spinful blocks
        the spin-up part uses these slices and spin-down the same plus n_orb(atom).
        """
        out, start = [], 0
        for l in self.orbital_shells(atom_index):
            out.append(slice(start, start + 2 * l + 1))
            start += 2 * l + 1
        return out

    def atom_orbital_counts(self) -> np.ndarray:
        """[n_atoms] int64 spinless orbitals per atom, sum(2l + 1) over its shells."""
        return np.array([sum(2 * l + 1 for l in self.orbital_shells(a)) for a in range(self.n_atoms)],
                        dtype=np.int64)

    def atom_orbital_offsets(self, spinful: bool = False) -> np.ndarray:
        """[n_atoms + 1] int64 start of each atom's rows in the dense matrix; last = size.

        With ``spinful=True`` each atom's block is twice as large (matching the
        [[uu, ud], [du, dd]] layout of each spinful block).
        """
        counts = self.atom_orbital_counts() * (2 if spinful else 1)
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def spin_factor(self, name: str) -> int:
        """2 if the blocks of ``name`` (e.g. "hamiltonian") are spinful here, else 1."""
        return 2 if self.spinful and name not in SPINLESS_BLOCK_NAMES else 1

    # ---- blocks ---------------------------------------------------------------------------
    def block_path(self, name: str) -> Path:
        return self.path / f"{name}.h5"

    def has_blocks(self, name: str) -> bool:
        return self.block_path(name).is_file()

    def read_blocks(self, name: str, check: bool = True) -> BlockSet:
        """Read ``<folder>/<name>.h5`` (e.g. "hamiltonian", "overlap", "density_matrix").

        With ``check`` (default), also verifies against this structure: atom indices
        in range, every block shaped (f n_i, f n_j) from elements_orbital_map (f = 2
        for spinful non-overlap data, else 1), and every (R, i, j) has its partner
        (-R, j, i).

        Raises:
            DataFormatError: naming the file and the first offending pair.
        """
        path = self.block_path(name)
        blocks = read_block_h5(path)
        if check:
            self.check_blocks(blocks, name, path)
        return blocks

    def check_blocks(self, blocks: BlockSet, name: str, source: PathLike) -> None:
        """The checks of :meth:`read_blocks` on an in-memory :class:`BlockSet`."""
        f = self.spin_factor(name)
        counts = self.atom_orbital_counts() * f
        n = self.n_atoms
        pairs = blocks.atom_pairs
        bad = np.nonzero((pairs[:, 3] >= n) | (pairs[:, 4] >= n))[0]
        if bad.size:
            raise DataFormatError(source, f"atom pair {pairs[bad[0]].tolist()} refers to atom index >= "
                                          f"{n} (the POSCAR has {n} atoms)")
        for k, b in enumerate(blocks.blocks):
            i, j = int(pairs[k, 3]), int(pairs[k, 4])
            expected = (int(counts[i]), int(counts[j]))
            if b.shape != expected:
                spin = " (spinful: 2x orbitals)" if f == 2 else ""
                raise DataFormatError(
                    source, f"block {pairs[k].tolist()} has shape {b.shape}, expected {expected}{spin} from "
                            f"elements_orbital_map ({self.species[i]}: {self.orbital_shells(i)}, "
                            f"{self.species[j]}: {self.orbital_shells(j)})")
        missing = blocks.missing_partners()
        if missing:
            r1, r2, r3, i, j = missing[0]
            raise DataFormatError(source, f"{len(missing)} pair(s) lack their Hermitian partner, e.g. "
                                          f"{list(missing[0])} has no {[-r1, -r2, -r3, j, i]} (expected each "
                                          f"(R, i, j) to come with (-R, j, i))")


def load_structure(folder: PathLike) -> StructureFolder:
    """Load ``folder``'s POSCAR and info.json and check that they agree.

    Checks: both files exist; atoms_quantity equals the POSCAR atom count; every
    element of the POSCAR is in elements_orbital_map; orbits_quantity equals the sum
    over atoms of sum(2l + 1). Block files are read lazily (:meth:`StructureFolder.read_blocks`).

    Raises:
        DataFormatError: naming the folder or file and what disagrees.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(folder, "structure folder does not exist" if not folder.exists()
                              else "not a directory")
    missing = [n for n in (POSCAR_FILENAME, INFO_FILENAME) if not (folder / n).is_file()]
    if missing:
        raise DataFormatError(folder, f"not a structure folder: missing {' and '.join(missing)} "
                                      f"(a structure folder holds both POSCAR and info.json)")
    info_path = folder / INFO_FILENAME
    info = read_info_json(info_path)
    poscar = read_poscar(folder / POSCAR_FILENAME)
    if info["atoms_quantity"] != poscar.n_atoms:
        raise DataFormatError(info_path, f"atoms_quantity = {info['atoms_quantity']} but POSCAR has "
                                         f"{poscar.n_atoms} atoms")
    eom = info["elements_orbital_map"]
    unknown = [e for e in poscar.elements if e not in eom]
    if unknown:
        raise DataFormatError(info_path, f"elements_orbital_map has no entry for {', '.join(unknown)} "
                                         f"(POSCAR elements: {', '.join(poscar.elements)}; map: "
                                         f"{', '.join(eom)})")
    structure = StructureFolder(path=folder, info=info, poscar=poscar)
    n_orb = int(structure.atom_orbital_counts().sum())
    if info["orbits_quantity"] != n_orb:
        raise DataFormatError(info_path, f"orbits_quantity = {info['orbits_quantity']} but "
                                         f"elements_orbital_map and the POSCAR give {n_orb} "
                                         f"(sum over atoms of sum(2l+1); spinless)")
    logger.debug("loaded structure %s: %d atoms, %d orbitals", folder, poscar.n_atoms, n_orb)
    return structure


def write_structure_folder(
    folder: PathLike,
    poscar: "Poscar",
    info: Mapping[str, Any],
    blocks: Optional[Mapping[str, BlockSet]] = None,
) -> Path:
    """Write a DeepH structure folder: POSCAR, info.json and ``<name>.h5`` for each block set.

    ``blocks`` maps file stems to block sets, e.g. {"overlap": S, "hamiltonian_pred": H_pred}.
    Every file is written atomically; the folder is created if needed. The result reads back
    exactly with :func:`load_structure` and :meth:`StructureFolder.read_blocks`.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_poscar(folder / POSCAR_FILENAME, poscar)
    write_info_json(folder / INFO_FILENAME, info)
    for name, blockset in (blocks or {}).items():
        write_block_h5(folder / f"{name}.h5", blockset)
    return folder
