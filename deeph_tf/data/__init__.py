"""Reading and writing the DeepH unified DFT data format (no TensorFlow here).

- :mod:`~deeph_tf.data.block_h5`: block HDF5 files (hamiltonian.h5, overlap.h5, ...) <-> :class:`BlockSet`.
- :mod:`~deeph_tf.data.poscar`: VASP 5 POSCAR <-> :class:`Poscar` (Angstrom, Cartesian).
- :mod:`~deeph_tf.data.structure`: info.json and one structure folder (:class:`StructureFolder`).

Every reader raises :class:`DataFormatError` (a ``ValueError``) naming the file and
the problem; every writer replaces its target atomically.
"""
from deeph_tf.data.block_h5 import (BlockSet, blocks_from_dense, blocks_to_dense, read_block_h5,
                                    write_block_h5)
from deeph_tf.data.errors import DataFormatError
from deeph_tf.data.poscar import Poscar, read_poscar, write_poscar
from deeph_tf.data.structure import (REQUIRED_INFO_KEYS, StructureFolder, is_structure_folder,
                                     load_structure, read_info_json, validate_info, write_info_json)

__all__ = [
    "BlockSet", "DataFormatError", "Poscar", "REQUIRED_INFO_KEYS", "StructureFolder",
    "blocks_from_dense", "blocks_to_dense", "is_structure_folder", "load_structure",
    "read_block_h5", "read_info_json", "read_poscar", "validate_info", "write_block_h5",
    "write_info_json", "write_poscar",
]
