"""Read and write DeepH block HDF5 files (hamiltonian.h5, overlap.h5, density_matrix.h5, ...).

File layout (DeepH unified format, see docs/conventions.md, section "1. Data format")::

    atom_pairs        (N, 5)   int64     rows [R1, R2, R3, i, j]: block <phi_i(cell 0)| A |phi_j(cell R)>,
                                         atoms 0-based, R in lattice units
    chunk_shapes      (N, 2)   int64     (rows, cols) of each block
    chunk_boundaries  (N + 1,) int64     offsets into entries, starting at 0
    entries           (M,)     float64   every block flattened row-major, concatenated
                                         (complex128 for spin-orbit / spinful data)

Units are whatever the file holds: eV for Hamiltonians, dimensionless for overlaps
and density matrices. This module only checks the container; the physics checks
(block shapes against ``elements_orbital_map``, partners, spin) live in
:mod:`deeph_tf.data.structure`.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from deeph_tf.atomic_io import atomic_path
from deeph_tf.data.errors import DataFormatError

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
PairKey = Tuple[int, int, int, int, int]

#: Dataset names of a block file, in the order they are written.
BLOCK_DATASETS: Tuple[str, ...] = ("atom_pairs", "chunk_shapes", "chunk_boundaries", "entries")


@dataclass(frozen=True, eq=False)
class BlockSet:
    """The blocks of one operator (H, S, density matrix, ...) of one structure.

    Attributes:
        atom_pairs: [n_pairs, 5] int64, rows ``[R1, R2, R3, i, j]`` (R in lattice
            units, atoms 0-based, order as in the file).
        blocks: ``n_pairs`` arrays; ``blocks[k]`` is the [rows, cols] block of pair k,
            float64 or (all of them) complex128. Read from a file, the blocks are
            views into one contiguous array.
    """

    atom_pairs: np.ndarray
    blocks: List[np.ndarray] = field(repr=False)

    def __post_init__(self) -> None:
        pairs = np.asarray(self.atom_pairs)
        if pairs.size == 0:
            pairs = pairs.reshape(0, 5)
        if pairs.ndim != 2 or pairs.shape[1] != 5:
            raise ValueError(f"atom_pairs must have shape [n_pairs, 5], got {pairs.shape}")
        if not (np.issubdtype(pairs.dtype, np.integer) or pairs.size == 0):
            raise ValueError(f"atom_pairs must be integers, got dtype {pairs.dtype}")
        pairs = np.array(pairs, dtype=np.int64, order="C")  # own copy, read-only below
        pairs.flags.writeable = False
        blocks = list(self.blocks)
        if len(blocks) != len(pairs):
            raise ValueError(f"{len(pairs)} atom pairs but {len(blocks)} blocks")
        is_complex = any(np.iscomplexobj(b) for b in blocks)
        dtype = np.complex128 if is_complex else np.float64
        converted = []
        for k, b in enumerate(blocks):
            b = np.asarray(b)
            if b.ndim != 2:
                raise ValueError(f"block {k} (pair {pairs[k].tolist()}) must be 2-D, got shape {b.shape}")
            if not (np.issubdtype(b.dtype, np.number) and not np.issubdtype(b.dtype, np.bool_)):
                raise ValueError(f"block {k} has non-numeric dtype {b.dtype}")
            converted.append(b if b.dtype == dtype else b.astype(dtype))
        object.__setattr__(self, "atom_pairs", pairs)
        object.__setattr__(self, "blocks", converted)
        object.__setattr__(self, "_index", None)

    def __len__(self) -> int:
        return len(self.blocks)

    @property
    def n_pairs(self) -> int:
        """Number of blocks."""
        return len(self.blocks)

    @property
    def dtype(self) -> np.dtype:
        """float64, or complex128 for complex (spin-orbit) data."""
        if self.blocks:
            return self.blocks[0].dtype
        return np.dtype(np.float64)

    @property
    def is_complex(self) -> bool:
        return np.issubdtype(self.dtype, np.complexfloating)

    def keys(self) -> List[PairKey]:
        """The pairs as tuples ``(R1, R2, R3, i, j)``, in storage order."""
        return [tuple(int(v) for v in row) for row in self.atom_pairs]  # type: ignore[misc]

    def pair_index(self) -> Dict[PairKey, int]:
        """Map ``(R1, R2, R3, i, j)`` -> position in :attr:`atom_pairs` / :attr:`blocks`.

        Returns a new dict on every call (built once and cached).

        Raises:
            ValueError: if a pair occurs twice.
        """
        return dict(self._pair_index())

    def _pair_index(self) -> Dict[PairKey, int]:
        index = self.__dict__.get("_index")
        if index is None:
            index = {}
            for k, key in enumerate(self.keys()):
                if key in index:
                    raise ValueError(f"atom pair {list(key)} occurs twice (rows {index[key]} and {k})")
                index[key] = k
            object.__setattr__(self, "_index", index)
        return index

    def block(self, key: Sequence[int]) -> np.ndarray:
        """The block of pair ``key = (R1, R2, R3, i, j)`` (KeyError if absent)."""
        return self.blocks[self._pair_index()[tuple(int(v) for v in key)]]  # type: ignore[index]

    def missing_partners(self) -> List[PairKey]:
        """Pairs (R, i, j) whose Hermitian partner (-R, j, i) is absent."""
        index = self._pair_index()
        return [k for k in index if (-k[0], -k[1], -k[2], k[4], k[3]) not in index]

    def max_hermiticity_deviation(self) -> float:
        """max |B_ij(R) - B_ji(-R)^dagger| over all pairs whose partner exists (0 if none).

        Raises:
            ValueError: if a block and its partner have incompatible shapes.
        """
        index = self._pair_index()
        worst = 0.0
        for (r1, r2, r3, i, j), k in index.items():
            p = index.get((-r1, -r2, -r3, j, i))
            if p is None or p < k:
                continue
            a, b = self.blocks[k], self.blocks[p]
            if a.shape != b.shape[::-1]:
                raise ValueError(
                    f"block {[r1, r2, r3, i, j]} has shape {a.shape} but its partner "
                    f"{[-r1, -r2, -r3, j, i]} has {b.shape}")
            if a.size:
                worst = max(worst, float(np.max(np.abs(a - b.conj().T))))
        return worst

    def concatenated(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(chunk_shapes [N,2] int64, chunk_boundaries [N+1] int64, entries [M]) as stored on disk."""
        shapes = np.array([b.shape for b in self.blocks], dtype=np.int64).reshape(-1, 2)
        boundaries = np.zeros(len(self.blocks) + 1, dtype=np.int64)
        np.cumsum(shapes[:, 0] * shapes[:, 1], out=boundaries[1:])
        if self.blocks:
            entries = np.concatenate([np.ascontiguousarray(b).reshape(-1) for b in self.blocks])
        else:
            entries = np.zeros(0, dtype=np.float64)
        return shapes, boundaries, entries.astype(self.dtype, copy=False)


