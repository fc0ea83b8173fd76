"""Fine-tuning (issue "Universal models"): onto a subset of the model's elements, onto new
elements, refused on a changed basis, and the DeePMD/DeepH continued-training choices.

A tiny model is pretrained for a few steps on the committed PySCF fixture without nitrogen
(methane, formaldehyde, methanol, water: H, C, O), then fine-tuned onto water alone (H, O)
and onto ammonia and hydrogen cyanide (H, C, N: N is new).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "mixed_molecules" / "dft"
TINY_MODEL = {"irreps_hidden": "8x0e+4x1o+4x2e", "num_blocks": 1, "lmax_sh": 2, "num_radial_basis": 4,
              "radial_hidden": [8]}
NO_NITROGEN = ("methane-000000", "methane-000006", "formaldehyde-000003", "methanol-000005", "water-000002")
NITROGEN = ("ammonia-000001", "ammonia-000007", "hydrogen_cyanide-000004")


def dataset(folder: Path, names) -> Path:
    """A dft/ folder holding copies of the fixture structures ``names``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copytree(FIXTURE / name, folder / name)
    return folder


def write_input(folder: Path, systems: Path, n_train: int, steps: int = 4, **dataset_options) -> Path:
    n = len(list(systems.iterdir()))
    config = {
        "model": dict(TINY_MODEL),
        "learning_rate": {"type": "exp", "start_lr": 3e-3, "stop_lr": 1e-4, "decay_steps": 2},
        "training": {
            "training_data": {"systems": str(systems), "batch_size": 1},
            "dataset": {"split": {"train": n_train, "validate": n - n_train, "test": 0, "seed": 1}, "num_buckets": 1,
                        "graph_dir": "graphs", **dataset_options},
            "numb_steps": steps, "disp_freq": 2, "save_freq": 2, "max_ckpt_keep": 3, "seed": 5, "report": False,
            "plots": False,
        },
    }
    path = folder / "input.json"
    path.write_text(json.dumps(config, indent=1))
    return path


def dtrain(folder: Path, *args: str) -> int:
    from deeph_tf.cli.dtrain import main

    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return main([*args, "-v", "WARNING"])
    finally:
        os.chdir(cwd)


def checkpoint_layout(path: Path) -> dict:
    from deeph_tf.artifacts.checkpoint import read_checkpoint, resolve_checkpoint

    return read_checkpoint(resolve_checkpoint(path)).layout


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """A 4-step H/C/O model: the folder holds model.ckpt*, and frozen_model."""
    folder = tmp_path_factory.mktemp("pretrain")
    write_input(folder, dataset(folder / "dft", NO_NITROGEN), n_train=4)
    assert dtrain(folder, "input.json") == 0
    from deeph_tf.cli.dfreeze import main as dfreeze

    assert dfreeze(["-c", str(folder), "-o", str(folder / "frozen_model"), "-v", "WARNING"]) == 0
    assert list(checkpoint_layout(folder / "model.ckpt")["elements_orbital_map"]) == ["H", "C", "O"]
    return folder


def test_finetune_on_a_subset_of_the_elements_keeps_the_model_layout(pretrained, tmp_path):
    write_input(tmp_path, dataset(tmp_path / "dft", ["water-000002"]), n_train=1, steps=2)
    assert dtrain(tmp_path, "input.json", "-i", str(pretrained / "model.ckpt")) == 0
    layout = checkpoint_layout(tmp_path / "model.ckpt")
    assert layout == checkpoint_layout(pretrained / "model.ckpt")  # H, C, O: carbon kept without carbon data
    index = json.loads((tmp_path / "graphs" / "index.json").read_text())
    assert list(index["layout"]["elements_orbital_map"]) == ["H", "C", "O"]


def test_finetune_onto_a_new_element_extends_the_model(pretrained, tmp_path):
    write_input(tmp_path, dataset(tmp_path / "dft", NITROGEN), n_train=2, steps=2)
    assert dtrain(tmp_path, "input.json", "--finetune", str(pretrained / "frozen_model")) == 0
    layout = checkpoint_layout(tmp_path / "model.ckpt")
    assert list(layout["elements_orbital_map"]) == ["H", "C", "N", "O"]
    assert layout["common_orbital_types"] == checkpoint_layout(pretrained / "model.ckpt")["common_orbital_types"]
    # the fine-tuned model predicts all four elements (dtest on a structure of each kind)
    from deeph_tf.infer.predict import Predictor
    from deeph_tf.data.structure import load_structure

    predictor = Predictor.load(tmp_path / "model.ckpt")
    for name in ("water-000002", "ammonia-000001"):
        _, blocks = predictor.predict_structure(load_structure(FIXTURE / name))
        assert all(np.all(np.isfinite(b)) for b in blocks.blocks)


