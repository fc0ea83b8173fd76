"""tools/make_pyscf_dataset.py and the committed tests/fixtures/mixed_molecules dataset."""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.linalg

from deeph_tf.data import blocks_to_dense, load_structure, read_block_h5, read_poscar, write_block_h5
from deeph_tf.data.force_h5 import FORCE_FILENAME, read_force_h5, write_force_h5

from conftest import REPO_ROOT

import make_pyscf_dataset as tool  # tools/ is on the path (setup.cfg, [tool:pytest] pythonpath)

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "mixed_molecules"
#: Cheap settings for generator tests: minimal basis, coarse grid.
FAST = ["--molecule", "water", "--basis", "sto-3g", "--grid-level", "1", "--conv-tol", "1e-9"]


def _run(out: Path, *extra: str) -> int:
    return tool.main(["--out", str(out), *FAST, *extra])


@pytest.fixture(scope="module")
def water_run(tmp_path_factory) -> Path:
    """Two water structures (PBE/sto-3g), serial, made once for the module; tests copy it."""
    out = tmp_path_factory.mktemp("water_run")
    assert _run(out, "--n-structures", "2", "--workers", "1") == 0
    return out


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# ----------------------------------------------------------------------------- generator
def test_generates_complete_structures_that_validate(water_run):
    folders = sorted(p.name for p in (water_run / "dft").iterdir())
    assert folders == ["000000", "000001"]
    assert not (water_run / tool.PARTIAL_DIRNAME).exists()
    for name in folders:
        folder = water_run / "dft" / name
        assert sorted(p.name for p in folder.iterdir()) == sorted(tool.REQUIRED_FILES)
        st = load_structure(folder)
        assert st.species == ["O", "H", "H"]
        assert st.elements_orbital_map == {"O": [0, 0, 1], "H": [0]}
        assert st.info["occupation"] == 10 and st.info["basis"] == "PBE/sto-3g"
        e = np.loadtxt(folder / tool.MO_ENERGY_FILE)
        assert st.fermi_energy_eV == pytest.approx((e[4] + e[5]) / 2)
        pairs = st.read_blocks("hamiltonian").atom_pairs
        assert sorted(map(tuple, pairs.tolist())) == [(0, 0, 0, i, j) for i in range(3) for j in range(3)]
    assert tool.main(["--validate", str(water_run)]) == 0
    assert tool.main(["--validate", str(water_run / "dft")]) == 0


def test_rerun_skips_complete_structures(water_run, tmp_path):
    out = _copy(water_run, tmp_path / "run")
    before = {p: p.stat().st_mtime_ns for p in (out / "dft").rglob("*") if p.is_file()}
    settings = tool.Settings(out=out, basis="sto-3g", grid_level=1, conv_tol=1e-9)
    summary = tool.generate(tool.plan(["water"], 2), settings, workers=1)
    assert summary["skipped"] == ["000000", "000001"] and summary["computed"] == []
    assert before == {p: p.stat().st_mtime_ns for p in (out / "dft").rglob("*") if p.is_file()}


def test_incomplete_structure_is_regenerated(water_run, tmp_path):
    out = _copy(water_run, tmp_path / "run")
    (out / "dft" / "000001" / "hamiltonian.h5").unlink()
    stale = out / tool.PARTIAL_DIRNAME / "000001.99999999"  # what a killed run leaves behind
    _copy(out / "dft" / "000001", stale)
    with pytest.raises(AssertionError, match="000001.*hamiltonian.h5"):
        tool.validate(out)
    settings = tool.Settings(out=out, basis="sto-3g", grid_level=1, conv_tol=1e-9)
    summary = tool.generate(tool.plan(["water"], 2), settings, workers=1)
    assert summary["computed"] == ["000001"] and summary["skipped"] == ["000000"]
    assert not (out / tool.PARTIAL_DIRNAME).exists()
    assert tool.main(["--validate", str(out)]) == 0
    for name in ("000000", "000001"):
        assert (out / "dft" / name / "POSCAR").read_bytes() == (water_run / "dft" / name / "POSCAR").read_bytes()


