"""Prediction of new structures: per-element-pair cutoffs, POSCAR-only graphs, chunks, dpredict.

A tiny model (2 interaction blocks, so chunk halos are 2 hops deep) is trained once on the CP2K
hBN fixture (3 displaced primitive cells, blocks of every pair within 7 A, self-images
included). Checked: the pair cutoffs the model stores are the longest training edges; a
POSCAR-only graph has exactly the overlap's pairs on those crystals and gives the same
prediction; an 8x8 supercell predicted in chunks equals one pass to float precision;
``dpredict`` writes hamiltonian_pred.h5 with overlap.h5's atom_pairs, chunk_shapes and
chunk_boundaries, predicts a POSCAR-only folder, skips finished work and refuses bad input
without writing anything.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import REPO_ROOT

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "hbn_cp2k" / "dft"
SIDS = sorted(p.name for p in FIXTURE.iterdir() if p.is_dir())
TINY_MODEL = {"irreps_hidden": "8x0e+4x1o+4x2e", "num_blocks": 2, "lmax_sh": 2, "num_radial_basis": 4,
              "radial_hidden": [8]}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A frozen tiny model trained (5 steps) on the 3 fixture crystals."""
    from deeph_tf.cli.dfreeze import main as dfreeze
    from deeph_tf.cli.dtrain import main as dtrain

    run = tmp_path_factory.mktemp("dpredict_model")
    config = {
        "model": dict(TINY_MODEL),
        "learning_rate": {"type": "exp", "start_lr": 5e-3, "stop_lr": 1e-3, "decay_steps": 5},
        "training": {
            "training_data": {"systems": str(FIXTURE), "batch_size": 1},
            "dataset": {"split": {"train": 3, "validate": 0, "test": 0, "seed": 3}, "num_buckets": 1,
                        "graph_dir": str(run / "graphs")},
            "numb_steps": 5, "disp_freq": 5, "save_freq": 5, "max_ckpt_keep": 1, "seed": 7,
            "plots": False, "report": False, "disp_file": str(run / "lcurve.out"),
            "save_ckpt": str(run / "model.ckpt"),
        },
    }
    (run / "input.json").write_text(json.dumps(config))
    cwd = os.getcwd()
    os.chdir(run)
    try:
        assert dtrain(["input.json", "-v", "WARNING"]) == 0
        assert dfreeze(["-c", str(run), "-o", str(run / "frozen"), "-v", "WARNING"]) == 0
    finally:
        os.chdir(cwd)
    return run / "frozen"


@pytest.fixture(scope="module")
def predictor(trained):
    from deeph_tf.infer.predict import Predictor

    return Predictor.load(trained)


def _pair_keys(graph) -> set:
    return set(map(tuple, np.column_stack([graph["edge_shift"], graph["edge_src"], graph["edge_dst"]]).tolist()))


def _supercell(folder: Path, reps: int) -> Path:
    """A reps x reps x 1 tiling of fixture crystal 0, POSCAR and info.json only."""
    from deeph_tf.data.poscar import Poscar
    from deeph_tf.data.structure import load_structure, write_structure_folder

    cell = load_structure(FIXTURE / SIDS[0])
    lattice = cell.poscar.lattice * np.array([reps, reps, 1])[:, None]
    shifts = np.array([[a, b, 0] for a in range(reps) for b in range(reps)], float) @ cell.poscar.lattice
    positions = (cell.poscar.positions[None] + shifts[:, None]).reshape(-1, 3)
    info = dict(cell.info, atoms_quantity=cell.n_atoms * reps**2, orbits_quantity=cell.n_orbitals * reps**2,
                occupation=cell.info["occupation"] * reps**2)
    return write_structure_folder(folder, Poscar(lattice, list(cell.species) * reps**2, positions), info)


def test_the_model_stores_the_longest_training_edge_of_each_element_pair(predictor):
    from deeph_tf.data.neighbors import edge_vectors
    from deeph_tf.data.structure import load_structure

    elements = list(predictor.layout.elements)
    longest = np.zeros((len(elements), len(elements)))
    for sid in SIDS:
        structure = load_structure(FIXTURE / sid)
        pairs = structure.read_blocks("overlap").atom_pairs
        pairs = pairs[~((pairs[:, 3] == pairs[:, 4]) & np.all(pairs[:, :3] == 0, axis=1))]
        lengths = np.linalg.norm(edge_vectors(structure.poscar.positions, structure.poscar.lattice, pairs[:, 3],
                                              pairs[:, 4], pairs[:, :3]), axis=1)
        species = np.array([elements.index(e) for e in structure.species])
        np.maximum.at(longest, (species[pairs[:, 3]], species[pairs[:, 4]]), lengths)
    rule = predictor.graph_rule()
    np.testing.assert_allclose(np.asarray(rule.pair_cutoffs), longest, atol=1e-5)
    assert rule.periodic and rule.radius is None and 6.0 < longest.min() <= longest.max() < 7.0


