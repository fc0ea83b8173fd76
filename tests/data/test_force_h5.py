"""force.h5: energy (eV), forces (eV/A) and virial (eV) of one structure folder."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from deeph_tf.data.errors import DataFormatError
from deeph_tf.data.force_h5 import FORCE_FILENAME, ForceLabels, read_force_h5, write_force_h5


def _write_raw(path, **datasets):
    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            f[key] = value
    return path


def test_round_trip(tmp_path, rng):
    forces = rng.normal(size=(5, 3))
    virial = rng.normal(size=(3, 3))
    path = tmp_path / FORCE_FILENAME
    write_force_h5(path, -1234.5, forces, virial, attrs={"xc": "PBE", "grid_level": 3})
    labels = read_force_h5(path, n_atoms=5)
    assert isinstance(labels, ForceLabels)
    assert labels.energy == -1234.5 and type(labels.energy) is float
    np.testing.assert_array_equal(labels.forces, forces)
    np.testing.assert_array_equal(labels.virial, virial)
    assert labels.forces.dtype == np.float64 and not labels.forces.flags.writeable
    with h5py.File(path, "r") as f:
        assert f.attrs["xc"] == "PBE" and f.attrs["grid_level"] == 3
        assert f["energy"].shape == () and f["force"].attrs["unit"] == "eV/Angstrom"
    write_force_h5(path, 1.0, forces[:2])  # replaces the old file; no virial
    labels = read_force_h5(path)
    assert labels.energy == 1.0 and labels.forces.shape == (2, 3) and labels.virial is None
    assert [p.name for p in tmp_path.iterdir()] == [FORCE_FILENAME]


def test_alias_shape_1_energy_and_integer_data(tmp_path):
    path = _write_raw(tmp_path / "f.h5", energy=np.array([-3.0]), forces=np.arange(6).reshape(2, 3))
    labels = read_force_h5(path, n_atoms=2)
    assert labels.energy == -3.0
    np.testing.assert_array_equal(labels.forces, np.arange(6.0).reshape(2, 3))
    assert labels.forces.dtype == np.float64
    both = _write_raw(tmp_path / "both.h5", energy=0.0, force=np.zeros((2, 3)), forces=np.zeros((2, 3)))
    with pytest.raises(DataFormatError, match="both force and forces"):
        read_force_h5(both)


def test_stress_becomes_virial(tmp_path, rng):
    lattice = np.array([[4.0, 0.0, 0.0], [1.0, 5.0, 0.0], [0.0, 0.5, 6.0]])  # volume 120 A^3
    stress = rng.normal(size=(3, 3)) * 1e-3  # eV/A^3
    path = _write_raw(tmp_path / "f.h5", energy=1.0, force=np.zeros((1, 3)), stress=stress)
    labels = read_force_h5(path, n_atoms=1, lattice=lattice)
    np.testing.assert_allclose(labels.virial, -stress * 120.0, rtol=1e-12)
    with pytest.raises(DataFormatError, match="f.h5.*stress.*lattice"):
        read_force_h5(path)
    # a virial present wins over the stress
    virial = rng.normal(size=(3, 3))
    path = _write_raw(tmp_path / "g.h5", energy=1.0, force=np.zeros((1, 3)), stress=stress, virial=virial)
    np.testing.assert_array_equal(read_force_h5(path, lattice=lattice).virial, virial)


@pytest.mark.parametrize("datasets, n_atoms, message", [
    ({"force": np.zeros((2, 3))}, None, "no dataset energy"),
    ({"energy": 1.0}, None, "no dataset force"),
    ({"energy": np.zeros(2), "force": np.zeros((2, 3))}, None, "dataset energy has shape"),
    ({"energy": np.nan, "force": np.zeros((2, 3))}, None, "energy = nan"),
    ({"energy": 1.0, "force": np.zeros((2, 2))}, None, r"dataset force has shape \(2, 2\)"),
    ({"energy": 1.0, "force": np.zeros((2, 3))}, 3, "force has 2 rows but the structure has 3 atoms"),
    ({"energy": 1.0, "forces": np.array([[0.0, 0.0, 0.0], [0.0, np.nan, 0.0]])}, None,
     "dataset forces holds non-finite values .first at atom 1"),
    ({"energy": 1.0, "force": np.zeros((2, 3)), "virial": np.zeros(9)}, None, "dataset virial has shape"),
    ({"energy": 1.0, "force": np.zeros((2, 3)), "virial": np.full((3, 3), np.inf)}, None, "virial holds non-finite"),
    ({"energy": b"x", "force": np.zeros((2, 3))}, None, "dataset energy has dtype"),
])
def test_bad_files_name_the_file_and_dataset(tmp_path, datasets, n_atoms, message):
    path = _write_raw(tmp_path / "bad_force.h5", **datasets)
    with pytest.raises(DataFormatError, match=message) as info:
        read_force_h5(path, n_atoms=n_atoms)
    assert info.value.path == str(path) and str(info.value).startswith(str(path))


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(DataFormatError, match="force.h5 not found"):
        read_force_h5(tmp_path / "force.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(DataFormatError, match="junk.h5: cannot read as HDF5"):
        read_force_h5(tmp_path / "junk.h5")


def test_writer_checks_values_and_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / FORCE_FILENAME
    with pytest.raises(DataFormatError, match="non-finite"):
        write_force_h5(path, 0.0, np.array([[np.nan, 0.0, 0.0]]))
    with pytest.raises(DataFormatError, match="virial has shape"):
        write_force_h5(path, 0.0, np.zeros((1, 3)), virial=np.zeros(3))
    assert list(tmp_path.iterdir()) == []

    # A failure in the middle of writing leaves no file (nor a temporary one) ...
    original = h5py.Group.create_dataset

    def failing(self, name, *args, **kwargs):
        if name == "force":
            raise OSError("disk full")
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    with pytest.raises(OSError, match="disk full"):
        write_force_h5(path, 0.0, np.zeros((1, 3)))
    assert list(tmp_path.iterdir()) == []
    # ... and keeps an existing file as it was.
    monkeypatch.setattr(h5py.Group, "create_dataset", original)
    write_force_h5(path, 7.0, np.ones((1, 3)))
    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    with pytest.raises(OSError):
        write_force_h5(path, 0.0, np.zeros((1, 3)))
    monkeypatch.setattr(h5py.Group, "create_dataset", original)
    assert read_force_h5(path).energy == 7.0
    assert [p.name for p in tmp_path.iterdir()] == [FORCE_FILENAME]