def test_existing_structure_with_other_settings_is_an_error(water_run, tmp_path):
    out = _copy(water_run, tmp_path / "run")
    assert _run(out, "--n-structures", "2", "--workers", "1", "--seed", "5") == 2
    assert _run(out, "--n-structures", "2", "--workers", "1", "--basis", "6-31g") == 2


def test_structures_independent_of_workers_and_splits(water_run, tmp_path):
    parallel = tmp_path / "parallel"
    assert _run(parallel, "--n-structures", "2", "--workers", "2") == 0
    split = tmp_path / "split"
    assert _run(split, "--n-structures", "1", "--start-index", "1", "--workers", "1") == 0
    assert _run(split, "--n-structures", "1", "--start-index", "0", "--workers", "1") == 0
    for name in ("000000", "000001"):
        ref = water_run / "dft" / name
        for other in (parallel, split):
            assert (other / "dft" / name / "POSCAR").read_bytes() == (ref / "POSCAR").read_bytes()
            h_ref = read_block_h5(ref / "hamiltonian.h5")
            h_other = read_block_h5(other / "dft" / name / "hamiltonian.h5")
            np.testing.assert_allclose(np.concatenate([b.ravel() for b in h_other.blocks]),
                                       np.concatenate([b.ravel() for b in h_ref.blocks]), atol=1e-7)
    assert (water_run / "dft" / "000000" / "POSCAR").read_bytes() != \
        (water_run / "dft" / "000001" / "POSCAR").read_bytes()


def test_validate_names_a_corrupted_structure(water_run, tmp_path, caplog):
    out = _copy(water_run, tmp_path / "run")
    path = out / "dft" / "000001" / "hamiltonian.h5"
    st = load_structure(out / "dft" / "000001")
    h = st.read_blocks("hamiltonian")
    h.blocks[0][0, 0] += 1e-3  # on-site s-s of O: still Hermitian, spectrum moves
    write_block_h5(path, h)
    with caplog.at_level(logging.ERROR, logger="make_pyscf_dataset"):
        assert tool.main(["--validate", str(out)]) == 1
    assert "000001" in caplog.text and "eigenvalues" in caplog.text


# ----------------------------------------------------------------------------- --forces
HARTREE_TO_EV_REF = 27.2113845


def _pyscf_energy_ev(species, positions, conv_tol=1e-11) -> float:
    """PBE/sto-3g, grid level 1 total energy (eV) straight from PySCF, positions in A."""
    from pyscf import dft, gto

    mol = gto.M(atom=[(s, tuple(p)) for s, p in zip(species, positions)], basis="sto-3g", unit="Angstrom",
                verbose=0)
    mf = dft.RKS(mol)
    mf.xc = "PBE"
    mf.grids.level = 1
    mf.conv_tol = conv_tol
    return mf.kernel() * HARTREE_TO_EV_REF


def test_forces_match_pyscf_energy_and_finite_differences(tmp_path, caplog):
    out = tmp_path / "forces"
    assert _run(out, "--conv-tol", "1e-11", "--workers", "1", "--forces") == 0
    folder = out / "dft" / "000000"
    assert sorted(p.name for p in folder.iterdir()) == sorted(tool.required_files(forces=True))
    assert "forces=true" in (folder / "POSCAR").read_text().splitlines()[0]
    poscar = read_poscar(folder / "POSCAR")
    labels = read_force_h5(folder / FORCE_FILENAME, n_atoms=3)
    with h5py.File(folder / FORCE_FILENAME, "r") as f:
        assert f.attrs["basis"] == "sto-3g" and f.attrs["grid_level"] == 1 and bool(f.attrs["grid_response"])
    # energy in eV: PySCF's e_tot * 27.2113845
    assert labels.energy == pytest.approx(_pyscf_energy_ev(poscar.species, poscar.positions), abs=1e-6)
    # forces in eV/A: minus a central finite difference of PySCF energies, along one coordinate
    h, atom, axis = 1e-3, 1, 1
    energies = []
    for sign in (1, -1):
        pos = poscar.positions.copy()
        pos[atom, axis] += sign * h
        energies.append(_pyscf_energy_ev(poscar.species, pos))
    fd = -(energies[0] - energies[1]) / (2 * h)
    assert abs(labels.forces[atom, axis]) > 0.1  # a real force, not a symmetry zero
    assert labels.forces[atom, axis] == pytest.approx(fd, abs=1e-3)
    np.testing.assert_allclose(labels.forces.sum(axis=0), 0.0, atol=1e-3)  # no net force on a molecule
    # --validate checks force.h5 with its own finite difference
    summary = tool.validate(out, check_forces=1)
    assert summary["n_force_files"] == 1 and summary["force_fd_err"] < 1e-3 and summary["energy_fd_err"] < 1e-3
    assert tool.main(["--validate", str(out), "--check-forces", "1"]) == 0
    write_force_h5(folder / FORCE_FILENAME, labels.energy, labels.forces * 1.01, attrs=dict(h5py.File(
        folder / FORCE_FILENAME, "r").attrs))
    with caplog.at_level(logging.ERROR, logger="make_pyscf_dataset"):
        assert tool.main(["--validate", str(out), "--check-forces", "1"]) == 1
    assert "finite difference" in caplog.text and "000000" in caplog.text
    assert tool.main(["--validate", str(out), "--check-forces", "0"]) == 0  # shapes only


