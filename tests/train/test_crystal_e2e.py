"""End to end on a real crystal: dtrain, dfreeze and dtest on the CP2K hBN fixture.

The committed periodic fixture (tests/fixtures/hbn_cp2k: 3 displaced primitive hBN cells, CP2K
PBE/SZV-MOLOPT-SR-GTH, blocks of every pair within 7 A, self-images included) is copied to a
temporary folder and run through the commands users run, in-process: ``dtrain`` (tiny model,
30 steps, 2 training and 1 validation structure), ``dfreeze``, then ``dtest -m FROZEN -s DIR
-d PREFIX -o OUT --band-window 2 --k-grid 8 8 1``. Checked: exit codes, the crystal part of
PREFIX.summary.json (bands along each folder's K_PATH and on the k-grid, predicted Fermi
level, band MAE), the band plots, the predicted hamiltonian_pred.h5 in the input's pair order,
and that the *reference* bands dtest computes from the fixture's own blocks are CP2K's band
energies (dft_bands.h5, k-points off the SCF mesh) within E_F +- 2 eV to 5 meV.
"""
from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import REPO_ROOT

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "hbn_cp2k" / "dft"
SIDS = sorted(p.name for p in FIXTURE.iterdir() if p.is_dir())
TINY_MODEL = {"irreps_hidden": "8x0e+4x1o+4x2e", "num_blocks": 1, "lmax_sh": 2, "num_radial_basis": 4,
              "radial_hidden": [8]}
#: The band window of the comparison with CP2K (eV around its Fermi energy) and the allowed error (eV):
#: the 7 A block radius drops far pairs; the generator measured 0.65 meV in the window on 4 k-points.
WINDOW_EV = 2.0
#: dtest's grid. The default 4x4x1 has no (k, band) within +-2 eV of E_F for hBN-000002 (its VBM lies
#: between grid points, 1.95 eV below E_F at best on 8x8x1), which leaves that grid's MAE undefined.
K_GRID = (8, 8, 1)
CP2K_BAND_TOLERANCE_EV = 5e-3


def _write_input(folder: Path, systems: Path) -> Path:
    config = {
        "_comment": "tiny crystal run",
        "model": dict(TINY_MODEL),
        "learning_rate": {"type": "exp", "start_lr": 5e-3, "stop_lr": 1e-3, "decay_steps": 10},
        "training": {
            "training_data": {"systems": str(systems), "batch_size": 1},
            "validation_data": None,
            "dataset": {"split": {"train": 2, "validate": 1, "test": 0, "seed": 3}, "num_buckets": 1,
                        "graph_dir": "graphs"},
            "numb_steps": 30, "disp_freq": 10, "save_freq": 30, "max_ckpt_keep": 1, "seed": 7,
            "plots": False, "report": False,
        },
    }
    path = folder / "input.json"
    path.write_text(json.dumps(config, indent=1))
    return path


@pytest.fixture(scope="module")
def crystal_run(tmp_path_factory):
    """dtrain + dfreeze + dtest once; the tests read what they wrote."""
    from deeph_tf.cli.dfreeze import main as dfreeze
    from deeph_tf.cli.dtest import main as dtest
    from deeph_tf.cli.dtrain import main as dtrain

    root = tmp_path_factory.mktemp("crystal_e2e")
    systems = root / "hbn"
    shutil.copytree(FIXTURE, systems / "dft")
    run = root / "run"
    run.mkdir()
    cwd = os.getcwd()
    os.chdir(run)
    try:
        _write_input(run, systems)
        codes = {"dtrain": dtrain(["input.json", "-v", "WARNING"])}
        codes["dfreeze"] = dfreeze(["-c", str(run), "-o", str(run / "frozen"), "-v", "WARNING"])
        codes["dtest"] = dtest(["-m", str(run / "frozen"), "-s", str(systems), "-d", str(root / "detail" / "hbn"),
                                "-o", str(root / "out"), "--band-window", str(WINDOW_EV),
                                "--k-grid", *map(str, K_GRID), "-v", "WARNING"])
    finally:
        os.chdir(cwd)
    return {"root": root, "systems": systems, "run": run, "codes": codes, "prefix": root / "detail" / "hbn",
            "out": root / "out"}


def test_commands_succeed_and_training_learns(crystal_run):
    assert crystal_run["codes"] == {"dtrain": 0, "dfreeze": 0, "dtest": 0}
    run = crystal_run["run"]
    data = np.genfromtxt(run / "lcurve.out", names=True)
    assert [int(s) for s in data["step"]] == [0, 10, 20, 30]
    assert data["mae_trn"][-1] < data["mae_trn"][0]
    split = json.loads((run / "graphs" / "split.json").read_text())
    assert len(split["train"]) == 2 and len(split["validate"]) == 1 and not split["test"]
    assert (run / "frozen" / "saved_model.pb").is_file()


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def test_summary_has_k_path_and_k_grid_bands_of_every_crystal(crystal_run):
    from deeph_tf.data.block_h5 import read_block_h5
    from deeph_tf.infer.electronic import default_k_grid

    summary = json.loads(Path(f"{crystal_run['prefix']}.summary.json").read_text())
    assert summary["n_structures"] == summary["n_scored"] == len(SIDS)
    assert not summary["molecules"] and not summary["physics_skipped"]
    crystals = {c["name"]: c for c in summary["crystals"]}
    assert sorted(crystals) == SIDS
    for sid, c in crystals.items():
        info = json.loads((FIXTURE / sid / "info.json").read_text())
        assert c["fermi_energy_eV"] == pytest.approx(info["fermi_energy_eV"]) and c["fermi_source"] == "info.json"
        assert c["window_eV"] == WINDOW_EV and c["n_occupied"] == info["occupation"] // 2
        assert _finite(c["fermi_pred_eV"]) and _finite(c["fermi_ref_occupation_eV"])
        path, grid = c["k_path"], c["k_grid"]
        assert path is not None and path["k_source"].startswith("K_PATH ") and path["n_k"] == 120
        assert grid["k_source"] == "grid 8x8x1" and grid["n_k"] == 64
        # Without --k-grid dtest would take 4x4x1: periodic along a and b, 1 along the 16 A vacuum.
        assert default_k_grid(read_block_h5(FIXTURE / sid / "hamiltonian.h5")) == (4, 4, 1)
        for part in (path, grid):
            assert part["n_compared"] > 0 and _finite(part["mae_meV"]) and _finite(part["mae_shifted_meV"])
            assert _finite(part["gap_ref_eV"]) and part["gap_ref_eV"] > 0  # hBN is an insulator
        # The path ends are the K_PATH's labels (GAMMA M K GAMMA).
        assert path["tick_labels"] == ["GAMMA", "M", "K", "GAMMA"]
    assert _finite(summary["physics"]["band_mae_meV"]) and _finite(summary["physics"]["band_grid_mae_meV"])
    assert _finite(summary["physics"]["fermi_mae_meV"])
    for sid in SIDS:
        png = Path(f"{crystal_run['prefix']}.bands") / f"{sid}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert str(png) in summary["plots"]


