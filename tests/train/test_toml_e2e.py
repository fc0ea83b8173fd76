"""DeepH-pack's TOMLs run as they are: dtrain train.toml (epochs, run folder), continued (restart at an
epoch, fine-tuning from the best model), dpredict infer.toml, only_save_graph, and JSON = TOML.

The reference files (tests/fixtures/deeph_pack/) are used with only the run's length and the split
sizes changed (they must fit 8 molecules); the light preset is made tiny (as test_dtrain_e2e's
TINY_MODEL) so every run compiles in seconds.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from toml_helpers import link_inputs, write_toml

TINY_PRESET = {"irreps_hidden": "8x0e+4x1o+4x2e", "num_blocks": 1, "lmax_sh": 2, "num_radial_basis": 4,
               "radial_hidden": [8]}
#: 6 training and 2 validation structures in batches of 2: 3 steps per epoch; 3 epochs, a checkpoint each.
SHORT = {"process.train.max_epoch": 3, "process.train.dataloader.batch_size": 2,
         "process.train.dataloader.train_size": 6, "process.train.dataloader.validate_size": 2,
         "data.model_save.latest_interval": 1, "data.model_save.latest_num": 2}


def dtrain(*args: str) -> int:
    from deeph_tf.cli.dtrain import main

    return main(list(args))


def run_folders(folder: Path) -> list:
    return sorted(p for p in (folder / "outputs").iterdir() if p.is_dir())


def lcurve_steps(run: Path) -> list:
    return [int(s) for s in np.atleast_1d(np.genfromtxt(run / "lcurve.out", names=True)["step"])]


def _eager_steps(patch: pytest.MonkeyPatch) -> None:
    """Steps as tf.functions without XLA (TOMLs have no jit_compile key): tracing a tiny model takes a
    few seconds, an XLA compilation on 2 shared cores several times that; the loop is the same."""
    import deeph_tf.train.trainer as trainer

    compiled = trainer.CompiledSteps
    patch.setattr(trainer, "CompiledSteps", lambda *args, **kwargs: compiled(*args, **{**kwargs, "jit_compile": False}))


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """One train.toml run (3 epochs) in ``work/case``, the light preset tiny; yields (case, run folder)."""
    from deeph_tf.model.backbone import PRESETS

    folder = tmp_path_factory.mktemp("toml") / "case"
    folder.mkdir()
    cwd = os.getcwd()
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(PRESETS, "light", TINY_PRESET)
        patch.setenv("CUDA_VISIBLE_DEVICES", "")
        _eager_steps(patch)
        os.chdir(folder)
        try:
            link_inputs(folder)
            write_toml(folder, "train.toml", SHORT)
            assert dtrain("train.toml") == 0
            yield folder, run_folders(folder)[0]
        finally:
            os.chdir(cwd)


@pytest.fixture
def case(work, monkeypatch):
    monkeypatch.chdir(work[0])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    _eager_steps(monkeypatch)
    return work


def test_template_runs_in_epochs_into_a_timestamped_run_folder(case):
    folder, run = case
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d", run.name)
    assert lcurve_steps(run) == [0, 3, 6, 9]  # a display at the end of every epoch
    files = sorted(p.name for p in (run / "model").glob("model.ckpt*"))
    assert files == ["model.ckpt-6.h5", "model.ckpt-9.h5", "model.ckpt-best.h5", "model.ckpt.h5"]  # latest_num 2
    out = json.loads((run / "out.json").read_text())
    assert out["training"]["max_epoch"] == 3 and out["training"]["numb_steps"] is None
    log = (run / "dtrain.log").read_text()
    assert "DeepH-pack training TOML" in log and "system.jax_memory_preallocate" in log
    assert "max_epoch 3 = 9 steps (3 steps per epoch)" in log and re.search(r"step +9  epoch +3\.00", log)
    from deeph_tf.artifacts.checkpoint import read_checkpoint

    ckpt = read_checkpoint(run / "model" / "model.ckpt-6.h5")
    assert ckpt.extra["steps_per_epoch"] == 3 and ckpt.extra["epoch"] == 2
    assert not (folder / "out.json").exists() and not (folder / "lcurve.out").exists()


def test_continued_restart_from_an_epoch(case):
    """continued: latest model of epoch 2, same data, saved optimizer (-r): steps 6 -> 12 (max_epoch 4)."""
    folder, run = case
    values = {**SHORT, "process.train.max_epoch": 4, "process.train.continued.enable": True,
              "process.train.continued.previous_output_dir": str(run.relative_to(folder)),
              "process.train.continued.load_model_epoch": 2}
    write_toml(folder, "continue.toml", values, "train.toml")
    before = set(run_folders(folder))
    assert dtrain("continue.toml") == 0
    (new,) = set(run_folders(folder)) - before
    assert lcurve_steps(new) == [9, 12]
    from deeph_tf.artifacts.checkpoint import read_checkpoint

    ckpt = read_checkpoint(new / "model" / "model.ckpt-12.h5")
    assert int([v for v in ckpt.optimizer_variables if v.shape == ()][0]) == 12  # the optimizer's steps went on
    assert "dtrain --restart" in (new / "dtrain.log").read_text()


def test_finetune_file_starts_from_the_best_model_with_a_new_optimizer(case):
    """finetune.toml (eagle keys, warmup_cosine_decay, HS + standardize_gauge) from the best model (-i);
    the cosine reaches min_learning_rate_scale at step 6 and training stops there."""
    folder, run = case
    link = folder / "path" / "to" / "the" / "universal" / "model" / "run"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(run)
    values = {"process.train.max_epoch": 3, "process.train.dataloader.train_size": 6,
              "process.train.dataloader.validate_size": 1, "process.train.dataloader.test_size": 1,
              "process.train.scheduler.warmup_steps": 2, "process.train.scheduler.decay_steps": 4}
    write_toml(folder, "finetune.toml", values)
    before = set(run_folders(folder))
    assert dtrain("finetune.toml") == 0
    (new,) = set(run_folders(folder)) - before
    data = np.genfromtxt(new / "lcurve.out", names=True)
    assert [int(s) for s in data["step"]] == [0, 6]  # epoch 1 ends at step 6, where the cosine stops the run
    assert data["lr"][0] == pytest.approx(3e-5)  # init_scale x init_learning_rate
    log = (new / "dtrain.log").read_text()
    assert "dtrain --init-model" in log and "model.ckpt-best.h5" in log and "reached learning_rate.early_stop_lr" in log
    from deeph_tf.artifacts.checkpoint import read_checkpoint, resolve_checkpoint

    ckpt = read_checkpoint(resolve_checkpoint(new / "model" / "model.ckpt"))
    assert ckpt.step == 6 and ckpt.extra["training_data"]["lineage"][0]["model"].endswith("model.ckpt-best.h5")


def test_inference_file_predicts_with_dpredict(case, capsys):
    """infer.toml verbatim: model_dir ../_.DeepH-UMM.D20k-P48M/model (a run's model/), best model,
    graph type S (pairs of overlap.h5), outputs in <outputs_dir>/<timestamp>/dft/<sid>/."""
    folder, run = case
    umm = folder.parent / "_.DeepH-UMM.D20k-P48M"
    if not umm.exists():
        umm.symlink_to(run)
    from deeph_tf.cli.dpredict import main

    before = set(run_folders(folder))
    assert main([str(Path(__file__).parents[1] / "fixtures" / "deeph_pack" / "infer.toml")]) == 0
    (new,) = set(run_folders(folder)) - before
    predicted = sorted(p.parent.name for p in new.glob("dft/*/hamiltonian_pred.h5"))
    assert len(predicted) == 8 and "water-000002" in predicted
    record = json.loads((new / "dft" / "water-000002" / "prediction.json").read_text())
    assert record["graph"] == "overlap.h5" and record["model"].endswith("model.ckpt-best.h5")


def test_only_save_graph_builds_graphs_and_exits(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    link_inputs(tmp_path)
    write_toml(tmp_path, "train.toml", {"data.graph.only_save_graph": True, "data.graph.dataset_name": "G"})
    assert dtrain("train.toml") == 0
    index = json.loads((tmp_path / "inputs" / "graph" / "G" / "index.json").read_text())
    assert index["subsets"]["train"]["counts"]["structures"] == 1  # the template's train_size
    assert not list((tmp_path / "outputs").glob("*/model"))


def test_json_and_toml_of_the_same_run_write_the_same_out_json(case, tmp_path, monkeypatch):
    """The template as a hand-written JSON input: out.json is identical (both stop right after writing it)."""
    monkeypatch.chdir(tmp_path)
    link_inputs(tmp_path)
    import deeph_tf.train.trainer as trainer

    def stop(*args, **kwargs):
        raise KeyboardInterrupt  # out.json is written; no graphs, no training

    monkeypatch.setattr(trainer, "prepare_graphs", stop)
    write_toml(tmp_path, "train.toml")
    with pytest.raises(KeyboardInterrupt):
        dtrain("train.toml")
    (run,) = run_folders(tmp_path)
    config = {
        "model": {"preset": "light", "irreps_hidden": None, "num_blocks": 3, "cutoff": 7.5, "parity": True,
                  "target": "hamiltonian", "precision": "float32", "standardize_gauge": False},
        "learning_rate": {"type": "reduce_on_plateau", "start_lr": 2e-3, "factor": 0.5, "patience": 500, "rtol": 0.05,
                          "cooldown": 100, "min_lr": 2e-3 * 1e-4, "stop_at_min_lr": True},
        "loss": {"type": "mse"},
        "optimizer": {"type": "adamw", "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "weight_decay": 0.001},
        "training": {
            "training_data": {"systems": "inputs/dft", "batch_size": 1},
            "dataset": {"data_dir_depth": 0, "graph_dir": "inputs/graph/DATASET-DEMO", "storage": "memory",
                        "num_workers": 0, "num_buckets": 1, "split": {"train": 1, "validate": 0, "test": 0, "seed": 137}},
            "seed": 137, "max_epoch": 10000, "disp_freq_epochs": 1, "save_freq_epochs": 100, "max_ckpt_keep": 10,
            "monitor_loss": "training_mean", "disp_file": f"{run.relative_to(tmp_path)}/lcurve.out",
            "save_ckpt": f"{run.relative_to(tmp_path)}/model/model.ckpt",
        },
    }
    (tmp_path / "input.json").write_text(json.dumps(config))
    with pytest.raises(KeyboardInterrupt):
        dtrain("input.json", "-o", "json_out.json")
    assert json.loads((tmp_path / "json_out.json").read_text()) == json.loads((run / "out.json").read_text())
