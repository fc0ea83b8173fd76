"""End to end: dtrain (fresh, restart, init-model, init-frz-model), dfreeze, checkpoints, lcurve.

Runs the real commands in-process on the committed PySCF fixture (8 small molecules) with
a tiny model, so every step is cheap; the loop is the one users run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "mixed_molecules" / "dft"
TINY_MODEL = {"irreps_hidden": "8x0e+4x1o+4x2e", "num_blocks": 1, "lmax_sh": 2, "num_radial_basis": 4,
              "radial_hidden": [8]}


def write_input(folder: Path, **training) -> Path:
    """An input for the fixture: 6 train, 2 validation structures, tiny model."""
    config = {
        "_comment": "test input",
        "model": dict(TINY_MODEL),
        "learning_rate": {"type": "exp", "start_lr": 3e-3, "stop_lr": 1e-4, "decay_steps": 2},
        "training": {
            "training_data": {"systems": str(FIXTURE), "batch_size": 2},
            "validation_data": None,
            "dataset": {"split": {"train": 6, "validate": 2, "test": 0, "seed": 1}, "num_buckets": 1,
                        "graph_dir": "graphs"},
            "numb_steps": 6, "disp_freq": 2, "save_freq": 3, "max_ckpt_keep": 2, "seed": 5,
            **training,
        },
    }
    path = folder / "input.json"
    path.write_text(json.dumps(config, indent=1))
    return path


def dtrain(*args: str) -> int:
    from deeph_tf.cli.dtrain import main

    return main([*args, "-v", "WARNING"])


def lcurve_steps(path: Path = Path("lcurve.out")) -> list:
    return [int(s) for s in np.atleast_1d(np.genfromtxt(path, names=True)["step"])]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One fresh 6-step run; tests copy what they change."""
    folder = tmp_path_factory.mktemp("dtrain")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        write_input(folder)
        assert dtrain("input.json") == 0
    finally:
        os.chdir(cwd)
    return folder


