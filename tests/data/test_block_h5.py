"""Block HDF5 files: exact round trips, clear errors, atomic writes."""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from deeph_tf.data import BlockSet, DataFormatError, blocks_from_dense, blocks_to_dense, read_block_h5, \
    write_block_h5


def make_blockset(rng: np.random.Generator, complex_: bool = False) -> BlockSet:
    """Two atoms (5 and 3 orbitals), R in {0, +-(1,0,0)}, Hermitian partners present."""
    n = [5, 3]
    blocks = {}
    for r in [(0, 0, 0), (1, 0, 0)]:
        for i in range(2):
            for j in range(2):
                key = (*r, i, j)
                partner = (-r[0], -r[1], -r[2], j, i)
                if partner in blocks:
                    b = blocks[partner].conj().T
                else:
                    b = rng.normal(size=(n[i], n[j]))
                    if complex_:
                        b = b + 1j * rng.normal(size=(n[i], n[j]))
                    if key == partner:
                        b = (b + b.conj().T) / 2
                blocks[key] = b
                blocks.setdefault(partner, b.conj().T)
    keys = list(blocks)
    rng.shuffle(keys)  # real files store pairs in arbitrary order
    return BlockSet(atom_pairs=np.array(keys, dtype=np.int64), blocks=[blocks[k] for k in keys])


def raw_write(path: Path, **datasets) -> None:
    with h5py.File(path, "w") as f:
        for name, value in datasets.items():
            f.create_dataset(name, data=value)


def valid_datasets():
    return dict(atom_pairs=np.array([[0, 0, 0, 0, 0], [0, 0, 0, 0, 1]], dtype=np.int64),
                chunk_shapes=np.array([[2, 2], [2, 3]], dtype=np.int64),
                chunk_boundaries=np.array([0, 4, 10], dtype=np.int64),
                entries=np.arange(10, dtype=np.float64))


@pytest.mark.parametrize("complex_", [False, True], ids=["float64", "complex128"])
def test_round_trip_is_bit_exact(tmp_path, rng, complex_):
    bs = make_blockset(rng, complex_)
    path = tmp_path / "hamiltonian.h5"
    write_block_h5(path, bs)
    back = read_block_h5(path)
    assert back.dtype == (np.complex128 if complex_ else np.float64)
    np.testing.assert_array_equal(back.atom_pairs, bs.atom_pairs)
    assert back.atom_pairs.dtype == np.int64
    for a, b in zip(back.blocks, bs.blocks):
        assert a.shape == b.shape
        assert a.tobytes() == b.tobytes()
    with h5py.File(path, "r") as f:
        assert {k: f[k].dtype for k in f} == {
            "atom_pairs": np.int64, "chunk_shapes": np.int64, "chunk_boundaries": np.int64,
            "entries": np.complex128 if complex_ else np.float64}
        assert f["chunk_boundaries"][0] == 0 and f["chunk_boundaries"][-1] == f["entries"].shape[0]
    # the file layout: row-major flattening, concatenated in pair order
    shapes, bounds, entries = bs.concatenated()
    k = 3
    np.testing.assert_array_equal(entries[bounds[k]:bounds[k + 1]], bs.blocks[k].reshape(-1))


def test_blockset_helpers(rng):
    bs = make_blockset(rng)
    index = bs.pair_index()
    assert len(index) == len(bs) == bs.n_pairs == 12
    for key, k in index.items():
        assert tuple(bs.atom_pairs[k]) == key
        assert bs.block(key) is bs.blocks[k]
    assert bs.missing_partners() == []
    assert bs.max_hermiticity_deviation() < 1e-15
    assert not bs.is_complex
    assert make_blockset(rng, True).is_complex


def test_blockset_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        BlockSet(atom_pairs=np.zeros((2, 4), dtype=np.int64), blocks=[np.zeros((1, 1))] * 2)
    with pytest.raises(ValueError, match="2 atom pairs but 1 blocks"):
        BlockSet(atom_pairs=np.zeros((2, 5), dtype=np.int64), blocks=[np.zeros((1, 1))])
    bs = BlockSet(atom_pairs=np.zeros((2, 5), dtype=np.int64), blocks=[np.zeros((1, 1))] * 2)
    with pytest.raises(ValueError, match="occurs twice"):
        bs.pair_index()


