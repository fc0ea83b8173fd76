"""tools/make_cp2k_dataset.py (tools/cp2k_data) and the committed tests/fixtures/hbn_cp2k dataset.

The fixture (3 displaced primitive hBN cells, SZV-MOLOPT-SR-GTH, blocks within 7 A) and the raw
CP2K run of its first structure were made with::

    python tools/make_cp2k_dataset.py --out OUT --material hBN --supercell 1 1 1 --sigma 0.1 \
        --seed 5 --n-structures 3 --block-radius 7.0 --mpi-procs 1 --keep-cp2k-files --band-points 4

(OUT/cp2k_runs/hBN-000000 without the restart files, tarred); BASIS_MOLOPT holds the B and N
SZV-MOLOPT-SR-GTH entries of CP2K's basis file (cp2k-data 2023.1). CI has no CP2K: the generator
driver is tested with a stand-in executable that replays that run; a real CP2K run is tested
where ``cp2k.psmp`` exists.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from deeph_tf.data import load_structure, read_block_h5

from conftest import REPO_ROOT

import cp2k_data.blocks as blocks_module  # tools/ is on the path (setup.cfg, [tool:pytest] pythonpath)
from cp2k_data import main as tool_main
from cp2k_data.blocks import hamiltonian_scale, image_blocks, pair_distances
from cp2k_data.cp2k_output import basis_shells, read_run
from cp2k_data.validate import blocks_band_energies, pyscf_overlap_error, validate

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "hbn_cp2k"
RAW = FIXTURE / "cp2k_run_hBN-000000.tar.gz"
#: The settings of the fixture (see the module docstring).
FIXTURE_ARGS = ["--material", "hBN", "--supercell", "1", "1", "1", "--sigma", "0.1", "--seed", "5",
                "--block-radius", "7.0", "--mpi-procs", "1", "--band-points", "4"]


@pytest.fixture(scope="module")
def raw_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cp2k_raw")
    with tarfile.open(RAW) as tar:
        tar.extractall(out, filter="data")
    return out


def _shells() -> dict:
    """hBN's SZV-MOLOPT-SR-GTH shells, as info.json of the fixture records them."""
    return load_structure(FIXTURE / "dft" / "hBN-000000").elements_orbital_map


def _convert(raw: Path, radius: float):
    structure = load_structure(FIXTURE / "dft" / "hBN-000000")
    run = read_run(raw, "deeph", "cp2k.log", "bands.out")
    offsets = structure.atom_orbital_offsets()
    out, _ = image_blocks(run.cells, {"hamiltonian": run.hamiltonian, "overlap": run.overlap}, offsets,
                          structure.poscar.positions, structure.poscar.lattice, radius, hamiltonian_scale())
    return structure, run, out


def test_blocks_of_every_cp2k_image_reproduce_cp2k_bands(raw_run):
    """Bloch sums of the converted blocks (this project's Bloch code) = CP2K's own band energies,
    at k-points on no SCF mesh, over every band CP2K printed."""
    structure, run, out = _convert(raw_run, 0.0)
    energies = blocks_band_energies(out["hamiltonian"], out["overlap"], structure.atom_orbital_offsets(), run.band_k)
    assert run.band_energies_eV.shape[1] == structure.n_orbitals
    assert np.abs(energies - run.band_energies_eV).max() < 1e-5


def test_committed_folder_is_the_conversion_of_the_raw_run(raw_run):
    """The fixture's hamiltonian.h5 / overlap.h5 = the raw run converted with the 7 A radius."""
    structure, _, out = _convert(raw_run, 7.0)
    for name in ("hamiltonian", "overlap"):
        stored = read_block_h5(structure.path / f"{name}.h5")
        assert np.array_equal(stored.atom_pairs, out[name].atom_pairs)
        assert all(np.array_equal(a, b) for a, b in zip(stored.blocks, out[name].blocks))