def _fail(path: Path, message: str) -> DataFormatError:
    return DataFormatError(path, message)


def _integer_array(path: Path, name: str, value: np.ndarray) -> np.ndarray:
    """Integer dataset as int64; integral floats are accepted, anything else is an error."""
    if np.issubdtype(value.dtype, np.integer):
        return value.astype(np.int64, copy=False)
    if np.issubdtype(value.dtype, np.floating) and value.size and np.all(np.isfinite(value)) \
            and np.all(value == np.round(value)):
        logger.warning("%s: dataset %s holds integral floats (%s); converting to int64", path, name,
                       value.dtype)
        return value.astype(np.int64)
    if value.size == 0:
        return value.astype(np.int64)
    raise _fail(path, f"dataset {name} has dtype {value.dtype} (expected integers, int64)")


def read_block_h5(path: PathLike) -> BlockSet:
    """Read one block HDF5 file and check that it is self-consistent.

    Args:
        path: e.g. ``dft/<sid>/hamiltonian.h5``.

    Returns:
        A :class:`BlockSet`; real files give float64 blocks, complex ones complex128
        (other float/complex precisions are widened).

    Raises:
        DataFormatError: the file is missing, not HDF5 / truncated, lacks a dataset,
            has inconsistent shapes or boundaries, or holds NaN/Inf. The message names
            the file, the problem and what was expected.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise _fail(path, f"block file {what} (expected an HDF5 file with datasets "
                          f"{', '.join(BLOCK_DATASETS)})")
    import h5py  # local: keeps `import deeph_tf.data` light

    data: Dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as f:
            missing = [n for n in BLOCK_DATASETS if n not in f]
            if missing:
                raise _fail(path, f"missing dataset(s) {', '.join(missing)} (found: "
                                  f"{', '.join(sorted(f.keys())) or 'none'}; expected "
                                  f"{', '.join(BLOCK_DATASETS)})")
            for name in BLOCK_DATASETS:
                obj = f[name]
                if not isinstance(obj, h5py.Dataset):
                    raise _fail(path, f"{name} is a {type(obj).__name__}, expected a dataset")
                data[name] = obj[()]
    except DataFormatError:
        raise
    except (OSError, KeyError, RuntimeError) as exc:  # h5py raises OSError for truncated/non-HDF5 files
        raise _fail(path, f"cannot read as HDF5 ({exc}); the file may be truncated, still being "
                          f"written, or not an HDF5 file") from exc

    pairs = np.asarray(data["atom_pairs"])
    shapes = np.asarray(data["chunk_shapes"])
    bounds = np.asarray(data["chunk_boundaries"])
    entries = np.asarray(data["entries"])

    if pairs.size == 0:
        pairs = pairs.reshape(0, 5)
    if pairs.ndim != 2 or pairs.shape[1] != 5:
        raise _fail(path, f"atom_pairs has shape {pairs.shape} (expected (N, 5) rows [R1,R2,R3,i,j])")
    n = pairs.shape[0]
    if shapes.size == 0:
        shapes = shapes.reshape(0, 2)
    if shapes.shape != (n, 2):
        raise _fail(path, f"chunk_shapes has shape {shapes.shape} (expected ({n}, 2), one row per atom pair)")
    if bounds.shape != (n + 1,):
        raise _fail(path, f"chunk_boundaries has shape {bounds.shape} (expected ({n + 1},) = number of "
                          f"atom pairs + 1)")
    if entries.ndim != 1:
        raise _fail(path, f"entries has shape {entries.shape} (expected a 1-D array)")
    pairs = _integer_array(path, "atom_pairs", pairs)
    shapes = _integer_array(path, "chunk_shapes", shapes)
    bounds = _integer_array(path, "chunk_boundaries", bounds)

    if np.any(pairs[:, 3:] < 0):
        k = int(np.argmax(np.any(pairs[:, 3:] < 0, axis=1)))
        raise _fail(path, f"atom_pairs row {k} = {pairs[k].tolist()} has a negative atom index "
                          f"(expected 0-based atom indices)")
    if np.any(shapes < 0):
        k = int(np.argmax(np.any(shapes < 0, axis=1)))
        raise _fail(path, f"chunk_shapes row {k} = {shapes[k].tolist()} is negative")
    if bounds[0] != 0:
        raise _fail(path, f"chunk_boundaries starts at {int(bounds[0])} (expected 0)")
    sizes = shapes[:, 0] * shapes[:, 1]
    bad = np.nonzero(np.diff(bounds) != sizes)[0]
    if bad.size:
        k = int(bad[0])
        raise _fail(path, f"block {k} (pair {pairs[k].tolist()}): chunk_boundaries[{k}:{k + 2}] = "
                          f"{bounds[k:k + 2].tolist()} spans {int(bounds[k + 1] - bounds[k])} values but "
                          f"chunk_shapes[{k}] = {shapes[k].tolist()} needs {int(sizes[k])} "
                          f"(expected consecutive boundaries to differ by rows*cols)")
    if bounds[-1] != entries.shape[0]:
        raise _fail(path, f"chunk_boundaries[-1] = {int(bounds[-1])} but entries has {entries.shape[0]} "
                          f"values (expected the last boundary to equal len(entries))")

    if np.issubdtype(entries.dtype, np.complexfloating):
        entries = entries.astype(np.complex128, copy=False)
    elif np.issubdtype(entries.dtype, np.floating) or np.issubdtype(entries.dtype, np.integer):
        entries = entries.astype(np.float64, copy=False)
    else:
        raise _fail(path, f"entries has dtype {entries.dtype} (expected float64 or complex128)")
    finite = np.isfinite(entries)
    if not finite.all():
        first = int(np.argmin(finite))
        k = int(np.searchsorted(bounds, first, side="right") - 1)
        raise _fail(path, f"entries holds {int(entries.size - finite.sum())} non-finite value(s) (NaN/Inf); "
                          f"first at entries[{first}] in block {k} (pair {pairs[k].tolist()}) "
                          f"(expected finite numbers)")

    blocks = [entries[bounds[k]:bounds[k + 1]].reshape(int(shapes[k, 0]), int(shapes[k, 1]))
              for k in range(n)]
    if n:
        _, first, counts = np.unique(pairs, axis=0, return_index=True, return_counts=True)
        if np.any(counts > 1):
            dup = pairs[first[np.argmax(counts > 1)]]
            rows = np.nonzero(np.all(pairs == dup, axis=1))[0].tolist()
            raise _fail(path, f"atom pair {dup.tolist()} occurs {len(rows)} times (rows {rows}; expected "
                              f"each (R, i, j) once)")
    result = BlockSet(atom_pairs=pairs, blocks=blocks)
    logger.debug("read %s: %d blocks, %d entries, %s", path, n, entries.size, entries.dtype)
    return result


def write_block_h5(path: PathLike, blockset: BlockSet) -> None:
    """Write ``blockset`` to ``path`` atomically in the layout :func:`read_block_h5` reads.

    Datasets are int64 (atom_pairs, chunk_shapes, chunk_boundaries) and float64 or
    complex128 (entries), uncompressed; a round trip is bit-exact. The file is
    written to a temporary file in the same directory, synced, then renamed over
    ``path``: an interrupted write leaves any previous file untouched.

    Raises:
        DataFormatError: if a block holds NaN/Inf or pairs repeat (the file would not
            read back); nothing is written then.
    """
    path = Path(path)
    for k, b in enumerate(blockset.blocks):
        if not np.all(np.isfinite(b)):
            raise _fail(path, f"refusing to write: block {k} (pair {blockset.atom_pairs[k].tolist()}) "
                              f"holds NaN/Inf")
    try:
        blockset.pair_index()
    except ValueError as exc:
        raise _fail(path, f"refusing to write: {exc}") from None
    shapes, bounds, entries = blockset.concatenated()
    import h5py

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("atom_pairs", data=blockset.atom_pairs.astype(np.int64))
            f.create_dataset("chunk_shapes", data=shapes)
            f.create_dataset("chunk_boundaries", data=bounds)
            f.create_dataset("entries", data=entries)
    logger.debug("wrote %s: %d blocks, %s", path, len(blockset), entries.dtype)


def blocks_from_dense(matrix: np.ndarray, orbital_offsets: Sequence[int],
                      atom_pairs: Optional[np.ndarray] = None) -> BlockSet:
    """Cut a dense cell-0 matrix (molecules, Gamma-only data) into atom-pair blocks.

    Args:
        matrix: [n_orb, n_orb] float or complex, rows/columns ordered atom by atom.
        orbital_offsets: [n_atoms + 1] start of each atom's orbitals, last = n_orb.
        atom_pairs: optional [N, 5] pairs to keep (all R must be 0); default all
            (0, 0, 0, i, j) with i, j over atoms, i-major.

    Returns:
        A :class:`BlockSet` with ``blocks[k] = matrix[off[i]:off[i+1], off[j]:off[j+1]]``.
    """
    off = np.asarray(orbital_offsets, dtype=np.int64)
    n_atoms = len(off) - 1
    matrix = np.asarray(matrix)
    if matrix.shape != (off[-1], off[-1]):
        raise ValueError(f"matrix has shape {matrix.shape}, expected ({off[-1]}, {off[-1]}) from the offsets")
    if atom_pairs is None:
        atom_pairs = np.array([[0, 0, 0, i, j] for i in range(n_atoms) for j in range(n_atoms)],
                              dtype=np.int64).reshape(-1, 5)
    atom_pairs = np.asarray(atom_pairs, dtype=np.int64)
    if np.any(atom_pairs[:, :3] != 0):
        raise ValueError("blocks_from_dense only makes R = 0 blocks")
    blocks = [np.array(matrix[off[i]:off[i + 1], off[j]:off[j + 1]]) for *_, i, j in atom_pairs]
    return BlockSet(atom_pairs=atom_pairs, blocks=blocks)


def blocks_to_dense(blockset: BlockSet, orbital_offsets: Sequence[int],
                    k_frac: Optional[Sequence[float]] = None) -> np.ndarray:
    """Assemble the Bloch matrix A(k) = sum_R A(R) exp(2 pi i k.R) from the blocks.

    Args:
        blockset: blocks whose shapes match ``orbital_offsets``.
        orbital_offsets: [n_atoms + 1] start of each atom's rows/columns (spinful data:
            offsets of the doubled blocks), last = matrix size.
        k_frac: k in reciprocal-lattice (fractional) coordinates; default Gamma, where
            real blocks give a real matrix (for a molecule, only R = 0 exists and this
            is simply the dense matrix).

    Returns:
        [n, n] float64 (Gamma, real data) or complex128.
    """
    off = np.asarray(orbital_offsets, dtype=np.int64)
    n = int(off[-1])
    gamma = k_frac is None or not np.any(np.asarray(k_frac, dtype=np.float64))
    dtype = blockset.dtype if gamma else np.complex128
    out = np.zeros((n, n), dtype=dtype)
    k = np.zeros(3) if k_frac is None else np.asarray(k_frac, dtype=np.float64)
    for (r1, r2, r3, i, j), b in zip(blockset.atom_pairs, blockset.blocks):
        target = out[off[i]:off[i + 1], off[j]:off[j + 1]]
        if target.shape != b.shape:
            raise ValueError(f"block {[int(r1), int(r2), int(r3), int(i), int(j)]} has shape {b.shape}, "
                             f"expected {target.shape} from the orbital offsets")
        if gamma:
            target += b
        else:
            target += b * np.exp(2j * np.pi * float(np.dot(k, (r1, r2, r3))))
    return out