def test_missing_partner_and_hermiticity(rng):
    pairs = np.array([[0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [1, 0, 0, 0, 1]])
    a = rng.normal(size=(2, 3))
    bs = BlockSet(atom_pairs=pairs, blocks=[a, a.T + 1e-3, a])
    assert bs.missing_partners() == [(1, 0, 0, 0, 1)]
    assert bs.max_hermiticity_deviation() == pytest.approx(1e-3)


def test_dense_helpers_round_trip(rng):
    off = [0, 5, 8, 9]
    m = rng.normal(size=(9, 9))
    bs = blocks_from_dense(m, off)
    assert len(bs) == 9 and bs.blocks[1].shape == (5, 3)
    np.testing.assert_array_equal(blocks_to_dense(bs, off), m)
    # Bloch sum over R
    pairs = np.array([[0, 0, 0, 0, 0], [1, 0, 0, 0, 0], [-1, 0, 0, 0, 0]])
    h = BlockSet(atom_pairs=pairs, blocks=[np.eye(1), np.full((1, 1), 0.5), np.full((1, 1), 0.5)])
    assert blocks_to_dense(h, [0, 1])[0, 0] == 2.0
    assert blocks_to_dense(h, [0, 1], k_frac=[0.5, 0, 0])[0, 0] == pytest.approx(0.0)


# ---------------------------------------------------------------------------- errors
def assert_error(path: Path, *fragments: str) -> DataFormatError:
    with pytest.raises(DataFormatError) as info:
        read_block_h5(path)
    message = str(info.value)
    assert path.name in message and str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    assert isinstance(info.value, ValueError)
    return info.value


def test_missing_file(tmp_path):
    assert_error(tmp_path / "hamiltonian.h5", "does not exist", "atom_pairs")


def test_directory_instead_of_file(tmp_path):
    (tmp_path / "overlap.h5").mkdir()
    assert_error(tmp_path / "overlap.h5", "directory")


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.05])
def test_truncated_file(tmp_path, rng, keep):
    path = tmp_path / "hamiltonian.h5"
    write_block_h5(path, make_blockset(rng))
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(int(size * keep))
    assert_error(path, "cannot read as HDF5", "truncated")


def test_not_hdf5(tmp_path):
    path = tmp_path / "overlap.h5"
    path.write_text("atom_pairs,entries\n1,2\n")
    assert_error(path, "cannot read as HDF5")


def test_empty_file(tmp_path):
    path = tmp_path / "overlap.h5"
    path.write_bytes(b"")
    assert_error(path, "cannot read as HDF5")


def test_missing_dataset(tmp_path):
    path = tmp_path / "hamiltonian.h5"
    data = valid_datasets()
    del data["chunk_boundaries"]
    raw_write(path, **data)
    assert_error(path, "missing dataset(s) chunk_boundaries", "found: atom_pairs, chunk_shapes, entries")


def test_group_instead_of_dataset(tmp_path):
    path = tmp_path / "hamiltonian.h5"
    data = valid_datasets()
    del data["entries"]
    raw_write(path, **data)
    with h5py.File(path, "a") as f:
        f.create_group("entries")
    assert_error(path, "entries is a Group")


@pytest.mark.parametrize("change, fragments", [
    (dict(chunk_boundaries=np.array([1, 5, 11])), ["starts at 1", "expected 0"]),
    (dict(chunk_boundaries=np.array([0, 5, 10])), ["block 0", "[0, 5]", "needs 4"]),
    (dict(chunk_boundaries=np.array([0, 4, 9])), ["block 1", "needs 6"]),
    (dict(entries=np.arange(11.0)), ["chunk_boundaries[-1] = 10", "entries has 11"]),
    (dict(chunk_boundaries=np.array([0, 4])), ["chunk_boundaries has shape (2,)", "expected (3,)"]),
    (dict(chunk_shapes=np.array([[2, 2]])), ["chunk_shapes has shape (1, 2)", "expected (2, 2)"]),
    (dict(atom_pairs=np.zeros((2, 3), dtype=np.int64)), ["atom_pairs has shape (2, 3)", "(N, 5)"]),
    (dict(atom_pairs=np.array([[0, 0, 0, 0, 0], [0, 0, 0, -1, 1]])), ["negative atom index"]),
    (dict(atom_pairs=np.array([[0, 0, 0, 0, 0], [0, 0, 0, 0, 0]])), ["occurs 2 times", "rows [0, 1]"]),
    (dict(chunk_shapes=np.array([[2, 2], [-2, -3]])), ["chunk_shapes row 1", "negative"]),
    (dict(entries=np.arange(10.0).reshape(2, 5)), ["entries has shape (2, 5)", "1-D"]),
    (dict(atom_pairs=np.array([[0, 0, 0, 0, 0.5], [0, 0, 0, 0, 1]])), ["dtype float64", "int64"]),
    (dict(entries=np.array([b"x"] * 10)), ["entries has dtype"]),
])
def test_inconsistent_datasets(tmp_path, change, fragments):
    path = tmp_path / "hamiltonian.h5"
    data = valid_datasets()
    data.update(change)
    raw_write(path, **data)
    assert_error(path, *fragments)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_entries(tmp_path, bad):
    path = tmp_path / "hamiltonian.h5"
    data = valid_datasets()
    data["entries"][6] = bad
    raw_write(path, **data)
    assert_error(path, "non-finite", "entries[6]", "block 1", "[0, 0, 0, 0, 1]")