def test_overlap_blocks_equal_pyscf_analytic_overlaps():
    """Pins the orbital order, the real-harmonic signs and the R convention (to 1e-8)."""
    for sid in ("hBN-000000", "hBN-000001"):
        assert pyscf_overlap_error(load_structure(FIXTURE / "dft" / sid), "SZV-MOLOPT-SR-GTH") < 1e-7


def test_without_the_wrap_shift_the_blocks_are_misplaced(raw_run, monkeypatch):
    """CP2K counts images from the wrapped atoms (here N is wrapped by (1, 0, 1)); ignoring that puts
    every B-N block 16 A away across the vacuum, so the 7 A radius drops them all (the check can fail)."""
    _, _, right = _convert(raw_run, 7.0)
    monkeypatch.setattr(blocks_module, "wrap_shifts", lambda positions, lattice: np.zeros((len(positions), 3), int))
    _, _, wrong = _convert(raw_run, 7.0)
    mixed = lambda blocks: int(np.sum(blocks.atom_pairs[:, 3] != blocks.atom_pairs[:, 4]))  # noqa: E731
    assert mixed(right["overlap"]) > 20 and mixed(wrong["overlap"]) == 0


def test_blocks_have_partners_self_images_and_the_radius():
    for folder in sorted((FIXTURE / "dft").iterdir()):
        structure = load_structure(folder)
        h, s = structure.read_blocks("hamiltonian"), structure.read_blocks("overlap")
        assert np.array_equal(h.atom_pairs, s.atom_pairs)
        assert not h.missing_partners()
        pairs = h.atom_pairs
        assert np.any((pairs[:, 3] == pairs[:, 4]) & np.any(pairs[:, :3] != 0, axis=1)), "no self-image (i, i, R != 0)"
        assert np.all(pairs[:, 2] == 0), "a 2D cell with 16 A along c has no blocks across the vacuum"
        dist = pair_distances(pairs, structure.poscar.positions, structure.poscar.lattice)
        assert dist.max() <= 7.0 and dist.max() > 6.0
        assert h.max_hermiticity_deviation() < 1e-9


def test_basis_shells_read_from_the_basis_file(tmp_path):
    basis = tmp_path / "BASIS"
    basis.write_text(" B  SZV-MOLOPT-SR-GTH SZV-MOLOPT-SR-GTH-q3\n 1\n 2 0 1 2 1 1\n 1.0 0.1 0.2\n 0.5 0.3 0.4\n"
                     " N  DZVP-MOLOPT-SR-GTH DZVP-MOLOPT-SR-GTH-q5\n 1\n 2 0 2 1 2 2 1\n 1.0 1 2 3 4 5\n")
    assert basis_shells(["B"], "SZV-MOLOPT-SR-GTH", basis) == {"B": [0, 1]}
    assert basis_shells(["N"], "DZVP-MOLOPT-SR-GTH", basis) == {"N": [0, 0, 1, 1, 2]}
    with pytest.raises(ValueError, match="no basis DZVP-MOLOPT-SR-GTH for element B"):
        basis_shells(["B"], "DZVP-MOLOPT-SR-GTH", basis)
    assert _shells() == {"B": [0, 1], "N": [0, 1]}


def test_validate_passes_on_the_fixture_and_fails_on_a_corrupted_copy(tmp_path):
    summary = validate(FIXTURE, check_overlap=1)
    assert summary["n_structures"] == 3 and summary["window_max"] < 5e-3 and summary["overlap_max"] < 1e-7
    broken = tmp_path / "dft"
    shutil.copytree(FIXTURE / "dft", broken)
    from deeph_tf.data import BlockSet, write_block_h5

    h = read_block_h5(broken / "hBN-000001" / "hamiltonian.h5")
    onsite = [k for k, p in enumerate(h.atom_pairs) if not p[:3].any() and p[3] == p[4]]
    blocks = [b + (0.05 * np.eye(len(b)) if k in onsite else 0) for k, b in enumerate(h.blocks)]
    write_block_h5(broken / "hBN-000001" / "hamiltonian.h5", BlockSet(h.atom_pairs, blocks))
    assert tool_main(["--validate", str(tmp_path), "--check-overlap", "0"]) == 1


