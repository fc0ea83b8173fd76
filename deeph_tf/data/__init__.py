"""Reading and writing the DeepH unified DFT data format (no TensorFlow here).

- :mod:`~deeph_tf.data.block_h5`: block HDF5 files (hamiltonian.h5, overlap.h5, ...) <-> :class:`BlockSet`.
- :mod:`~deeph_tf.data.poscar`: VASP 5 POSCAR <-> :class:`Poscar` (Angstrom, Cartesian).
- :mod:`~deeph_tf.data.structure`: info.json and one structure folder (:class:`StructureFolder`).

Every reader raises :class:`DataFormatError` (a ``ValueError``) naming the file and
the problem; every writer replaces its target atomically.

The names below are imported on first use (``from deeph_tf.data import BlockSet``), so
``from deeph_tf.data import keys`` does not pull in h5py or scipy.
"""
from __future__ import annotations

import importlib

#: Public name -> the module defining it.
_EXPORTS = {
    "BlockSet": "block_h5", "blocks_from_dense": "block_h5", "blocks_to_dense": "block_h5",
    "read_block_h5": "block_h5", "write_block_h5": "block_h5",
    "DataFormatError": "errors",
    "Poscar": "poscar", "read_poscar": "poscar", "write_poscar": "poscar",
    "REQUIRED_INFO_KEYS": "structure", "StructureFolder": "structure", "is_structure_folder": "structure",
    "load_structure": "structure", "read_info_json": "structure", "validate_info": "structure",
    "write_info_json": "structure",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
