"""deeph_tf.infer.force_field_eval (dtest of force fields) with a stand-in predictor: statistics and detail files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import REPO_ROOT
from deeph_tf.data.ff_graphs import load_labeled_systems
from deeph_tf.infer.force_field_eval import evaluate_frames, format_summary, write_details

WATER_FORCES = REPO_ROOT / "tests" / "fixtures" / "water_forces"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session", autouse=True)
def quiet_capped_tensorflow():
    """Overrides tests/conftest.py's fixture of the same name: these tests never import TensorFlow."""
    yield


class OffsetPredictor:
    """Energies 0.1 eV above the labels, every force component 0.01 eV/A above, virials 0."""

    def predict_frame(self, frame):
        return {"energy": np.float64(frame.energy + 0.1), "forces": np.asarray(frame.forces) + 0.01,
                "virial": np.zeros((3, 3))}


def test_statistics_and_detail_files(tmp_path):
    frames = load_labeled_systems(WATER_FORCES, None, 0, require_labels=False)[0][:3]
    results, predicted = evaluate_frames(OffsetPredictor(), frames, progress=False)
    summary = results.summary()
    natoms = sum(frame.n_atoms for _, frame in frames)
    assert summary["structures"] == 3 and summary["atoms"] == natoms
    assert summary["energy_mae"] == pytest.approx(0.1) and summary["energy_rmse"] == pytest.approx(0.1)
    assert summary["energy_mae_per_atom"] == pytest.approx(np.mean([0.1 / f.n_atoms for _, f in frames]))
    assert summary["force_mae"] == pytest.approx(0.01) and summary["force_rmse"] == pytest.approx(0.01)
    assert [f.energy for f in predicted] == pytest.approx([f.energy + 0.1 for _, f in frames])
    assert "Energy MAE         : 1.000000e-01 eV" in format_summary(summary)

    prefix = str(tmp_path / "out" / "ff")
    paths = write_details(prefix, results, summary)
    assert paths[-1] == f"{prefix}.parity.png" and (tmp_path / "out" / "ff.parity.png").read_bytes()[:8] == PNG_SIGNATURE
    energies = np.loadtxt(f"{prefix}.e.out")
    np.testing.assert_allclose(energies[:, 1] - energies[:, 0], 0.1, atol=1e-8)
    assert np.loadtxt(f"{prefix}.f.out").shape == (natoms, 6)
    written = json.loads((tmp_path / "out" / "ff.summary.json").read_text())
    assert written["structures_tested"] == [sid for sid, _ in frames] and written["force_mae"] == summary["force_mae"]