def test_poscar_only_graphs_have_the_overlap_pairs_and_the_same_prediction(predictor):
    from deeph_tf.data.inference_graph import prediction_graph
    from deeph_tf.data.structure import load_structure

    rule = predictor.graph_rule()
    for sid in SIDS:
        structure = load_structure(FIXTURE / sid)
        from_overlap, source_s = prediction_graph(structure, predictor.layout, rule, np.float64)
        from_poscar, source_p = prediction_graph(structure, predictor.layout, rule, np.float64, prefer_overlap=False)
        assert source_s == "overlap.h5" and source_p.startswith("per-element-pair cutoffs")
        assert _pair_keys(from_overlap) == _pair_keys(from_poscar)
        node_s, edge_s = predictor.predict_graph(from_overlap)
        node_p, edge_p = predictor.predict_graph(from_poscar)
        np.testing.assert_allclose(node_p, node_s, atol=1e-5)
        order = {k: e for e, k in enumerate(zip(map(tuple, from_poscar["edge_shift"].tolist()),
                                                from_poscar["edge_src"], from_poscar["edge_dst"]))}
        matched = [order[k] for k in zip(map(tuple, from_overlap["edge_shift"].tolist()), from_overlap["edge_src"],
                                         from_overlap["edge_dst"])]
        np.testing.assert_allclose(edge_p[matched], edge_s, atol=1e-5)


def test_a_supercell_predicted_in_chunks_equals_one_pass(predictor, tmp_path):
    from deeph_tf.data.inference_graph import GraphRule, prediction_graph
    from deeph_tf.data.structure import load_structure
    from deeph_tf.infer.chunked import ChunkTooLargeError

    big = load_structure(_supercell(tmp_path / "hBN-8x8", 8))
    rule = GraphRule(elements=tuple(predictor.layout.elements), radius=3.0)  # short edges: chunks smaller than the cell
    graph, _ = prediction_graph(big, predictor.layout, rule, np.float64)
    assert big.n_atoms == 128 and len(graph["edge_src"]) > 1000
    node_one, edge_one = predictor.predict_graph(graph)
    node_chunked, edge_chunked = predictor.predict_graph(graph, max_edges=800)
    scale = float(np.abs(edge_one).max())
    np.testing.assert_allclose(node_chunked, node_one, atol=1e-6 * scale)
    np.testing.assert_allclose(edge_chunked, edge_one, atol=1e-6 * scale)
    # The tiling is periodic, so equivalent atoms get equal blocks: chunk borders leave no trace.
    np.testing.assert_allclose(node_chunked[0::2], np.broadcast_to(node_chunked[0], node_chunked[0::2].shape),
                               atol=1e-5 * scale)
    with pytest.raises(ChunkTooLargeError, match="raise the edge limit"):
        predictor.predict_graph(graph, max_edges=100)


@pytest.fixture
def inputs(tmp_path) -> Path:
    """inputs/dft: two fixture crystals with overlap.h5 and a POSCAR-only 2x2 supercell."""
    dft = tmp_path / "inputs" / "dft"
    for sid in SIDS[:2]:
        shutil.copytree(FIXTURE / sid, dft / sid, ignore=shutil.ignore_patterns("hamiltonian.h5", "cp2k.inp"))
    _supercell(dft / "hBN-2x2-poscar-only", 2)
    return tmp_path / "inputs"


def _dpredict(*args: str) -> int:
    from deeph_tf.cli.dpredict import main

    return main([*args, "-v", "WARNING"])