def test_other_precisions_are_widened(tmp_path):
    path = tmp_path / "hamiltonian.h5"
    data = valid_datasets()
    data["entries"] = data["entries"].astype(np.float32)
    data["atom_pairs"] = data["atom_pairs"].astype(np.int32)
    raw_write(path, **data)
    bs = read_block_h5(path)
    assert bs.dtype == np.float64 and bs.atom_pairs.dtype == np.int64
    np.testing.assert_array_equal(bs.blocks[1], np.arange(4.0, 10.0).reshape(2, 3))


def test_empty_blockset_round_trip(tmp_path):
    path = tmp_path / "empty.h5"
    write_block_h5(path, BlockSet(atom_pairs=np.zeros((0, 5), dtype=np.int64), blocks=[]))
    bs = read_block_h5(path)
    assert len(bs) == 0 and bs.atom_pairs.shape == (0, 5)


# ---------------------------------------------------------------------------- writing
def test_write_refuses_nan(tmp_path):
    bs = BlockSet(atom_pairs=np.zeros((1, 5), dtype=np.int64), blocks=[np.array([[np.nan]])])
    path = tmp_path / "hamiltonian.h5"
    with pytest.raises(DataFormatError, match="hamiltonian.h5.*NaN"):
        write_block_h5(path, bs)
    assert list(tmp_path.iterdir()) == []


def _fail_on_entries(monkeypatch):
    original = h5py.Group.create_dataset

    def create_dataset(self, name, *args, **kwargs):
        if name == "entries":
            raise OSError("No space left on device (simulated)")
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", create_dataset)


def test_interrupted_write_leaves_nothing(tmp_path, rng, monkeypatch):
    path = tmp_path / "hamiltonian.h5"
    _fail_on_entries(monkeypatch)
    with pytest.raises(OSError, match="simulated"):
        write_block_h5(path, make_blockset(rng))
    assert list(tmp_path.iterdir()) == [], "no target and no temporary file may remain"


def test_interrupted_write_keeps_previous_file(tmp_path, rng, monkeypatch):
    path = tmp_path / "hamiltonian.h5"
    old = make_blockset(rng)
    write_block_h5(path, old)
    before = path.read_bytes()
    _fail_on_entries(monkeypatch)
    with pytest.raises(OSError, match="simulated"):
        write_block_h5(path, make_blockset(rng, complex_=True))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hamiltonian.h5"]
    assert read_block_h5(path).blocks[0].tobytes() == old.blocks[0].tobytes()


def test_failed_rename_keeps_previous_file(tmp_path, rng, monkeypatch):
    path = tmp_path / "overlap.h5"
    write_block_h5(path, make_blockset(rng))
    before = path.read_bytes()

    def replace(src, dst):
        raise KeyboardInterrupt  # e.g. Ctrl-C at the worst moment

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        write_block_h5(path, make_blockset(rng))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["overlap.h5"]


def test_overwrite_replaces_content_and_keeps_mode(tmp_path, rng):
    path = tmp_path / "hamiltonian.h5"
    write_block_h5(path, make_blockset(rng))
    os.chmod(path, 0o640)
    new = make_blockset(rng, complex_=True)
    write_block_h5(path, new)
    assert read_block_h5(path).is_complex
    assert path.stat().st_mode & 0o777 == 0o640