def test_fresh_run_writes_deepmd_outputs(trained):
    out = json.loads((trained / "out.json").read_text())
    assert "_comment" not in out and out["training"]["numb_steps"] == 6
    assert out["optimizer"]["type"] == "adam" and out["loss"]["type"] == "mae"
    data = np.genfromtxt(trained / "lcurve.out", names=True)
    assert list(data.dtype.names) == ["step", "loss_val", "loss_trn", "mae_val", "mae_trn", "mae_gauge_val",
                                      "mae_gauge_trn", "lr"]
    assert [int(s) for s in data["step"]] == [0, 2, 4, 6]
    assert data["mae_trn"][-1] < data["mae_trn"][0]  # it learns
    assert data["lr"][0] == pytest.approx(3e-3, rel=0.05)
    files = sorted(p.name for p in trained.glob("model.ckpt*"))
    assert files == ["model.ckpt-3.h5", "model.ckpt-6.h5", "model.ckpt-best.h5", "model.ckpt.h5"]
    assert (trained / "model.ckpt.h5").resolve().name == "model.ckpt-6.h5"
    pointer = json.loads((trained / "checkpoint").read_text())
    assert pointer["latest"] == "model.ckpt-6.h5" and pointer["kept"] == ["model.ckpt-3.h5", "model.ckpt-6.h5"]
    assert (trained / "lcurve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_checkpoint_embeds_the_normalized_input(trained):
    from deeph_tf.artifacts.checkpoint import read_checkpoint, resolve_checkpoint

    ckpt = read_checkpoint(resolve_checkpoint(trained / "model.ckpt"))
    assert ckpt.step == 6
    assert ckpt.input == json.loads((trained / "out.json").read_text())
    assert ckpt.layout["elements_orbital_map"] and len(ckpt.optimizer_variables) > len(ckpt.model_weights)


def _copy_run(trained: Path, target: Path) -> None:
    import shutil

    shutil.copytree(trained, target, symlinks=True)


def test_restart_continues_step_optimizer_and_lcurve(trained, tmp_path, monkeypatch):
    from deeph_tf.artifacts.checkpoint import read_checkpoint, resolve_checkpoint

    run = tmp_path / "run"
    _copy_run(trained, run)
    monkeypatch.chdir(run)
    write_input(run, numb_steps=10)
    assert dtrain("input.json", "-r", "model.ckpt") == 0
    assert lcurve_steps() == [0, 2, 4, 6, 8, 10]
    ckpt = read_checkpoint(resolve_checkpoint("model.ckpt"))
    assert ckpt.step == 10
    iterations = [v for v in ckpt.optimizer_variables if v.shape == ()]
    assert int(iterations[0]) == 10  # the optimizer's step counter continued (the moments: next test)


def test_restart_continues_bit_for_bit(tmp_path, monkeypatch):
    """10 straight steps == 6 steps + restart (-r) + 4 steps: weights and every optimizer variable
    (Adam's moments, step counter) bit for bit. One training structure makes every batch the same
    (a restart reshuffles with another seed) and a constant learning rate makes the schedule's
    length irrelevant, so only what the checkpoint carries can make the runs differ."""
    from deeph_tf.artifacts.checkpoint import read_checkpoint

    whole_set = {"training_data": {"systems": str(FIXTURE), "batch_size": 1},
                 "dataset": {"split": {"train": 1, "validate": 1, "test": 6, "seed": 1}, "num_buckets": 1,
                             "graph_dir": str(tmp_path / "graphs")}, "report": False, "plots": False}
    constant_lr = {"type": "exp", "start_lr": 3e-3, "stop_lr": 3e-3, "decay_steps": 2}

    def run(name: str, numb_steps: int, *flags: str) -> Path:
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        monkeypatch.chdir(folder)
        path = write_input(folder, numb_steps=numb_steps, **whole_set)
        config = json.loads(path.read_text())
        config["learning_rate"] = constant_lr
        path.write_text(json.dumps(config))
        assert dtrain("input.json", *flags) == 0
        return folder / "model.ckpt-10.h5"

    straight = read_checkpoint(run("straight", 10))
    run("restarted", 6)
    restarted = read_checkpoint(run("restarted", 10, "-r", "model.ckpt"))
    assert straight.step == restarted.step == 10
    for what in ("model_weights", "optimizer_variables"):
        ours, theirs = getattr(straight, what), getattr(restarted, what)
        assert len(ours) == len(theirs) > 0
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a, b, err_msg=what)
    assert any(np.any(v != 0) for v in restarted.optimizer_variables if v.ndim > 0)  # moments, not zeros


def test_restart_after_a_killed_run_drops_rows_beyond_the_checkpoint(trained, tmp_path, monkeypatch):
    run = tmp_path / "run"
    _copy_run(trained, run)
    monkeypatch.chdir(run)
    write_input(run, numb_steps=8)
    assert dtrain("input.json", "-r", "model.ckpt-3") == 0  # lcurve had rows 4 and 6 beyond step 3
    assert lcurve_steps() == [0, 2, 4, 6, 8]


def test_init_model_resets_step_and_lcurve(trained, tmp_path, monkeypatch):
    from deeph_tf.artifacts.checkpoint import read_checkpoint, resolve_checkpoint

    monkeypatch.chdir(tmp_path)
    Path("lcurve.out").write_text("#  step  stale\n      9   1.0\n")
    write_input(tmp_path, numb_steps=0)
    assert dtrain("input.json", "-i", str(trained / "model.ckpt")) == 0
    assert lcurve_steps() == [0]  # truncated, restarted at 0
    ckpt = read_checkpoint(resolve_checkpoint("model.ckpt"))
    source = read_checkpoint(resolve_checkpoint(trained / "model.ckpt"))
    assert ckpt.step == 0
    for a, b in zip(ckpt.model_weights, source.model_weights):  # the weights came over
        np.testing.assert_array_equal(a, b)
    iterations = [v for v in ckpt.optimizer_variables if v.shape == ()]
    assert int(iterations[0]) == 0  # a fresh optimizer


