"""``force.h5``: total energy, atomic forces and virial of one DeepH structure folder.

An optional file of the DeepH unified format, next to POSCAR and info.json in
``dft/<sid>/``, holding the labels of force-field (energy + force) training::

    energy   float64, scalar or shape (1,)   total energy, eV                          required
    force    float64, (n_atoms, 3)           force on each atom, eV/Angstrom,           required
                                             atoms in POSCAR order (read: alias ``forces``)
    virial   float64, (3, 3)                 virial, eV, DeePMD convention:             optional
                                             virial = -dE/d(strain)
    stress   float64, (3, 3)                 stress, eV/Angstrom^3, ASE convention:     optional
                                             stress = (1/V) dE/d(strain)

All values must be finite; integer datasets are accepted and read as float64. Attributes
(on the file or the datasets) are free-form provenance (e.g. the method) and are not
interpreted. When a file holds ``stress`` but no ``virial``, :func:`read_force_h5`
returns ``virial = -stress * V`` with V = |det(lattice)| of the lattice it is given
(Angstrom^3); when it holds both, ``virial`` is used. The writer stores ``energy`` as a
scalar, ``force`` and, if given, ``virial``, each with a ``unit`` attribute ("eV",
"eV/Angstrom", "eV").

Units follow ``deeph_tf.conventions`` (eV, Angstrom); convert at the producer, e.g.
PySCF gradients (Hartree/Bohr): force = -grad * HARTREE_TO_EV / BOHR_TO_ANGSTROM.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import numpy as np

from deeph_tf.atomic_io import atomic_path
from deeph_tf.data.errors import DataFormatError

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

#: File name of the energy/force labels inside a structure folder.
FORCE_FILENAME = "force.h5"
#: Dataset names (``FORCE_ALIASES`` are accepted when reading).
ENERGY_KEY, FORCE_KEY, VIRIAL_KEY, STRESS_KEY = "energy", "force", "virial", "stress"
FORCE_ALIASES = ("forces",)


@dataclass(frozen=True, eq=False)
class ForceLabels:
    """The labels of one structure.

    Attributes:
        energy: total energy, eV.
        forces: [n_atoms, 3] float64, eV/Angstrom, POSCAR atom order (read-only).
        virial: [3, 3] float64, eV (virial = -dE/d(strain)), or None (read-only).
    """

    energy: float
    forces: np.ndarray
    virial: Optional[np.ndarray] = None


# ---- checks ----------------------------------------------------------------------------------

def _as_float_array(value: Any, source: PathLike, key: str) -> np.ndarray:
    try:
        arr = np.array(value)
    except (TypeError, ValueError) as exc:  # pragma: no cover - h5py hands out arrays
        raise DataFormatError(source, f"dataset {key}: cannot read as numbers ({exc})") from exc
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)) \
            or arr.dtype == np.bool_:
        raise DataFormatError(source, f"dataset {key} has dtype {arr.dtype} (expected float64)")
    return arr.astype(np.float64)


def _check_energy(value: Any, source: PathLike) -> float:
    arr = _as_float_array(value, source, ENERGY_KEY)
    if arr.shape not in ((), (1,)):
        raise DataFormatError(source, f"dataset {ENERGY_KEY} has shape {arr.shape} (expected a scalar or "
                                      f"shape (1,): the total energy in eV)")
    energy = float(arr.reshape(()))
    if not math.isfinite(energy):
        raise DataFormatError(source, f"dataset {ENERGY_KEY} = {energy} (expected a finite energy in eV)")
    return energy


def _check_forces(value: Any, source: PathLike, key: str, n_atoms: Optional[int]) -> np.ndarray:
    arr = _as_float_array(value, source, key)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise DataFormatError(source, f"dataset {key} has shape {arr.shape} (expected (n_atoms, 3), eV/Angstrom)")
    if n_atoms is not None and arr.shape[0] != n_atoms:
        raise DataFormatError(source, f"dataset {key} has {arr.shape[0]} rows but the structure has "
                                      f"{n_atoms} atoms (expected one force per POSCAR atom)")
    if not np.all(np.isfinite(arr)):
        bad = int(np.argwhere(~np.isfinite(arr))[0, 0])
        raise DataFormatError(source, f"dataset {key} holds non-finite values (first at atom {bad})")
    return arr


def _check_3x3(value: Any, source: PathLike, key: str, unit: str) -> np.ndarray:
    arr = _as_float_array(value, source, key)
    if arr.shape != (3, 3):
        raise DataFormatError(source, f"dataset {key} has shape {arr.shape} (expected (3, 3), {unit})")
    if not np.all(np.isfinite(arr)):
        raise DataFormatError(source, f"dataset {key} holds non-finite values")
    return arr


def _readonly(arr: Optional[np.ndarray]) -> Optional[np.ndarray]:
    if arr is not None:
        arr.flags.writeable = False
    return arr


# ---- reader / writer -------------------------------------------------------------------------

def read_force_h5(path: PathLike, n_atoms: Optional[int] = None,
                  lattice: Optional[np.ndarray] = None) -> ForceLabels:
    """Read and check a ``force.h5``.

    Args:
        path: the file.
        n_atoms: if given, ``force`` must have this many rows.
        lattice: [3, 3] Angstrom (rows); needed only to turn ``stress`` into a virial.

    Returns:
        :class:`ForceLabels` in eV, eV/Angstrom and eV.

    Raises:
        DataFormatError: missing/unreadable file, missing dataset, wrong shape or dtype,
            non-finite values, row count != ``n_atoms``, or ``stress`` without ``virial``
            and no ``lattice`` given; the message names the file and the dataset.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "force.h5 not found" if not path.exists() else "not a file")
    try:
        with h5py.File(path, "r") as f:
            def dataset(key: str) -> Optional[np.ndarray]:
                if key not in f:
                    return None
                if not isinstance(f[key], h5py.Dataset):
                    raise DataFormatError(path, f"{key} is a group (expected a dataset)")
                return f[key][()]

            raw = {key: dataset(key) for key in (ENERGY_KEY, FORCE_KEY, VIRIAL_KEY, STRESS_KEY) + FORCE_ALIASES}
            keys = sorted(f.keys())
    except DataFormatError:
        raise
    except OSError as exc:
        raise DataFormatError(path, f"cannot read as HDF5 ({exc})") from exc
    if raw[ENERGY_KEY] is None:
        raise DataFormatError(path, f"no dataset {ENERGY_KEY} (total energy, eV); datasets: "
                                    f"{', '.join(keys) or 'none'}")
    energy = _check_energy(raw[ENERGY_KEY], path)
    force_keys = [k for k in (FORCE_KEY,) + FORCE_ALIASES if raw[k] is not None]
    if not force_keys:
        raise DataFormatError(path, f"no dataset {FORCE_KEY} (forces [n_atoms, 3], eV/Angstrom; alias "
                                    f"{', '.join(FORCE_ALIASES)}); datasets: {', '.join(keys) or 'none'}")
    if len(force_keys) > 1:
        raise DataFormatError(path, f"holds both {' and '.join(force_keys)}; keep one (expected {FORCE_KEY})")
    forces = _check_forces(raw[force_keys[0]], path, force_keys[0], n_atoms)
    virial = None
    if raw[VIRIAL_KEY] is not None:
        virial = _check_3x3(raw[VIRIAL_KEY], path, VIRIAL_KEY, "eV")
    elif raw[STRESS_KEY] is not None:
        stress = _check_3x3(raw[STRESS_KEY], path, STRESS_KEY, "eV/Angstrom^3")
        if lattice is None:
            raise DataFormatError(path, f"holds {STRESS_KEY} but no {VIRIAL_KEY}; converting stress to a virial "
                                        f"needs the cell volume: pass the lattice (or store {VIRIAL_KEY}, eV)")
        cell = np.asarray(lattice, dtype=np.float64)
        if cell.shape != (3, 3):
            raise ValueError(f"{path}: lattice must be [3, 3] Angstrom, got shape {cell.shape}")
        volume = abs(float(np.linalg.det(cell)))
        if volume < 1e-10:
            raise DataFormatError(path, f"holds {STRESS_KEY} but the lattice is singular (volume {volume:.3g} "
                                        f"A^3); cannot convert stress to a virial")
        virial = -stress * volume
    return ForceLabels(energy=energy, forces=_readonly(forces), virial=_readonly(virial))