def test_forces_resume_needs_force_h5(water_run, tmp_path):
    out = _copy(water_run, tmp_path / "run")  # made without --forces
    folder = out / "dft" / "000001"
    assert tool.is_complete(folder) and not tool.is_complete(folder, forces=True)
    assert tool.missing_files(folder, forces=True) == [FORCE_FILENAME]
    poscar_before = (folder / "POSCAR").read_bytes()
    settings = tool.Settings(out=out, basis="sto-3g", grid_level=1, conv_tol=1e-9, forces=True)
    summary = tool.generate(tool.plan(["water"], 1, start_index=1), settings, workers=1)
    assert summary["computed"] == ["000001"] and summary["skipped"] == []
    assert (folder / FORCE_FILENAME).is_file() and not (out / "dft" / "000000" / FORCE_FILENAME).exists()
    geometry = lambda b: b.decode().splitlines()[1:]  # noqa: E731
    assert geometry((folder / "POSCAR").read_bytes()) == geometry(poscar_before)  # same structure
    # force.h5 in some structures only: a mixed dataset
    with pytest.raises(AssertionError, match="000000: no force.h5, but 1 of 2 structures"):
        tool.validate(out, check_forces=0)
    summary = tool.generate(tool.plan(["water"], 1, start_index=1), settings, workers=1)
    assert summary["skipped"] == ["000001"]  # complete with force.h5: not recomputed
    # a complete folder made with another grid level is an error, not a silent mix
    other = tool.Settings(out=out, basis="sto-3g", grid_level=2, conv_tol=1e-9, forces=True)
    with pytest.raises(ValueError, match="grid_level 1 != 2"):
        tool.generate(tool.plan(["water"], 1, start_index=1), other, workers=1)