def test_freeze_then_plain_tensorflow_predicts_like_the_checkpoint(trained, tmp_path):
    from deeph_tf.cli.dfreeze import main as dfreeze
    from deeph_tf.data.structure import load_structure
    from deeph_tf.infer.predict import Predictor

    frozen = tmp_path / "frozen_model"
    assert dfreeze(["-c", str(trained), "-o", str(frozen), "-v", "WARNING"]) == 0
    meta = json.loads((frozen / "metadata.json").read_text())
    assert meta["input"] == json.loads((trained / "out.json").read_text())
    assert meta["layout"]["elements_orbital_map"] and meta["version"]

    predictor = Predictor.load(trained / "model.ckpt")
    structure = load_structure(sorted(p for p in FIXTURE.iterdir() if p.is_dir())[0])
    graph, _ = predictor.predict_structure(structure)
    node, edge = predictor.predict_graph(graph)
    inputs = {
        "atomic_numbers": np.asarray(graph["atomic_numbers"], np.int32),
        "positions": np.asarray(graph["positions"], np.float32),
        "lattice": np.asarray(graph["lattice"], np.float32),
        "edge_src": np.asarray(graph["edge_src"], np.int32),
        "edge_dst": np.asarray(graph["edge_dst"], np.int32),
        "edge_shift": np.asarray(graph["edge_shift"], np.int32),
        "edge_reverse": np.asarray(graph["edge_reverse"], np.int32),
    }
    np.savez(tmp_path / "inputs.npz", **inputs)
    script = textwrap.dedent(f"""
        import sys
        sys.modules["deeph_tf"] = None  # importing deeph_tf now fails: plain TensorFlow only
        import json, numpy as np, tensorflow as tf
        model = tf.saved_model.load({str(frozen)!r})
        meta = json.loads(model.metadata.numpy())
        inputs = {{k: tf.constant(v) for k, v in np.load({str(tmp_path / 'inputs.npz')!r}).items()}}
        out = model.signatures["serving_default"](**inputs)
        np.savez({str(tmp_path / 'out.npz')!r}, node=out["node_blocks"].numpy(), edge=out["edge_blocks"].numpy())
        print(meta["version"])
    """)
    env = dict(os.environ, PYTHONPATH="", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = np.load(tmp_path / "out.npz")
    # dtest feeds float64 edge vectors, the signature float32 positions: float32 rounding apart.
    scale = float(max(np.abs(node).max(), np.abs(edge).max()))
    np.testing.assert_allclose(out["node"], node, atol=1e-5 * scale)
    np.testing.assert_allclose(out["edge"], edge, atol=1e-5 * scale)
    # A frozen model is also a valid starting point (init-frz-model).
    run = tmp_path / "finetune"
    run.mkdir()
    cwd = os.getcwd()
    os.chdir(run)
    try:
        write_input(run, numb_steps=0)
        assert dtrain("input.json", "-f", str(frozen)) == 0
        from deeph_tf.artifacts.checkpoint import read_checkpoint, resolve_checkpoint

        ckpt = read_checkpoint(resolve_checkpoint("model.ckpt"))
        trained_ckpt = read_checkpoint(resolve_checkpoint(trained / "model.ckpt"))
        assert ckpt.step == 0
        for a, b in zip(ckpt.model_weights, trained_ckpt.model_weights):
            np.testing.assert_array_equal(a, b)
    finally:
        os.chdir(cwd)


def test_same_seed_same_lcurve(trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_input(tmp_path)
    assert dtrain("input.json") == 0
    assert Path("lcurve.out").read_text() == (trained / "lcurve.out").read_text()


def test_nan_loss_stops_with_the_last_checkpoint_intact(tmp_path, monkeypatch):
    from deeph_tf.train import step as step_module
    from deeph_tf.artifacts.checkpoint import read_checkpoint, resolve_checkpoint

    original = step_module.CompiledSteps.train
    calls = {"n": 0}

    def train_then_nan(self, batch):
        calls["n"] += 1
        out = original(self, batch)
        return dict(out, loss=out["loss"] * np.nan) if calls["n"] == 5 else out

    monkeypatch.setattr(step_module.CompiledSteps, "train", train_then_nan)
    monkeypatch.chdir(tmp_path)
    write_input(tmp_path, jit_compile=False)
    assert dtrain("input.json") == 1
    ckpt = read_checkpoint(resolve_checkpoint("model.ckpt"))
    assert ckpt.step == 3 and all(np.isfinite(w).all() for w in ckpt.model_weights)


def test_bad_flags_and_inputs_name_the_problem(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_input(tmp_path)
    assert dtrain("input.json", "-r", "missing.ckpt") == 2  # a checkpoint the user named: bad input
    assert "missing.ckpt" in capsys.readouterr().err
    config = json.loads(Path("input.json").read_text())
    config["learning_rate"]["strat_lr"] = 1e-3
    Path("typo.json").write_text(json.dumps(config))
    assert dtrain("typo.json") == 2
    assert "undefined key 'strat_lr' at learning_rate; did you mean start_lr?" in capsys.readouterr().err
    config = json.loads(Path("input.json").read_text())
    config["training"]["numb_steps"] = "ten"
    Path("type.json").write_text(json.dumps(config))
    assert dtrain("type.json") == 2
    assert "training.numb_steps" in capsys.readouterr().err
    assert not Path("lcurve.out").exists() and not Path("graphs").exists()  # nothing heavy started


def test_dtest_scores_writes_predictions_and_matches_a_hand_computation(trained, tmp_path, capsys):
    from deeph_tf.cli.dtest import main as dtest
    from deeph_tf.data.structure import load_structure

    out_dir, prefix = tmp_path / "pred", tmp_path / "detail" / "water"
    code = dtest(["-m", str(trained / "model.ckpt"), "-s", str(FIXTURE.parent), "-n", "3", "-o", str(out_dir),
                  "-d", str(prefix), "-v", "WARNING"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "gauge" in printed and "raw" in printed and "orbital energies" in printed
    summary = json.loads(Path(f"{prefix}.summary.json").read_text())
    assert summary["n_structures"] == summary["n_scored"] == 3
    predicted_folders = sorted(p for p in (out_dir / "dft").iterdir())
    assert len(predicted_folders) == 3
    # By hand: MAE over entries whose shell pair has max|S| > 1e-10 (all on-site entries), per structure.
    maes = []
    for folder in predicted_folders:
        reference, prediction = load_structure(FIXTURE / folder.name), load_structure(folder)
        h_ref, s_ref = reference.read_blocks("hamiltonian"), reference.read_blocks("overlap")
        h_pred = prediction.read_blocks("hamiltonian_pred")
        assert h_pred.max_hermiticity_deviation() < 1e-6
        index = h_pred.pair_index()
        errors = []
        for key, block, s_block in zip(h_ref.keys(), h_ref.blocks, s_ref.blocks):
            pred = h_pred.blocks[index[key]]
            on_site = key[:3] == (0, 0, 0) and key[3] == key[4]
            rows = reference.orbital_slices(key[3])
            cols = reference.orbital_slices(key[4])
            for r in rows:
                for c in cols:
                    if on_site or np.abs(s_block[r, c]).max() > 1e-10:
                        errors.append(np.abs(pred[r, c] - block[r, c]).ravel())
        maes.append(np.concatenate(errors).mean())
    assert summary["blocks"]["mae_raw_meV"] == pytest.approx(1e3 * np.mean(maes), rel=1e-6)
    lines = Path(f"{prefix}.hamiltonian.out").read_text().splitlines()
    assert lines[0].startswith("#") and len(lines) > 100
    assert (tmp_path / "detail" / "water.parity.png").read_bytes()[:4] == b"\x89PNG"
    assert Path(f"{prefix}.orbital_energy.out").is_file()


def test_dtest_predicts_structures_without_a_reference(trained, tmp_path, capsys):
    import shutil

    from deeph_tf.cli.dtest import main as dtest
    from deeph_tf.data.structure import load_structure

    source = sorted(p for p in FIXTURE.iterdir() if p.is_dir())[0]
    target = tmp_path / "inputs" / "dft" / source.name
    target.mkdir(parents=True)
    for name in ("POSCAR", "info.json", "overlap.h5"):
        shutil.copy(source / name, target / name)
    assert dtest(["-m", str(trained / "model.ckpt"), "-s", str(tmp_path / "inputs"), "-o", str(tmp_path / "out"),
                  "-v", "WARNING"]) == 0
    assert "1 structure(s) predicted, 0 scored" in capsys.readouterr().out
    predicted = load_structure(tmp_path / "out" / "dft" / source.name).read_blocks("hamiltonian_pred")
    assert predicted.n_pairs == load_structure(source).read_blocks("overlap").n_pairs