def test_dpredict_writes_deeph_folders_with_the_overlaps_pair_layout(trained, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    assert _dpredict("-m", str(trained), "-s", str(inputs), "-o", str(out), "-b", "2") == 0
    printed = capsys.readouterr().out
    assert "3 structure(s) predicted" in printed
    for sid in SIDS[:2]:
        folder = out / "dft" / sid
        assert {"POSCAR", "info.json", "overlap.h5", "hamiltonian_pred.h5", "prediction.json"} <= {
            p.name for p in folder.iterdir()}
        with h5py.File(folder / "hamiltonian_pred.h5") as pred, h5py.File(inputs / "dft" / sid / "overlap.h5") as ovl:
            for name in ("atom_pairs", "chunk_shapes", "chunk_boundaries"):
                np.testing.assert_array_equal(pred[name][()], ovl[name][()])
        assert json.loads((folder / "prediction.json").read_text())["graph"] == "overlap.h5"
    from deeph_tf.data.structure import load_structure

    alone = load_structure(out / "dft" / "hBN-2x2-poscar-only")
    assert not alone.has_blocks("overlap")
    blocks = alone.read_blocks("hamiltonian_pred")
    assert blocks.max_hermiticity_deviation() < 1e-6 and len(blocks.missing_partners()) == 0
    record = json.loads((out / "dft" / "hBN-2x2-poscar-only" / "prediction.json").read_text())
    assert record["graph"].startswith("per-element-pair cutoffs") and record["n_atoms"] == 8
    # A rerun skips everything (nothing rewritten).
    stamp = (out / "dft" / SIDS[0] / "hamiltonian_pred.h5").stat().st_mtime_ns
    assert _dpredict("-m", str(trained), "-s", str(inputs), "-o", str(out)) == 0
    assert "0 structure(s) predicted, 3 already done" in capsys.readouterr().out
    assert (out / "dft" / SIDS[0] / "hamiltonian_pred.h5").stat().st_mtime_ns == stamp


def test_dpredict_refuses_bad_input_and_writes_nothing(trained, inputs, tmp_path, capsys):
    # An output folder holding other data.
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    assert _dpredict("-m", str(trained), "-s", str(inputs), "-o", str(other)) == 2
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    assert "not a dpredict output" in capsys.readouterr().err
    # An element the model does not know: named with the structure and what the model knows.
    strange = inputs / "dft" / "hBN-2x2-poscar-only" / "POSCAR"
    lines = strange.read_text().splitlines()
    lines[5] = lines[5].replace("B", "Al")
    strange.write_text("\n".join(lines) + "\n")
    info = json.loads((strange.parent / "info.json").read_text())
    info["elements_orbital_map"]["Al"] = info["elements_orbital_map"].pop("B")
    (strange.parent / "info.json").write_text(json.dumps(info))
    assert _dpredict("-m", str(trained), "-s", str(inputs), "-o", str(tmp_path / "new")) == 2
    err = capsys.readouterr().err
    assert "element Al is unknown" in err and "hBN-2x2-poscar-only" in err and "['B', 'N']" in err
    assert not (tmp_path / "new").exists()
    # A structure folder without its POSCAR.
    shutil.rmtree(strange.parent)
    (inputs / "dft" / SIDS[0] / "POSCAR").unlink()
    assert _dpredict("-m", str(trained), "-s", str(inputs), "-o", str(tmp_path / "new")) == 2
    err = capsys.readouterr().err
    assert "missing POSCAR" in err and SIDS[0] in err
    assert not (tmp_path / "new").exists()


def test_a_predicted_supercell_folds_the_predicted_and_dft_primitive_bands(predictor, tmp_path):
    """The DeepH use: a model predicts a 4x4 supercell (POSCAR only) of a crystal whose primitive
    bands DFT knows. Its bands at Gamma are the primitive cell's bands at the 16 k-points that fold
    onto Gamma: equal to the model's own primitive-cell bands there to float precision, and to the
    DFT bands within the model's primitive-cell error."""
    from deeph_tf.data.structure import load_structure, write_structure_folder
    from deeph_tf.infer.electronic import band_energies, bloch_operators, k_grid_points
    from deeph_tf.infer.electronic.supercell import tile_structure

    cell = load_structure(FIXTURE / SIDS[0])
    overlap = cell.read_blocks("overlap")
    _, predicted_cell = predictor.predict_structure(cell, score=False)
    k_folded = k_grid_points((4, 4, 1))  # k = (a/4, b/4, 0): all fold onto the 4x4 cell's Gamma
    h, s = bloch_operators(predicted_cell, overlap, cell)
    bands_pred = np.sort(band_energies(h, s, k_folded).ravel())
    h, s = bloch_operators(cell.read_blocks("hamiltonian"), overlap, cell)
    bands_dft = np.sort(band_energies(h, s, k_folded).ravel())

    poscar, info, tiled = tile_structure(cell, {"overlap": overlap}, (4, 4, 1))
    big = load_structure(write_structure_folder(tmp_path / "hBN-4x4", poscar, info, {}))  # POSCAR only
    _, predicted_big = predictor.predict_structure(big, score=False)
    assert len(predicted_big) == len(tiled["overlap"]) == 16 * len(overlap)
    h, s = bloch_operators(predicted_big, tiled["overlap"], big)
    bands_big = band_energies(h, s, np.zeros((1, 3)))[0]
    np.testing.assert_allclose(bands_big, bands_pred, atol=1e-5)
    model_error = float(np.abs(bands_pred - bands_dft).max())
    assert float(np.abs(bands_big - bands_dft).max()) <= model_error + 1e-4


def test_the_cli_default_edge_budget_is_the_workflows():
    from deeph_tf.cli import dpredict
    from deeph_tf.workflows.predict import DEFAULT_MAX_EDGES

    assert dpredict.DEFAULT_MAX_EDGES == DEFAULT_MAX_EDGES
    assert dpredict.build_parser().parse_args(["-m", "m", "-s", "s", "-o", "o"]).max_edges == DEFAULT_MAX_EDGES