def test_plan_names_molecules_and_geometry():
    assert tool.molecule_names(["mix"]) == list(tool.MIX_MOLECULES)
    assert tool.molecule_names(["water,HCN", "water"]) == ["water", "hydrogen_cyanide"]
    with pytest.raises(ValueError, match="unknown molecule"):
        tool.molecule_names(["benzene"])
    assert set(tool.MD17_MOLECULES) <= set(tool.MOLECULES)
    tasks = tool.plan(["water", "ethanol"], 3, start_index=2)
    assert [(t.index, t.molecule, t.name) for t in tasks] == [
        (2, "water", "water-000002"), (3, "ethanol", "ethanol-000003"), (4, "water", "water-000004")]
    assert [t.name for t in tool.plan(["uracil"], 2)] == ["000000", "000001"]

    plain = tool.Settings(out=Path("."), seed=3)
    rotated = tool.Settings(out=Path("."), seed=3, rotate=True)
    s, p, euler = tool.structure_geometry("ethanol", 4, plain)
    s2, p2, euler2 = tool.structure_geometry("ethanol", 4, rotated)
    assert s == s2 == list(tool.MOLECULES["ethanol"].species) and euler is None and euler2 is not None
    np.testing.assert_array_equal(p, tool.structure_geometry("ethanol", 4, plain)[1])  # reproducible
    assert np.allclose(p.mean(axis=0), 10.0) and np.allclose(p2.mean(axis=0), 10.0)
    dist = lambda x: np.linalg.norm(x[:, None] - x[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(dist(p2), dist(p), atol=1e-12)  # same displacements, then rotated
    # seed + k: structure k of seed 3 is structure k + 1 of seed 2
    np.testing.assert_array_equal(p, tool.structure_geometry("ethanol", 5, tool.Settings(out=Path("."), seed=2))[1])
    # displacements have the requested spread around the equilibrium geometry
    eq = tool.MOLECULES["uracil"].coordinates()
    disp = []
    for k in range(200):
        pos = tool.structure_geometry("uracil", k, tool.Settings(out=Path(".")))[1]
        disp.append((pos - pos.mean(axis=0)) - (eq - eq.mean(axis=0)))
    assert np.std(disp) == pytest.approx(0.05 * np.sqrt(11 / 12), rel=0.05)  # centring removes 1 of 12 dof


def test_equilibrium_geometries_are_sane():
    for name, mol in tool.MOLECULES.items():
        pos = mol.coordinates()
        d = np.linalg.norm(pos[:, None] - pos[None], axis=-1) + 10 * np.eye(len(pos))
        if name in tool.SOC_MOLECULES:  # heavy-atom diatomics: H-Br 1.41 A ... I-I 2.67 A
            assert len(pos) == 2 and 1.4 < d.min() < 2.7, name
        else:
            assert 0.9 < d.min() < 1.2, name  # X-H bonds
        assert np.allclose(pos.mean(axis=0), 0.0, atol=1e-5), name


# ----------------------------------------------------------------------------- committed fixture
def test_fixture_validates_against_pyscf_eigenvalues():
    summary = tool.validate(FIXTURE)
    assert summary["eig_err"] < 1e-6 and summary["herm_err"] < 1e-8


def test_fixture_loads_and_covers_elements_and_shells():
    folders = sorted((FIXTURE / "dft").iterdir())
    assert len(folders) == 8
    assert {f.name.rsplit("-", 1)[0] for f in folders} == set(tool.MIX_MOLECULES)
    elements, shells = set(), set()
    for folder in folders:
        st = load_structure(folder)
        assert st.info["basis"] == "PBE/def2-SVP" and not st.spinful
        elements |= set(st.species)
        for ls in st.elements_orbital_map.values():
            shells |= set(ls)
        off = st.atom_orbital_offsets()
        h = blocks_to_dense(st.read_blocks("hamiltonian"), off)
        s = blocks_to_dense(st.read_blocks("overlap"), off)
        d = blocks_to_dense(st.read_blocks("density_matrix"), off)
        assert np.trace(d @ s) == pytest.approx(st.info["occupation"], abs=1e-6)
        e = scipy.linalg.eigh(h, s, eigvals_only=True)
        n_occ = st.info["occupation"] // 2
        assert e[n_occ - 1] < st.fermi_energy_eV < e[n_occ]
    assert elements == {"H", "C", "N", "O"}
    assert shells == {0, 1, 2}
    total = sum(p.stat().st_size for p in FIXTURE.rglob("*") if p.is_file())
    assert total < 1.5e6


# ----------------------------------------------------------------------------- entry points
@pytest.mark.parametrize("script", ["make_pyscf_dataset.py", "make_rotated_water.py"])
def test_tool_scripts_leave_sys_path_alone(script, tmp_path):
    """The scripts import the pyscf_data package as a sibling; loading one does not edit sys.path."""
    code = ("import runpy, sys; before = list(sys.path); "
            f"runpy.run_path({str(REPO_ROOT / 'tools' / script)!r}, run_name='loaded'); "
            "assert sys.path == before, sorted(set(sys.path) - set(before))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(REPO_ROOT / "tools")  # what running the script puts first on the path
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("argv, cwd", [([str(REPO_ROOT / "tools" / "make_pyscf_dataset.py")], "tmp"),
                                       (["-m", "tools.pyscf_data"], "repo")])
def test_the_generator_runs_as_a_script_and_as_a_module(argv, cwd, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, *argv, "--help"], cwd=tmp_path if cwd == "tmp" else REPO_ROOT,
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--check-forces" in result.stdout and "mix = methane,ammonia" in result.stdout
