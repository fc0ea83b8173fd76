"""tools/make_pyscf_dataset.py --spinful (PySCF GKS with spin-orbit ECPs) and its validation, on real data."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from deeph_tf.data import BlockSet, load_structure, read_block_h5, write_block_h5

from conftest import REPO_ROOT

import make_pyscf_dataset as tool  # tools/ is on the path (setup.cfg, [tool:pytest] pythonpath)
import make_rotated_spinful as rotated_tool

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "spinful"
ROTATED_FIXTURE = REPO_ROOT / "tests" / "fixtures" / "spinful_rotated"
#: Cheap settings: HBr, coarse grid.
FAST = ["--spinful", "--molecule", "hbr", "--grid-level", "1", "--conv-tol", "1e-9"]


@pytest.fixture(scope="module")
def hbr_run(tmp_path_factory) -> Path:
    """One HBr structure (GKS+SOC, grid level 1), made once for the module; tests copy it."""
    out = tmp_path_factory.mktemp("hbr_run")
    assert tool.main(["--out", str(out), *FAST, "--n-structures", "1", "--rotate", "--workers", "1"]) == 0
    return out


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# ----------------------------------------------------------------------------- generator
def test_generator_writes_valid_spinful_structures(hbr_run):
    folder = hbr_run / "dft" / "000000"
    assert sorted(p.name for p in folder.iterdir()) == sorted(tool.required_files(spinful=True))
    st = load_structure(folder)
    assert st.spinful and st.species == ["H", "Br"]
    assert st.elements_orbital_map == {"H": [0, 0, 1], "Br": [0, 0, 1, 1, 1]}
    assert st.info["occupation"] == 8  # H 1 + Br 7 valence electrons (28-electron core)
    e = np.loadtxt(folder / tool.MO_ENERGY_FILE)
    assert e.size == 2 * 16 and st.fermi_energy_eV == pytest.approx((e[7] + e[8]) / 2)
    h, s = st.read_blocks("hamiltonian"), st.read_blocks("overlap")
    assert h.is_complex and not s.is_complex
    assert h.block((0, 0, 0, 0, 1)).shape == (10, 22) and s.block((0, 0, 0, 0, 1)).shape == (5, 11)
    # spin-orbit coupling is really there: sizeable B_k on the Br on-site block
    parts = tool.spin_components(h.block((0, 0, 0, 1, 1)))
    assert max(np.abs(parts[k].real).max() for k in ("Bx", "By", "Bz")) > 0.05
    generator = json.loads((folder / tool.GENERATOR_FILE).read_text())
    assert generator["with_soc"] and generator["ecp_elements"] == ["Br"]
    assert generator["checks"]["eig_err"] < 1e-6 and generator["checks"]["tr_err_hamiltonian"] < 1e-10
    summary = tool.validate(hbr_run)
    assert summary["n_spinful"] == 1 and summary["eig_err"] < 1e-6 and summary["tr_err"] < 1e-10


def test_spinful_layout_is_pyscf_ghf_cut_per_atom():
    """Block (i, j) = [[F_aa, F_ab], [F_ba, F_bb]] over the atoms' AOs, each in DeepH order."""
    from pyscf import gto

    mol = gto.M(atom="H 0 0 0; Br 0 0 1.41", basis={"H": "def2-svp", "Br": "stuttgartdz"},
                ecp={"Br": "ecpds28mdfso"}, verbose=0)
    perm, _, off = tool.deeph_ao_order(mol)
    nao = mol.nao_nr()
    p2 = tool.spinful_ao_order(perm, off, nao)
    rng = np.random.default_rng(0)
    f = rng.normal(size=(2 * nao, 2 * nao)) + 1j * rng.normal(size=(2 * nao, 2 * nao))
    deeph = f[np.ix_(p2, p2)]
    for i in range(2):
        for j in range(2):
            pi, pj = perm[off[i]:off[i + 1]], perm[off[j]:off[j + 1]]
            expected = np.block([[f[np.ix_(pi, pj)], f[np.ix_(pi, pj + nao)]],
                                 [f[np.ix_(pi + nao, pj)], f[np.ix_(pi + nao, pj + nao)]]])
            np.testing.assert_array_equal(deeph[2 * off[i]:2 * off[i + 1], 2 * off[j]:2 * off[j + 1]], expected)


def test_spinful_needs_a_spin_orbit_ecp_and_refuses_forces(tmp_path):
    assert tool.main(["--out", str(tmp_path / "w"), "--spinful", "--molecule", "water", "--grid-level", "1",
                      "--workers", "1"]) == 1  # the structure fails: no heavy atom
    assert not list((tmp_path / "w" / "dft").iterdir())
    assert tool.main(["--out", str(tmp_path / "f"), *FAST, "--forces"]) == 2
    with pytest.raises(ValueError, match="EL=ECP"):
        tool.parse_ecp("nonsense")
    assert tool.parse_ecp("Br=ecpds28mdfso;stuttgartdz") == ({"Br": "ecpds28mdfso"}, "stuttgartdz")


def test_resume_refuses_a_spinless_run_into_a_spinful_folder(hbr_run, tmp_path):
    out = _copy(hbr_run, tmp_path / "run")
    settings = tool.Settings(out=out, grid_level=1, conv_tol=1e-9, rotate=True)  # spinless, same geometry
    with pytest.raises(ValueError, match="spinful"):
        tool.generate(tool.plan(["hbr"], 1), settings, workers=1)


