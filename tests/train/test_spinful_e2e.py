"""End to end on real spin-orbit data: dtrain, dfreeze, dtest and dpredict on the PySCF
GKS+SOC fixture (tests/fixtures/spinful_model: HBr, HI, IBr), in-process as users run them.

Checked: exit codes; lcurve.out has the mae_spin column and training lowers the error; the
frozen model records ``spinful``; dtest's summary has the spin-orbit metrics (SOC shifts and
the Br/I p-pi multiplet splittings) next to the block MAE; hamiltonian_pred.h5 of dtest and of
dpredict are complex128 spinful blocks in the reference's pair order that read back as valid
spinful data and are exactly Hermitian and time-reversal symmetric; a spinless structure is
refused by the spinful model with a message naming the structure.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT, WATER

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "spinful_model"
SIDS = sorted(p.name for p in FIXTURE.iterdir() if (p / "info.json").is_file())
TINY_MODEL = {"irreps_hidden": "8x0e+4x1o+4x2e", "num_blocks": 1, "lmax_sh": 2, "num_radial_basis": 4,
              "radial_hidden": [8]}


@pytest.fixture(scope="module")
def spinful_run(tmp_path_factory):
    from deeph_tf.cli.dfreeze import main as dfreeze
    from deeph_tf.cli.dpredict import main as dpredict
    from deeph_tf.cli.dtest import main as dtest
    from deeph_tf.cli.dtrain import main as dtrain

    root = tmp_path_factory.mktemp("spinful_e2e")
    systems = root / "soc" / "dft"
    for sid in SIDS:
        shutil.copytree(FIXTURE / sid, systems / sid)
    run = root / "run"
    run.mkdir()
    config = {
        "model": dict(TINY_MODEL),
        "learning_rate": {"type": "exp", "start_lr": 5e-3, "stop_lr": 1e-3, "decay_steps": 10},
        "training": {
            "training_data": {"systems": str(systems.parent), "batch_size": 2},
            "validation_data": None,
            "dataset": {"split": {"train": 4, "validate": 1, "test": 1, "seed": 0}, "num_buckets": 1,
                        "graph_dir": "graphs"},
            "numb_steps": 30, "disp_freq": 10, "save_freq": 30, "max_ckpt_keep": 1, "seed": 1,
            "plots": False, "report": False,
        },
    }
    (run / "input.json").write_text(json.dumps(config))
    cwd = os.getcwd()
    os.chdir(run)
    try:
        codes = {"dtrain": dtrain(["input.json", "-v", "WARNING"])}
        codes["dfreeze"] = dfreeze(["-c", str(run), "-o", str(run / "frozen"), "-v", "WARNING"])
        codes["dtest"] = dtest(["-m", str(run / "frozen"), "-s", str(systems.parent), "-d", str(root / "detail" / "soc"),
                                "-o", str(root / "out"), "-v", "WARNING"])
        codes["dpredict"] = dpredict(["-m", str(run / "frozen"), "-s", str(systems.parent), "-o", str(root / "pred"),
                                      "-v", "WARNING"])
    finally:
        os.chdir(cwd)
    return {"root": root, "run": run, "codes": codes, "systems": systems}


def test_commands_succeed_and_training_learns(spinful_run):
    assert spinful_run["codes"] == {"dtrain": 0, "dfreeze": 0, "dtest": 0, "dpredict": 0}
    data = np.genfromtxt(spinful_run["run"] / "lcurve.out", names=True)
    assert "mae_spin_trn" in data.dtype.names
    assert data["mae_trn"][-1] < data["mae_trn"][0]
    meta = json.loads((spinful_run["run"] / "frozen" / "metadata.json").read_text())
    assert meta["spinful"] is True and meta["model_config"]["spinful"] is True
    assert meta["signature"]["outputs"] == ["node_blocks", "edge_blocks", "node_spin_blocks", "edge_spin_blocks"]
    assert json.loads((spinful_run["run"] / "graphs" / "index.json").read_text())["spinful"] is True


def test_dtest_reports_spin_orbit_metrics(spinful_run):
    summary = json.loads(Path(f"{spinful_run['root'] / 'detail' / 'soc'}.summary.json").read_text())
    assert summary["n_scored"] == len(SIDS)
    physics = summary["physics"]
    for key in ("soc_shift_mae_meV", "soc_splitting_mae_meV", "soc_largest_splitting_mae_meV",
                "orbital_energy_mae_meV"):
        assert np.isfinite(physics[key]), key
    records = {r["name"]: r for r in summary["spin_orbit"]}
    assert sorted(records) == SIDS
    # DFT's p-pi splittings: about 0.29 eV (Br, HBr), 0.59 eV (I, HI)
    assert records["hbr-000000"]["largest_splitting_ref_eV"] == pytest.approx(0.2917, abs=1e-3)
    assert records["hi-000001"]["largest_splitting_ref_eV"] == pytest.approx(0.5877, abs=1e-3)
    assert np.isfinite(summary["blocks"]["mae_raw_meV"])


@pytest.mark.parametrize("folder", ["out", "pred"])
def test_predictions_are_valid_spinful_blocks(spinful_run, folder):
    from deeph_tf.data.structure import load_structure
    from deeph_tf.so3.spin_blocks import time_reversal_residual

    for sid in SIDS:
        structure = load_structure(spinful_run["root"] / folder / "dft" / sid)
        assert structure.spinful
        predicted = structure.read_blocks("hamiltonian_pred")  # checks 2n_i x 2n_j shapes and partners
        reference = load_structure(FIXTURE / sid).read_blocks("hamiltonian")
        assert predicted.dtype == np.complex128
        np.testing.assert_array_equal(predicted.atom_pairs, reference.atom_pairs)
        assert predicted.max_hermiticity_deviation() == 0.0
        assert max(time_reversal_residual(b) for b in predicted.blocks) < 1e-12


def test_spinless_structure_is_refused_by_a_spinful_model(spinful_run, tmp_path):
    from deeph_tf.data.errors import DataFormatError
    from deeph_tf.data.structure import load_structure
    from deeph_tf.infer.predict import Predictor

    predictor = Predictor.load(spinful_run["run"] / "frozen")
    folder = tmp_path / "water"
    shutil.copytree(WATER / "0", folder, ignore=shutil.ignore_patterns("euler_angle"))
    with pytest.raises(DataFormatError, match="predicts spinful") as error:
        predictor.check_structure(load_structure(folder))
    assert "water/info.json" in str(error.value)