def test_extended_model_predicts_the_old_elements_exactly_as_before(pretrained):
    """Every trained weight is carried: on H/C/O structures the extension equals the model."""
    from deeph_tf.artifacts.loader import load_model
    from deeph_tf.data.layout import OrbitalLayout
    from deeph_tf.data.structure import load_structure
    from deeph_tf.infer.predict import Predictor
    from deeph_tf.model.statistics import TargetStatistics
    from deeph_tf.model.transfer import extend_model

    model, metadata = load_model(pretrained / "model.ckpt")
    old = OrbitalLayout.from_dict(metadata["layout"])
    new = OrbitalLayout.from_orbital_maps([("N data", {"N": list(old.shells("C"))})], base=old)
    assert new.elements == ("H", "C", "N", "O") and new.common_shells == old.common_shells
    n_terms = len(np.asarray(model.get_config()["node_scale"])[0])
    stats = TargetStatistics("hamiltonian", node_scale=np.full((4, n_terms), 2.0).tolist(),
                             node_shift=np.zeros((4, n_terms)).tolist(), edge_scale=np.full((16, n_terms), 3.0).tolist(),
                             avg_num_neighbors=1.0, max_edge_length=5.0, num_structures=1,
                             pair_max_edge_length=np.full((4, 4), 9.0).tolist())
    wider = extend_model(model, old, new, stats, "pretrained")
    assert wider.elements == ["H", "C", "N", "O"]
    # the new element's head rows come from the new statistics, the old ones are the trained ones
    np.testing.assert_allclose(wider.node_head.scale.numpy()[2], 2.0)
    np.testing.assert_array_equal(wider.node_head.scale.numpy()[[0, 1, 3]], model.node_head.scale.numpy())
    np.testing.assert_array_equal(wider.edge_head.scale.numpy()[3 * 4 + 1], model.edge_head.scale.numpy()[2 * 3 + 1])
    assert wider.pair_cutoffs[2][2] == 9.0 and wider.pair_cutoffs[0][0] >= model.pair_cutoffs[0][0]
    before = Predictor.from_model(model, metadata, "old")
    after = Predictor.from_model(wider, dict(metadata, layout=new.to_dict()), "new")
    for name in NO_NITROGEN:
        structure = load_structure(FIXTURE / name)
        _, a = before.predict_structure(structure)
        _, b = after.predict_structure(structure)
        np.testing.assert_array_equal(a.atom_pairs, b.atom_pairs)
        for x, y in zip(a.blocks, b.blocks):
            np.testing.assert_allclose(y, x, rtol=0, atol=1e-5 * max(1.0, np.abs(x).max()))


def test_a_changed_basis_is_refused_naming_the_element_and_both_bases(pretrained, tmp_path, capsys):
    folder = dataset(tmp_path / "dft", ["water-000002"])
    info_path = folder / "water-000002" / "info.json"
    info = json.loads(info_path.read_text())
    original = list(info["elements_orbital_map"]["O"])
    info["elements_orbital_map"]["O"] = original[:-1]  # drop O's d shell
    info["orbits_quantity"] -= 5
    info_path.write_text(json.dumps(info))
    write_input(tmp_path, folder, n_train=1, steps=2)
    assert dtrain(tmp_path, "input.json", "-i", str(pretrained / "model.ckpt")) != 0
    err = capsys.readouterr().err
    assert "element O" in err and str(original) in err and str(original[:-1]) in err
    assert not (tmp_path / "model.ckpt.h5").exists()


def test_restart_onto_new_elements_is_refused_with_the_alternative(pretrained, tmp_path, capsys):
    write_input(tmp_path, dataset(tmp_path / "dft", NITROGEN), n_train=2, steps=6)
    for name in ("model.ckpt-4.h5", "checkpoint"):
        shutil.copy(pretrained / name, tmp_path / name)
    assert dtrain(tmp_path, "input.json", "-r", str(tmp_path / "model.ckpt-4.h5")) != 0
    err = capsys.readouterr().err
    assert "['N']" in err and "--finetune" in err


@pytest.mark.parametrize("which", ["model.ckpt-best", "model.ckpt-2", "model.ckpt"])
def test_start_from_best_latest_or_a_given_step(pretrained, tmp_path, which):
    """DeepH's load_model_type best/latest and load_model_epoch, as DeePMD checkpoint prefixes."""
    from deeph_tf.artifacts.checkpoint import read_checkpoint, resolve_checkpoint

    expected = read_checkpoint(resolve_checkpoint(pretrained / which))
    assert expected.step == {"model.ckpt-best": expected.step, "model.ckpt-2": 2, "model.ckpt": 4}[which]
    write_input(tmp_path, dataset(tmp_path / "dft", NO_NITROGEN[:3]), n_train=2, steps=0)
    assert dtrain(tmp_path, "input.json", "-i", str(pretrained / which)) == 0
    started = read_checkpoint(resolve_checkpoint(tmp_path / "model.ckpt"))
    assert started.step == 0
    for a, b in zip(started.model_weights, expected.model_weights):
        np.testing.assert_array_equal(a, b)


