"""deeph_tf.infer.evaluate (dtest of block models) without TensorFlow: predictions written in the input's pair order."""
from __future__ import annotations

import json
import sys
import types

import h5py
import numpy as np
import pytest

from conftest import REPO_ROOT, requires_shared, shared_path
from deeph_tf.data.block_h5 import BlockSet, read_block_h5
from deeph_tf.data.graph import build_graph, graph_blocks, layout_from_structures
from deeph_tf.data.structure import load_structure
from deeph_tf.infer.evaluate import evaluate, format_physics, in_pair_order

MOLECULES = REPO_ROOT / "tests" / "fixtures" / "mixed_molecules" / "dft"
SIDS = ("ammonia-000001", "methane-000000")


@pytest.fixture(scope="session", autouse=True)
def quiet_capped_tensorflow():
    """Overrides tests/conftest.py's fixture of the same name: these tests never import TensorFlow."""
    yield


class GraphOrderPredictor:
    """Stands in for :class:`deeph_tf.infer.predict.Predictor`: the reference blocks plus a
    per-pair offset, in the graph's pair order (on-site pairs first), as the real one returns them."""

    target = "hamiltonian"

    def __init__(self, structures):
        self.layout = layout_from_structures(structures)

    def predict_structure(self, structure):
        graph = build_graph(structure, self.layout, targets=(self.target,), dtype=np.float64)
        blocks = graph_blocks(graph, self.layout, self.target)
        shifted = [b + 1e-3 * (k + 1) for k, b in enumerate(blocks.blocks)]
        return graph, BlockSet(blocks.atom_pairs, shifted)


class ShiftedPredictor:
    """Stands in for a Hamiltonian model: the DFT H + mu * S, which shifts every band by exactly mu (eV)."""

    target = "hamiltonian"
    mu = 1e-3

    def predict_structure(self, structure):
        h, ov = structure.read_blocks("hamiltonian"), structure.read_blocks("overlap")
        index = ov.pair_index()
        return None, BlockSet(h.atom_pairs, [b + self.mu * ov.blocks[index[tuple(int(v) for v in k)]]
                                             for k, b in zip(h.atom_pairs, h.blocks)])


def _datasets(path):
    with h5py.File(path, "r") as f:
        return {name: np.asarray(f[name]) for name in ("atom_pairs", "chunk_shapes", "chunk_boundaries")}


def test_predictions_have_the_input_files_pairs_shapes_and_boundaries(tmp_path):
    structures = [load_structure(MOLECULES / sid) for sid in SIDS]
    predictor = GraphOrderPredictor(structures)
    report, _ = evaluate(predictor, [(sid, MOLECULES / sid) for sid in SIDS], output_dir=tmp_path,
                         physics=False, progress=False)
    assert report.n_scored == len(SIDS)
    for sid, structure in zip(SIDS, structures):
        _, predicted = predictor.predict_structure(structure)
        # the graph's order differs from the file's, so the check below can fail
        assert not np.array_equal(predicted.atom_pairs, structure.read_blocks("hamiltonian").atom_pairs)
        written = tmp_path / "dft" / sid / "hamiltonian_pred.h5"
        expected = _datasets(MOLECULES / sid / "hamiltonian.h5")
        found = _datasets(written)
        for name in expected:
            np.testing.assert_array_equal(found[name], expected[name], err_msg=f"{sid}: {name}")
        blocks = read_block_h5(written)
        for key, block in zip(blocks.keys(), blocks.blocks):
            np.testing.assert_array_equal(block, predicted.block(key))
        # the overlap written next to it is the input's, in its own order
        np.testing.assert_array_equal(_datasets(tmp_path / "dft" / sid / "overlap.h5")["atom_pairs"],
                                      _datasets(MOLECULES / sid / "overlap.h5")["atom_pairs"])