# ----------------------------------------------------------------------------- validation catches corruption
def _corrupt(folder: Path, name: str, key, change) -> None:
    path = folder / f"{name}.h5"
    blocks = read_block_h5(path)
    index = blocks.pair_index()[key]
    new = [b.copy() for b in blocks.blocks]
    new[index] = change(new[index])
    write_block_h5(path, BlockSet(blocks.atom_pairs, new))


def test_validation_catches_a_changed_matrix_element(tmp_path):
    out = _copy(FIXTURE, tmp_path / "fx")
    folder = out / "dft" / "hi-000001"

    def bump(b):
        b[0, 0] += 1e-3  # Hermitian (a diagonal element), time-reversal breaking (only spin up)
        return b
    _corrupt(folder, "hamiltonian", (0, 0, 0, 1, 1), bump)
    with pytest.raises(AssertionError, match="hi-000001.*eigenvalues"):
        tool.validate(out)
    with pytest.raises(AssertionError, match="hi-000001.*hamiltonian.h5: not time-reversal symmetric"):
        tool.validate_blocks(out / "dft", eig_tol=1.0)  # the time-reversal check on its own


def test_time_reversal_check_measures_a_zeeman_like_term(tmp_path):
    """H_aa -> H_aa + delta sigma_z (x) 1 on one on-site block: Hermitian, time-reversal odd (B_z = -i delta)."""
    out = _copy(FIXTURE, tmp_path / "fx")
    folder = out / "dft" / "hbr-000000"
    delta = 3e-4

    def zeeman(b):
        return b + delta * np.kron(np.diag([1.0, -1.0]), np.eye(b.shape[0] // 2))
    _corrupt(folder, "hamiltonian", (0, 0, 0, 1, 1), zeeman)
    checks = tool.check_spinful_structure(load_structure(folder), np.loadtxt(folder / tool.MO_ENERGY_FILE))
    assert checks["tr_err_hamiltonian"] == pytest.approx(delta, rel=1e-6)
    assert checks["herm_err"] == 0.0


def test_validation_catches_a_non_hermitian_block(tmp_path):
    out = _copy(FIXTURE, tmp_path / "fx")

    def skew(b):
        b[0, 1] += 1e-4
        return b
    _corrupt(out / "dft" / "ibr-000002", "hamiltonian", (0, 0, 0, 0, 1), skew)
    with pytest.raises(AssertionError, match="ibr-000002.*not Hermitian"):
        tool.validate(out)


def test_validation_requires_generator_json(tmp_path):
    out = _copy(FIXTURE, tmp_path / "fx")
    (out / "dft" / "hbr-000003" / tool.GENERATOR_FILE).unlink()
    with pytest.raises(AssertionError, match="hbr-000003.*generator.json"):
        tool.validate(out)


# ----------------------------------------------------------------------------- committed data
def test_committed_fixture_validates():
    summary = tool.validate(FIXTURE)
    assert summary["n_spinful"] == 4
    assert summary["eig_err"] < 1e-9 and summary["herm_err"] == 0.0 and summary["tr_err"] < 1e-12
    assert 0.1 < summary["so_max"] < 1.0  # eV: the halogen p-shell spin-orbit elements


def test_committed_fixture_is_what_its_command_makes(tmp_path):
    """Structure 0 of the README command, recomputed: the same blocks to SCF precision."""
    out = tmp_path / "again"
    assert tool.main(["--out", str(out), "--spinful", "--molecule", "soc_mix", "--n-structures", "1",
                      "--seed", "4000", "--rotate", "--workers", "1"]) == 0
    for name in ("hamiltonian", "overlap", "density_matrix"):
        new = load_structure(out / "dft" / "hbr-000000").read_blocks(name)
        old = load_structure(FIXTURE / "dft" / "hbr-000000").read_blocks(name)
        for a, b in zip(new.blocks, old.blocks):
            np.testing.assert_allclose(a, b, atol=1e-7)


# ----------------------------------------------------------------------------- rotated real data
def test_committed_rotated_copies_are_su2_transforms():
    summary = rotated_tool.compare_copies(ROTATED_FIXTURE, {"hamiltonian": 1e-9, "density_matrix": 1e-10,
                                                            "overlap": 1e-12})
    assert summary["n_copies"] == 2
    dets = [np.linalg.det(rotated_tool.read_rotation(ROTATED_FIXTURE / "dft" / k)) for k in ("1", "2")]
    assert dets == pytest.approx([1.0, -1.0])


def test_rotated_pyscf_run_equals_su2_rotated_blocks(tmp_path):
    """Fresh rotations, PySCF rerun: H of the rotated molecule = (D^1/2 x D) H (D^1/2 x D)^dagger.

    The grid rotates with the molecule, so the only error is the SCF's (conv_tol 1e-11 Ha): 1e-6 eV
    leaves a wide margin over the ~1e-11 eV seen; a wrong convention is off by 1e-2..1 eV.
    """
    out = tmp_path / "rot"
    assert rotated_tool.main(["--out", str(out), "--molecule", "hbr", "--seed", "11", "--n-rotations", "2",
                              "--improper", "--grid-level", "2"]) == 0
    summary = rotated_tool.compare_copies(out)  # raises above 1e-6 eV (H), 1e-7 (D), 1e-10 (S)
    assert summary["hamiltonian"] < 1e-6