# --- the generator driver, with a stand-in for CP2K --------------------------------------------------

FAKE_CP2K = """#!{python}
# Stand-in for cp2k.psmp: replays the fixture's run if the input equals the fixture's input.
import os, sys, tarfile
with tarfile.open({raw!r}) as tar:
    expected = tar.extractfile("./cp2k.inp").read().decode()
if os.environ.get("FAKE_CP2K_FAIL") or open("cp2k.inp").read() != expected:
    sys.exit(3)
with tarfile.open({raw!r}) as tar:
    tar.extractall(".", filter="data")
"""


@pytest.fixture
def fake_cp2k(tmp_path, monkeypatch) -> Path:
    exe = tmp_path / "fake_cp2k"
    exe.write_text(FAKE_CP2K.format(python=sys.executable, raw=str(RAW)))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("CP2K_EXE", str(exe))
    # the B and N entries of CP2K's BASIS_MOLOPT (cp2k-data 2023.1), so CI needs no CP2K install
    monkeypatch.setenv("CP2K_DATA_DIR", str(FIXTURE))
    return exe


def test_generate_writes_the_fixture_resumes_and_refuses_other_settings(fake_cp2k, tmp_path, caplog):
    out = tmp_path / "out"
    assert tool_main(["--out", str(out), "--n-structures", "1", *FIXTURE_ARGS]) == 0
    made, ref = out / "dft" / "hBN-000000", FIXTURE / "dft" / "hBN-000000"
    for name in ("hamiltonian.h5", "overlap.h5", "POSCAR", "K_PATH", "info.json", "cp2k.inp"):
        assert (made / name).read_bytes() == (ref / name).read_bytes(), name
    assert not (out / ".partial").exists()
    # a rerun skips the complete folder
    caplog.set_level("INFO")
    assert tool_main(["--out", str(out), "--n-structures", "1", *FIXTURE_ARGS]) == 0
    assert "skipping 1 complete structures" in caplog.text
    # other settings into the same folder: refused, nothing changed
    before = (made / "hamiltonian.h5").read_bytes()
    args = [a if a != "0.1" else "0.2" for a in FIXTURE_ARGS]
    assert tool_main(["--out", str(out), "--n-structures", "1", *args]) == 2
    assert "sigma" in caplog.text and (made / "hamiltonian.h5").read_bytes() == before


def test_a_failed_cp2k_run_leaves_no_folder(fake_cp2k, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_CP2K_FAIL", "1")
    out = tmp_path / "out"
    assert tool_main(["--out", str(out), "--n-structures", "1", *FIXTURE_ARGS]) == 1
    assert list((out / "dft").iterdir()) == [] and not (out / ".partial").exists()


@pytest.mark.skipif(shutil.which("cp2k.psmp") is None and not os.environ.get("CP2K_EXE"),
                    reason="CP2K is not installed (apt-get install cp2k); the stand-in tests above cover the driver")
def test_real_cp2k_run_validates(tmp_path, monkeypatch):
    """A real (coarse, ~10 s) CP2K run of displaced primitive Si: its blocks reproduce CP2K's bands."""
    monkeypatch.delenv("CP2K_EXE", raising=False)
    out = tmp_path / "si"
    assert tool_main(["--out", str(out), "--material", "Si", "--supercell", "1", "1", "1", "--kspacing", "0.6",
                      "--cutoff", "150", "--mpi-procs", "1", "--band-points", "2", "--seed", "3"]) == 0
    info = json.loads((out / "dft" / "Si-000000" / "generator.json").read_text())
    assert info["band_errors_eV"]["all_blocks"]["all_max"] < 1e-4
    assert tool_main(["--validate", str(out), "--check-overlap", "1"]) == 0