def test_in_pair_order_needs_every_pair_of_the_file():
    template = BlockSet(np.array([[0, 0, 0, 0, 0], [0, 0, 0, 0, 1]]), [np.ones((1, 1)), np.ones((1, 2))])
    same = BlockSet(template.atom_pairs[::-1].copy(), [np.zeros((1, 2)), np.zeros((1, 1))])
    assert in_pair_order(same, template).atom_pairs.tolist() == template.atom_pairs.tolist()
    other = BlockSet(np.array([[0, 0, 0, 0, 0], [0, 0, 0, 1, 0]]), [np.ones((1, 1)), np.ones((2, 1))])
    with pytest.raises(ValueError, match=r"structure toy: the prediction lacks 1 of the reference's 2 atom pairs, "
                                         r"e\.g\. \[R1,R2,R3,i,j\] = \[0, 0, 0, 0, 1\]"):
        in_pair_order(other, template, "toy")


# ---- crystals: K_PATH and k-grid, --band-window, Fermi level (shared DeepH-dock data) ---------
def _periodic():
    return [(name, shared_path("periodic", name)) for name in ("MoTe2", "Si")]


@requires_shared
def test_crystals_report_path_and_grid_window_and_fermi_level(tmp_path):
    from deeph_tf.infer.electronic import crystal_bands

    prefix = tmp_path / "detail" / "run"
    report, _ = evaluate(ShiftedPredictor(), _periodic(), detail_prefix=str(prefix), band_window_eV=1.0,
                         progress=False)
    mote2, si = report.crystals
    assert mote2["name"] == "MoTe2" and mote2["k_path"]["n_k"] == 140 and mote2["k_grid"]["k_source"] == "grid 4x4x1"
    assert si["k_path"] is None and si["k_grid"]["k_source"] == "grid 4x4x4"
    for crystal in report.crystals:
        s = load_structure(shared_path("periodic", crystal["name"]))
        assert crystal["window_eV"] == 1.0 and crystal["fermi_energy_eV"] == s.fermi_energy_eV
        assert crystal["fermi_error_meV"] == pytest.approx(1.0, rel=1e-6)
        assert crystal["fermi_pred_eV"] != crystal["fermi_energy_eV"]
        # the window reached band_structure: entries within 1 eV of E_F, fewer than within 2 eV
        h, ov = s.read_blocks("hamiltonian"), s.read_blocks("overlap")
        grid = crystal_bands(None, h, ov, s).grid.energies_ref_eV
        within = np.abs(grid - s.fermi_energy_eV)
        assert crystal["k_grid"]["n_compared"] == int(np.sum(within <= 1.0)) < int(np.sum(within <= 2.0))
        for part in (crystal["k_path"], crystal["k_grid"]):
            if part is not None:
                assert part["mae_meV"] == pytest.approx(1.0, rel=1e-6) and part["mae_shifted_meV"] < 1e-6
                assert part["max_abs_meV"] == pytest.approx(1.0, rel=1e-6) and abs(part["gap_error_meV"]) < 1e-6
    summary = report.physics_summary()
    assert set(summary) == {"band_mae_meV", "band_mae_shifted_meV", "band_grid_mae_meV", "band_gap_mae_meV",
                            "fermi_mae_meV"}
    for key in ("band_mae_meV", "band_grid_mae_meV", "fermi_mae_meV"):
        assert summary[key] == pytest.approx(1.0, rel=1e-6), key
    assert summary["band_mae_shifted_meV"] < 1e-6 and summary["band_gap_mae_meV"] < 1e-6
    written = json.loads(prefix.with_name("run.summary.json").read_text())
    assert written["physics"] == pytest.approx(summary) and written["crystals"][0]["k_path"]["window_eV"] == 1.0
    for name in ("MoTe2", "Si"):
        assert (tmp_path / "detail" / "run.bands" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    lines = format_physics(report).splitlines()
    assert lines[0] == "bands of MoTe2 (+-1 eV around E_F 8.8946 eV from info.json, 23 occupied bands):"
    assert lines[1].startswith("  K_PATH (140 k): MAE 1.000 meV raw, 0.000 meV mean shift removed, max 1.000 meV, "
                               "gap error +0.000 meV, ")
    assert lines[2].startswith("  grid 4x4x1 (16 k): MAE 1.000 meV raw, 0.000 meV mean shift removed")
    assert lines[2].endswith(f"E_F from occupation: predicted {mote2['fermi_pred_eV']:.4f} eV, DFT "
                             f"{mote2['fermi_ref_occupation_eV']:.4f} eV, error +1.000 meV")
    assert lines[3].startswith("bands of Si") and lines[4].startswith("  grid 4x4x4 (64 k): MAE 1.000 meV raw")
    assert lines[5] == ("bands, mean over 2 crystals: MAE 1.000 meV raw, 0.000 meV mean shift removed (K_PATH, else "
                        "grid); grid MAE 1.000 meV; |gap error| 0.000 meV; |E_F error| 1.000 meV")
    assert len(lines) == 6


def test_dtest_band_options_parse_without_tensorflow():
    from deeph_tf.cli.dtest import build_parser
    from deeph_tf.infer.electronic import DEFAULT_BAND_WINDOW_EV

    parser = build_parser()
    args = parser.parse_args(["-m", "model", "-s", "data"])
    assert args.band_window == DEFAULT_BAND_WINDOW_EV and args.k_path is None and args.k_grid is None
    args = parser.parse_args(["-m", "model", "-s", "data", "--band-window", "0.5", "--k-path", "kp",
                              "--k-grid", "3", "3", "1"])
    assert (args.band_window, args.k_path, args.k_grid) == (0.5, "kp", [3, 3, 1])
    for bad in ("0", "-1", "nan"):
        with pytest.raises(SystemExit):
            parser.parse_args(["-m", "model", "-s", "data", "--band-window", bad])
    text = parser.format_help()
    assert "--band-window EV" in text and "--k-path FILE" in text and "K_PATH" in text


@requires_shared
def test_dtest_cli_passes_band_window_k_path_and_k_grid(tmp_path, monkeypatch, capsys):
    """dtest end to end with a stand-in model (no TensorFlow): the options reach the report."""
    from deeph_tf.cli.dtest import main as dtest

    class StubPredictor(ShiftedPredictor):
        source, metadata, is_energy_model = "stub", {}, False

        @classmethod
        def load(cls, path):
            return cls()

    monkeypatch.setitem(sys.modules, "deeph_tf.infer.predict", types.SimpleNamespace(Predictor=StubPredictor))
    k_path = tmp_path / "short.kpath"
    k_path.write_text("5 0.5 0 0 0.3333333333 0.3333333333 0 M K\n")  # the gap at K: inside +-0.7 eV
    prefix = tmp_path / "out"
    assert dtest(["-m", "stub", "-s", str(shared_path("periodic", "MoTe2")), "--band-window", "0.7",
                  "--k-path", str(k_path), "--k-grid", "3", "3", "1", "-d", str(prefix), "-v", "WARNING"]) == 0
    printed = capsys.readouterr().out
    assert "bands of MoTe2 (+-0.7 eV around E_F 8.8946 eV" in printed
    assert "  K_PATH short.kpath (5 k): MAE 1.000 meV raw" in printed and "  grid 3x3x1 (9 k): MAE 1.000" in printed
    crystal = json.loads(prefix.with_name("out.summary.json").read_text())["crystals"][0]
    assert crystal["window_eV"] == crystal["k_path"]["window_eV"] == 0.7
    assert crystal["k_path"]["k_source"] == f"K_PATH {k_path}" and crystal["k_grid"]["n_k"] == 9
    assert dtest(["-m", "stub", "-s", str(tmp_path), "--k-path", str(tmp_path / "missing")]) == 2