def write_force_h5(path: PathLike, energy: float, forces: np.ndarray, virial: Optional[np.ndarray] = None,
                   attrs: Optional[Mapping[str, Any]] = None) -> None:
    """Write a ``force.h5`` atomically (the old file, if any, stays until the new one is complete).

    Args:
        path: the file, usually ``<structure folder>/force.h5``.
        energy: total energy, eV.
        forces: [n_atoms, 3] eV/Angstrom, POSCAR atom order.
        virial: optional [3, 3] eV (virial = -dE/d(strain)).
        attrs: optional file attributes (provenance: method, settings); str, numbers or bools.

    Raises:
        DataFormatError: the values would not read back (wrong shape, non-finite); nothing
            is written then.
    """
    import h5py

    path = Path(path)
    e = _check_energy(energy, path)
    f_arr = _check_forces(forces, path, FORCE_KEY, None)
    v_arr = None if virial is None else _check_3x3(virial, path, VIRIAL_KEY, "eV")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for key, value in (attrs or {}).items():
                f.attrs[str(key)] = value
            f.create_dataset(ENERGY_KEY, data=np.float64(e)).attrs["unit"] = "eV"
            f.create_dataset(FORCE_KEY, data=f_arr).attrs["unit"] = "eV/Angstrom"
            if v_arr is not None:
                f.create_dataset(VIRIAL_KEY, data=v_arr).attrs["unit"] = "eV"
    logger.debug("wrote %s: E = %.6f eV, %d atoms", path, e, f_arr.shape[0])