def test_predictions_have_the_input_pairs_and_are_hermitian(crystal_run):
    from deeph_tf.data.structure import load_structure

    for sid in SIDS:
        predicted_path = crystal_run["out"] / "dft" / sid / "hamiltonian_pred.h5"
        with h5py.File(predicted_path, "r") as pred, h5py.File(FIXTURE / sid / "hamiltonian.h5", "r") as ref:
            for name in ("atom_pairs", "chunk_shapes", "chunk_boundaries"):
                np.testing.assert_array_equal(pred[name][()], ref[name][()], err_msg=f"{sid} {name}")
        predicted = load_structure(predicted_path.parent).read_blocks("hamiltonian_pred")
        pairs = predicted.atom_pairs
        assert np.any((pairs[:, 3] == pairs[:, 4]) & np.any(pairs[:, :3] != 0, axis=1))  # self-images predicted
        assert predicted.max_hermiticity_deviation() < 1e-6


def _cp2k_bands(sid: str):
    with h5py.File(FIXTURE / sid / "dft_bands.h5", "r") as f:
        return f["k_frac"][()], f["energies_eV"][()], float(f.attrs["fermi_energy_eV"])


def test_reference_bands_of_dtest_are_cp2ks_bands(crystal_run):
    """dtest's reference bands (the fixture's own H and S blocks, Bloch-summed; computed by the
    function dtest calls) at CP2K's band k-points equal CP2K's energies within E_F +- 2 eV and over the
    occupied bands to 5 meV;
    and dtest's reported reference gaps are those of the same Bloch sums (so the summary's
    reference is the fixture's blocks, not the prediction)."""
    from deeph_tf.data.structure import load_structure
    from deeph_tf.infer.electronic import (BlochSum, KPathSegment, band_energies, band_structure, k_grid_points,
                                           k_path_points, read_k_path)

    summary = json.loads(Path(f"{crystal_run['prefix']}.summary.json").read_text())
    crystals = {c["name"]: c for c in summary["crystals"]}
    compared = 0
    for sid in SIDS:
        structure = load_structure(crystal_run["systems"] / "dft" / sid)
        h, s = structure.read_blocks("hamiltonian"), structure.read_blocks("overlap")
        offsets = structure.atom_orbital_offsets()
        h_k, s_k = BlochSum(h, offsets), BlochSum(s, offsets)
        k_frac, cp2k, fermi = _cp2k_bands(sid)
        assert fermi == pytest.approx(structure.fermi_energy_eV, abs=1e-9)
        ours = band_energies(h_k, s_k, k_frac, sid)
        # The same energies through dtest's band code, with CP2K's k-points as a one-point-per-segment path.
        segments = [KPathSegment(1, tuple(k), tuple(k), "", "") for k in k_frac]
        dtest_ref = band_structure(None, h, s, structure, k_path=segments, window_eV=WINDOW_EV).energies_ref_eV
        np.testing.assert_allclose(dtest_ref, ours, rtol=0, atol=1e-12)
        window = np.abs(cp2k - fermi) <= WINDOW_EV
        assert window.any(), sid  # 2, 12 and 1 (k, band) entries: the window is the gap region of hBN
        error = np.abs(ours - cp2k)
        assert error[window].max() < CP2K_BAND_TOLERANCE_EV, (sid, error[window].max())
        compared += int(window.sum())
        # Every occupied band at every k too (max 3.1 meV); the conduction bands feel the 7 A block
        # radius more (up to 48 meV in band 8), so only a coarse bound there.
        n_occ = crystals[sid]["n_occupied"]
        assert error[:, :n_occ].max() < CP2K_BAND_TOLERANCE_EV, (sid, error[:, :n_occ].max())
        assert error.max() < 0.1, (sid, error.max())
        # The summary's reference gaps come from these Bloch sums (4 occupied bands of 8).
        for part, k_points in (("k_grid", k_grid_points(K_GRID)),
                               ("k_path", k_path_points(read_k_path(structure.path / "K_PATH"),
                                                        structure.poscar.lattice).k_frac)):
            bands = band_energies(h_k, s_k, k_points, sid)
            gap = bands[:, n_occ].min() - bands[:, n_occ - 1].max()
            assert crystals[sid][part]["gap_ref_eV"] == pytest.approx(gap, abs=1e-9), (sid, part)
    assert compared >= 10
