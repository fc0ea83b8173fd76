"""The ``dband`` command end to end on the shipped graphene crystals (and a water molecule)."""
import json
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import REPO_ROOT, WATER
from deeph_tf.cli import dband
from deeph_tf.data.structure import load_structure
from deeph_tf.data.block_h5 import BlockSet, write_block_h5

GRAPHENE = REPO_ROOT / "examples" / "graphene" / "dft"
SKIP = shutil.ignore_patterns("dft_bands.h5", "cp2k.inp", "generator.json")


def _copy(tmp_path, names=("graphene-000000", "graphene-000001"), source=GRAPHENE):
    dft = tmp_path / "inputs" / "dft"
    for name in names:
        shutil.copytree(source / name, dft / name, ignore=SKIP)
    return dft


def _run(argv, capsys):
    code = dband.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_imports_neither_tensorflow_nor_numpy():
    code = ("import sys\nfrom deeph_tf.cli import dband\n"
            "try:\n    dband.main(['--help'])\nexcept SystemExit as exit:\n    assert exit.code == 0\n"
            "assert 'tensorflow' not in sys.modules and 'numpy' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "usage: dband" in result.stdout and "--solver" in result.stdout


def test_cli_defaults_are_the_library_defaults():
    from deeph_tf.infer.electronic.auto_path import DEFAULT_PATH_POINTS
    from deeph_tf.infer.electronic.bands import DEFAULT_BAND_WINDOW_EV
    from deeph_tf.infer.electronic.spectrum import DEFAULT_NUM_BANDS, DEFAULT_SIGMA_EV, DEFAULT_SPARSE_ABOVE

    assert (dband.DEFAULT_SIGMA_EV, dband.DEFAULT_NUM_BANDS, dband.DEFAULT_SPARSE_ABOVE, dband.DEFAULT_PATH_POINTS,
            dband.DEFAULT_BAND_WINDOW_EV) == (DEFAULT_SIGMA_EV, DEFAULT_NUM_BANDS, DEFAULT_SPARSE_ABOVE,
                                              DEFAULT_PATH_POINTS, DEFAULT_BAND_WINDOW_EV)
    with pytest.raises(SystemExit):
        dband.build_parser().parse_args(["-s", "x"])  # -o is required


def test_dband_end_to_end_writes_the_files_and_a_reference_equal_to_the_input_gives_zero_error(tmp_path, capsys):
    dft = _copy(tmp_path)
    out = tmp_path / "out"
    (out).mkdir()
    (out / "summary.json").write_text("{}")  # an old summary is never left standing
    code, stdout, _ = _run(["-s", dft.parent, "-o", out, "-r", GRAPHENE], capsys)
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["format"] == "deeph_tf.dband/1" and list(summary["structures"]) == ["graphene-000000",
                                                                                      "graphene-000001"]
    for sid, entry in summary["structures"].items():
        assert sorted(p.name for p in (out / sid).iterdir()) == ["bands.h5", "bands.png", "dos.png"]
        assert entry["solver"] == "dense" and entry["n_orbitals"] == 32 and entry["k_grid"] == [4, 4, 1]
        assert entry["time_s"] > 0 and entry["hamiltonian_file"].endswith("hamiltonian.h5")
        assert entry["k_path"].startswith("K_PATH")
        ref = entry["reference"]
        assert ref["k_path"]["mae_meV"] == 0.0 and ref["k_grid"]["mae_meV"] == 0.0 and ref["fermi_error_meV"] == 0.0
        assert ref["fermi_pred_eV"] == pytest.approx(entry["fermi_energy_eV"], abs=1e-12)
        with h5py.File(out / sid / "bands.h5", "r") as f:
            assert f["energies"].shape == (120, 32) and f["k_frac"].shape == (120, 3)
            assert f["distance"].shape == (120,) and [t.decode() for t in f["tick_labels"][()]] == [
                "GAMMA", "M", "K", "GAMMA"]
            assert f.attrs["solver"] == "dense" and f.attrs["n_occupied"] == 16
            assert f.attrs["fermi_energy_eV"] == entry["fermi_energy_eV"]
            assert f.attrs["gap_eV"] == pytest.approx(entry["gap_eV"])
            assert f["grid/energies"].shape == (16, 32) and f["dos/dos"].shape == f["dos/energy_eV"].shape
            dft_bands = load_structure(GRAPHENE / sid)  # the Fermi level is not info.json's
            assert f.attrs["fermi_energy_eV"] != dft_bands.fermi_energy_eV
    assert summary["physics"]["band_mae_meV"] == 0.0 and summary["physics"]["fermi_mae_meV"] == 0.0
    assert "graphene-000001" in stdout and "MAE 0.000 meV raw" in stdout and "E_F (eV)" in stdout


def test_the_predicted_hamiltonian_is_preferred_and_a_gauge_shift_moves_every_level(tmp_path, capsys):
    dft = _copy(tmp_path, names=("graphene-000000",))
    folder = dft / "graphene-000000"
    s = load_structure(folder)
    h, ov = s.read_blocks("hamiltonian"), s.read_blocks("overlap")
    mu = 0.25  # H + mu S: the same bands shifted by mu
    shifted = BlockSet(h.atom_pairs, [b + mu * o for b, o in zip(h.blocks, ov.blocks)])
    write_block_h5(folder / "hamiltonian_pred.h5", shifted)
    (folder / "overlap.h5").rename(folder / "overlap_pred.h5")
    code, stdout, err = _run(["-s", dft, "-o", tmp_path / "pred", "--no-plots", "--no-path", "-r", GRAPHENE], capsys)
    assert code == 0, err
    pred = json.loads((tmp_path / "pred" / "summary.json").read_text())["structures"]["graphene-000000"]
    assert pred["hamiltonian_file"].endswith("hamiltonian_pred.h5") and pred["overlap_file"].endswith("overlap_pred.h5")
    assert "using overlap_pred.h5" in err
    assert pred["reference"]["k_grid"]["mean_shift_meV"] == pytest.approx(1000 * mu, rel=1e-9)
    assert abs(pred["reference"]["k_grid"]["mae_shifted_meV"]) < 1e-6
    code, _, _ = _run(["-s", dft, "-o", tmp_path / "dft", "--no-plots", "--no-path", "--hamiltonian", "hamiltonian"],
                      capsys)
    assert code == 0
    ref = json.loads((tmp_path / "dft" / "summary.json").read_text())["structures"]["graphene-000000"]
    assert ref["hamiltonian_file"].endswith("/hamiltonian.h5") and ref["k_path"] is None
    assert pred["fermi_energy_eV"] - ref["fermi_energy_eV"] == pytest.approx(mu, abs=1e-9)
    assert pred["gap_eV"] == pytest.approx(ref["gap_eV"], abs=1e-9)
    assert sorted(p.name for p in (tmp_path / "dft" / "graphene-000000").iterdir()) == ["bands.h5"]


def test_missing_overlap_is_an_error_naming_the_folder(tmp_path, capsys):
    dft = _copy(tmp_path)
    (dft / "graphene-000001" / "overlap.h5").unlink()
    code, _, err = _run(["-s", dft, "-o", tmp_path / "out"], capsys)
    assert code == 2
    assert "graphene-000001" in err and "no overlap, expected overlap.h5" in err
    assert not (tmp_path / "out" / "graphene-000000").exists()  # checked before anything is solved
    (dft / "graphene-000000" / "hamiltonian.h5").unlink()
    code, _, err = _run(["-s", dft, "-o", tmp_path / "out", "--hamiltonian", "hamiltonian_pred"], capsys)
    assert code == 2 and "graphene-000000: no Hamiltonian, expected hamiltonian_pred.h5" in err


def test_a_failing_structure_leaves_no_complete_looking_output(tmp_path, capsys):
    dft = _copy(tmp_path)
    info = dft / "graphene-000001" / "info.json"
    data = json.loads(info.read_text())
    del data["occupation"]
    info.write_text(json.dumps(data))
    out = tmp_path / "out"
    code, _, err = _run(["-s", dft, "-o", out, "--no-path"], capsys)
    assert code == 2 and "occupation" in err
    assert sorted(p.name for p in out.iterdir()) == ["graphene-000000"]  # no summary, no half folder
    assert (out / "graphene-000000" / "bands.h5").is_file()


def test_sparse_solver_on_a_small_cell_matches_dense(tmp_path, capsys):
    dft = _copy(tmp_path, names=("graphene-000000",))
    common = ["-s", dft, "--no-plots", "--k-grid", 2, 2, 1]
    assert _run(common + ["-o", tmp_path / "sparse", "--solver", "sparse", "--num-bands", 8], capsys)[0] == 0
    assert _run(common + ["-o", tmp_path / "dense"], capsys)[0] == 0
    sparse = json.loads((tmp_path / "sparse" / "summary.json").read_text())["structures"]["graphene-000000"]
    dense = json.loads((tmp_path / "dense" / "summary.json").read_text())["structures"]["graphene-000000"]
    assert sparse["solver"] == "sparse" and sparse["n_bands"] == 8 and dense["n_bands"] == 32
    assert sparse["fermi_energy_eV"] == pytest.approx(dense["fermi_energy_eV"], abs=1e-8)
    assert sparse["gap_eV"] == pytest.approx(dense["gap_eV"], abs=1e-8)
    with h5py.File(tmp_path / "sparse" / "graphene-000000" / "bands.h5", "r") as fs, \
            h5py.File(tmp_path / "dense" / "graphene-000000" / "bands.h5", "r") as fd:
        first, e_sparse, e_dense = fs["first_band"][()], fs["energies"][()], fd["energies"][()]
        assert e_sparse.shape == (120, 8)
        for m in range(len(first)):
            np.testing.assert_allclose(e_sparse[m], e_dense[m, first[m]:first[m] + 8], rtol=0, atol=1e-8)


def test_a_molecule_gets_orbital_energies_and_a_dos_but_no_path(tmp_path, capsys):
    dft = tmp_path / "mol" / "dft"
    shutil.copytree(WATER / "0", dft / "water", ignore=shutil.ignore_patterns("euler_angle"))
    code, stdout, _ = _run(["-s", dft, "-o", tmp_path / "out", "-r", dft], capsys)
    assert code == 0
    entry = json.loads((tmp_path / "out" / "summary.json").read_text())["structures"]["water"]
    assert entry["kind"] == "molecule" and entry["k_path"] is None and entry["homo_eV"] < entry["lumo_eV"]
    assert entry["reference"]["mae_meV"] == 0.0 and "orbital energies of 1 molecule(s)" in stdout
    assert sorted(p.name for p in (tmp_path / "out" / "water").iterdir()) == ["bands.h5", "dos.png"]