def test_dinspect_tells_what_a_model_covers_and_where_it_came_from(pretrained, tmp_path, capsys):
    from deeph_tf.cli.dinspect import main as dinspect

    assert dinspect([str(pretrained / "frozen_model"), "--json"]) == 0
    frozen = json.loads(capsys.readouterr().out)
    assert frozen["kind"] == "frozen" and frozen["elements"] == ["H", "C", "O"] and frozen["step"] == 4
    assert frozen["layout"]["common_orbital_types_str"] == "s3p2d1"
    assert frozen["training_data"]["subsets"]["train"]["structures"] == 4
    assert frozen["training_data"]["elements"] == ["H", "C", "O"] and frozen["training_data"]["lineage"] == []
    assert frozen["parameters"] > 1000 and frozen["architecture"]["num_blocks"] == 1
    assert np.asarray(frozen["pair_cutoffs_A"]).shape == (3, 3)

    write_input(tmp_path, dataset(tmp_path / "dft", NITROGEN), n_train=2, steps=0)
    assert dtrain(tmp_path, "input.json", "--finetune", str(pretrained / "frozen_model")) == 0
    capsys.readouterr()
    assert dinspect([str(tmp_path / "model.ckpt")]) == 0
    text = capsys.readouterr().out
    assert "elements:              4: H C N O" in text and "s3p2d1" in text
    assert "started from (1):" in text and "frozen_model" in text and "['H', 'C', 'O']" in text
    line = next(l for l in text.splitlines() if l.startswith("parameters:"))
    assert int(line.split()[1].replace(",", "")) > frozen["parameters"]  # N's embedding and head rows


def _onsite_rmse(model, graph_set) -> float:
    """RMS of label - prediction over the on-site block entries of the training structures (eV)."""
    from deeph_tf.data import keys
    from deeph_tf.model.network import model_inputs

    dataset, _ = graph_set.dataset("train", 1, shuffle=False, repeat=False, prefetch=False)
    errors = []
    for batch in dataset:
        valid = batch[keys.NODE_VALID].numpy()
        mask = batch[keys.NODE_MASK].numpy()[valid].astype(bool)
        diff = batch[keys.node_key("hamiltonian")].numpy()[valid] - model(model_inputs(batch))["node"].numpy()[valid]
        errors.append(diff[mask] ** 2)
    return float(np.sqrt(np.mean(np.concatenate(errors))))


def test_finetune_changes_the_onsite_bias_by_statistic_of_the_new_data(pretrained, tmp_path):
    """DeePMD's change-by-statistic: H and O move by their mean on-site residual on water, C
    (absent) keeps its bias, only 0e terms change, the on-site RMS error falls (the mean is the least-squares shift), and a second change
    finds nothing left to move; ``keep`` leaves the bias as saved."""
    from deeph_tf.artifacts.checkpoint import read_checkpoint, resolve_checkpoint
    from deeph_tf.artifacts.loader import load_model
    from deeph_tf.data.pipeline import GraphSet
    from deeph_tf.train.finetune_bias import change_bias_by_statistic

    frozen, _ = load_model(pretrained / "frozen_model")
    water = dataset(tmp_path / "dft", ["water-000002"])
    runs = {}
    for mode in ("change-by-statistic", "keep"):
        folder = tmp_path / mode
        folder.mkdir()
        path = write_input(folder, water, n_train=1, steps=0)
        config = json.loads(path.read_text())
        config["training"]["finetune_bias"] = mode
        path.write_text(json.dumps(config))
        assert dtrain(folder, "input.json", "--finetune", str(pretrained / "frozen_model")) == 0
        runs[mode] = load_model(resolve_checkpoint(folder / "model.ckpt"))[0]
        assert read_checkpoint(resolve_checkpoint(folder / "model.ckpt")).step == 0
    np.testing.assert_array_equal(runs["keep"].node_head.shift.numpy(), frozen.node_head.shift.numpy())
    changed = runs["change-by-statistic"]
    delta = changed.node_head.shift.numpy() - frozen.node_head.shift.numpy()
    scalar = np.array([ir.l == 0 and ir.p == 1 for _, ir in frozen.node_head.irreps_out])
    assert np.all(delta[:, ~scalar] == 0)
    assert np.all(delta[1] == 0)  # carbon: no carbon in the new data
    assert np.abs(delta[[0, 2]][:, scalar]).max() > 1e-4  # H and O moved
    for name in ("scale", "shift"):  # the rest of the model is the pretrained one
        np.testing.assert_array_equal(getattr(changed.edge_head, name).numpy(), getattr(frozen.edge_head, name).numpy())
    graph_set = GraphSet(tmp_path / "keep" / "graphs")
    before, after = _onsite_rmse(frozen, graph_set), _onsite_rmse(changed, graph_set)
    assert after < 0.99 * before
    again = change_bias_by_statistic(changed, graph_set, "hamiltonian", batch_size=1)
    assert set(again) == {"H", "O"}
    assert max(again.values()) < 1e-3 * np.abs(delta).max()
