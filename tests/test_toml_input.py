"""DeepH-pack TOML inputs: the reference files load and validate, every key maps or is refused by name.

No training here (tests/train/test_toml_e2e.py runs the files); each test converts in milliseconds.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from deeph_tf.config import ConfigError, normalize
from deeph_tf.config.deeph_pack import load_infer_toml, load_train_toml, log_notes
from toml_helpers import TOMLS, link_inputs, write_toml

NOW = dt.datetime(2024, 5, 6, 7, 8, 9)


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A working folder with ./inputs/dft (the molecules) and a previous run folder with checkpoints."""
    monkeypatch.chdir(tmp_path)
    link_inputs(tmp_path)
    run = tmp_path / "path" / "to" / "the" / "universal" / "model" / "run" / "model"
    run.mkdir(parents=True)
    (run / "checkpoint").write_text(json.dumps({"latest": "model.ckpt-9.h5", "kept": ["model.ckpt-9.h5"],
                                                "best": "model.ckpt-best.h5"}))
    umm = tmp_path.parent / "_.DeepH-UMM.D20k-P48M"
    if not umm.exists():
        umm.symlink_to(run.parent)
    return tmp_path


def train_plan(folder: Path, values=None, source="train.toml"):
    return load_train_toml(write_toml(folder, "case.toml", values, source), now=NOW)


def refusal(folder: Path, values, source="train.toml", kind="train") -> str:
    path = write_toml(folder, "case.toml", values, source)
    with pytest.raises(ConfigError) as info:
        (load_train_toml if kind == "train" else load_infer_toml)(path, now=NOW)
    return str(info.value)


# ------------------------------------------------------------------ the reference files


def test_template_maps_with_deeph_pack_defaults(here):
    plan = train_plan(here)
    c = plan.config
    assert c == normalize(c)  # a normalized input; normalizing it again changes nothing
    assert plan.run_dir == Path("outputs") / "2024-05-06_07-08-09" and plan.start is None
    assert plan.output == "outputs/2024-05-06_07-08-09/out.json" and plan.log_file.name == "dtrain.log"
    assert c["model"]["preset"] == "light" and c["model"]["irreps_hidden"] is None
    assert (c["model"]["num_blocks"], c["model"]["parity"], c["model"]["cutoff"]) == (3, True, 7.5)
    assert c["loss"]["type"] == "mse"
    assert c["optimizer"] == {"type": "adamw", "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "weight_decay": 0.001,
                              "momentum": 0.0, "clip_norm": None}
    assert c["learning_rate"] == {"type": "reduce_on_plateau", "start_lr": 2e-3, "factor": 0.5, "patience": 500,
                                  "rtol": 0.05, "cooldown": 100, "min_lr": pytest.approx(2e-7), "stop_at_min_lr": True}
    t = c["training"]
    assert (t["max_epoch"], t["numb_steps"], t["disp_freq_epochs"], t["disp_freq"]) == (10000, None, 1, None)
    assert (t["save_freq_epochs"], t["save_freq"], t["max_ckpt_keep"], t["save_best"]) == (100, None, 10, True)
    assert t["seed"] == 137 and t["monitor_loss"] == "training_mean"  # validate_size 0: the training loss
    assert t["training_data"]["systems"] == "inputs/dft" and t["training_data"]["batch_size"] == 1
    d = t["dataset"]
    assert d["split"] == {"train": 1, "validate": 0, "test": 0, "seed": 137}
    assert (d["graph_dir"], d["targets"], d["storage"], d["num_buckets"]) == (
        "inputs/graph/DATASET-DEMO", ["hamiltonian"], "memory", 1)
    assert (d["common_orbital_types"], d["num_workers"], d["data_dir_depth"], d["dtype"]) == (None, 0, 0, "float32")
    assert t["disp_file"] == "outputs/2024-05-06_07-08-09/lcurve.out"
    assert t["save_ckpt"] == "outputs/2024-05-06_07-08-09/model/model.ckpt"
    assert (plan.runtime.device_type, plan.runtime.device_ids, plan.runtime.tf32) == ("gpu", [0], False)


def test_finetune_file_maps_eagle_cosine_and_continued(here):
    plan = train_plan(here, source="finetune.toml", values={"process.train.dataloader.train_size": 6,
                                                             "process.train.dataloader.validate_size": 1,
                                                             "process.train.dataloader.test_size": 1})
    c = plan.config
    assert c["model"]["preset"] == "accurate" and c["model"]["parity"] is False and c["model"]["standardize_gauge"]
    assert c["model"]["irreps_hidden"] == "96x0e+96x1e+80x2e+40x3e+20x4e+8x5e" and c["model"]["num_blocks"] == 6
    assert c["loss"]["type"] == "mae"
    assert c["learning_rate"] == {"type": "warmup_cosine", "start_lr": 3e-4, "warmup_steps": 1200,
                                  "warmup_start_lr": pytest.approx(3e-5), "stop_lr": pytest.approx(3e-7),
                                  "decay_steps": 24000, "early_stop_lr": pytest.approx(3e-4 * 1.01e-3)}
    t = c["training"]
    assert (t["max_epoch"], t["save_freq_epochs"], t["max_ckpt_keep"], t["disp_freq_epochs"]) == (1000, 5, 1, 1)
    assert t["validation_numb_btch"] == 1 and t["monitor_loss"] == "validation"
    assert t["dataset"]["graph_dir"] == "inputs/graph/MoTe2_100_OpenMX"
    flag, path = plan.start
    assert flag == "init_model" and path.endswith("path/to/the/universal/model/run/model/model.ckpt-best.h5")


def test_inference_file_maps_onto_dpredict(here):
    plan = load_infer_toml(TOMLS / "infer.toml", now=NOW)
    assert plan.model.endswith("_.DeepH-UMM.D20k-P48M/model/model.ckpt-best.h5")
    assert (plan.inputs_dir, plan.output_dir, plan.batch_size, plan.graph) == (
        "./inputs", "outputs/2024-05-06_07-08-09", 10, "overlap")
    assert (plan.data_dir_depth, plan.precision, plan.runtime.device_ids) == (0, "float32", None)


def test_inert_keys_are_logged_with_their_reason(here, caplog):
    plan = train_plan(here)
    with caplog.at_level(logging.INFO, logger="deeph_tf.config.deeph_pack"):
        log_notes(plan.toml)
    text = caplog.text
    for key in ("system.jax_memory_preallocate", "system.note", "process.train.ahead_of_time_compile",
                "process.train.multi_way_jit_num", "data.graph.dataset_name", "data.dft.validation_check",
                "process.train.do_remat", "momentum unused"):
        assert key in text, key


def test_a_run_folder_already_taken_gets_a_suffix(here):
    (here / "outputs" / "2024-05-06_07-08-09").mkdir(parents=True)
    assert train_plan(here).run_dir.name == "2024-05-06_07-08-09_2"


@pytest.mark.parametrize("net_type, preset", [("normal", "light"), ("sparrow", "light"), ("accurate", "accurate"),
                                              ("eagle", "accurate")])
def test_net_type_names(here, net_type, preset):
    plan = train_plan(here, {"model.net_type": net_type, "model.advanced.consider_parity": preset == "light",
                             "model.advanced.net_irreps": "16x0e+8x1e", "model.advanced.num_blocks": 2})
    m = plan.config["model"]
    assert (m["preset"], m["irreps_hidden"], m["num_blocks"]) == (preset, "16x0e+8x1e", 2)


def test_graph_types_rho_and_disk_storage_and_orbitals(here):
    m = train_plan(here, {"data.graph.graph_type": "Rho", "model.target_type": "Rho", "data.graph.storage_type": "disk",
                          "data.graph.common_orbital_types": "s3p2d1", "data.graph.parallel_num": 3,
                          "data.dft.data_dir_depth": 1}).config
    d = m["training"]["dataset"]
    assert m["model"]["target"] == "density_matrix" and d["targets"] == ["density_matrix"]
    assert (d["storage"], d["common_orbital_types"], d["num_workers"], d["data_dir_depth"]) == ("disk", "s3p2d1", 3, 1)


def test_split_json_sgd_plateau_in_batches_and_only_train_loss(here):
    (here / "split.json").write_text(json.dumps({"train": ["water-000002"], "validate": ["methane-000000",
                                                                                    "methane-000006"], "test": []}))
    c = train_plan(here, {"process.train.dataloader.dataset_split_json": "split.json",
                          "process.train.dataloader.only_use_train_loss": True,
                          "process.train.optimizer.type": "sgd", "process.train.optimizer.clip_norm_factor": 2.0,
                          "process.train.scheduler.accum_size": 4, "data.model_save.latest": False}).config
    t = c["training"]
    assert t["dataset"]["split"] == {"file": "split.json"} and t["validation_numb_btch"] == 2
    assert t["monitor_loss"] == "training_mean"
    assert c["optimizer"]["momentum"] == 0.8 and c["optimizer"]["weight_decay"] == 0.0 and c["optimizer"]["clip_norm"] == 2
    assert (t["disp_freq"], t["disp_freq_epochs"]) == (4, None)
    assert (t["save_freq_epochs"], t["max_ckpt_keep"]) == (10000, 1)


def test_cosine_decay_to_zero_over_the_rest_of_the_run(here):
    lr = train_plan(here, {"process.train.scheduler.type": "warmup_cosine_decay"}).config["learning_rate"]
    assert lr["decay_steps"] is None and lr["stop_lr"] == 0.0 and lr["warmup_steps"] == 10  # the template's


def test_float_types(here):
    for name, precision, dtype, tf32 in (("fp64", "float64", "float64", False), ("bf16", "mixed_bfloat16", "float32", True),
                                          ("tf32", "float32", "float32", True)):
        plan = train_plan(here, {"system.float_type": name, "system.device": "cpu"})
        assert (plan.config["model"]["precision"], plan.config["training"]["dataset"]["dtype"]) == (precision, dtype)
        assert plan.runtime.tf32 is tf32 and plan.runtime.device_type == "cpu"


# ------------------------------------------------------------------ refused keys


@pytest.mark.parametrize("values, message", [
    ({"model.loss_type": "ai2dft"}, "model.loss_type = 'ai2dft': DeepH-pack's on-the-fly unsupervised losses are not "
                                    "implemented in deeph_tf; use \"mae\", \"mse\", \"huber\" or \"wmae\""),
    ({"model.loss_type": "hopad"}, "model.loss_type = 'hopad': DeepH-pack's on-the-fly unsupervised"),
    ({"model.loss_type": "aims"}, "model.loss_type = 'aims': DeepH-pack's on-the-fly unsupervised"),
    ({"model.loss_type": "ai2dft_node"}, "model.loss_type = 'ai2dft_node': DeepH-pack's on-the-fly"),
    ({"model.loss_type": "l1"}, "model.loss_type = 'l1': expected \"mae\", \"mse\", \"huber\" or \"wmae\""),
    ({"data.graph.graph_type": "S"}, "data.graph.graph_type = 'S': the graphs would hold only the overlap"),
    ({"data.graph.graph_type": "Sap"}, "data.graph.graph_type = 'Sap': overlap-shape-only graphs are not implemented"),
    ({"data.graph.graph_type": "Rho"}, "data.graph.graph_type = 'Rho': these graphs hold no labels for "
                                       "model.target_type 'H'; use \"H\" or \"HS\""),
    ({"model.advanced.standardize_gauge": True}, "model.advanced.standardize_gauge = true: needs "
                                                 "data.graph.graph_type = \"HS\""),
    ({"model.net_type": "eagle"}, "model.advanced.consider_parity = true: must be false with net_type 'eagle'"),
    ({"model.net_type": "falcon"}, "model.net_type = 'falcon': expected \"normal\" (= \"sparrow\")"),
    ({"model.advanced.num_heads": 2}, "model.advanced.num_heads = 2: the eagle network's attention heads and bs3b "
                                      "layer are not implemented"),
    ({"model.advanced.enable_bs3b_layer": True}, "model.advanced.enable_bs3b_layer = true: the eagle network's"),
    ({"process.train.drop.dropout_rate": 0.1}, "process.train.drop.dropout_rate = 0.1: dropout is not implemented"),
    ({"system.device": "gpu*8:0-3"}, "system.device = 'gpu*8:0-3': 4 devices: deeph_tf trains and predicts on one "
                                     "device per process; for several GPUs run `horovodrun -np N dtrain FILE`"),
    ({"system.device": "cpu*4"}, "system.device = 'cpu*4': 4 devices"),
    ({"system.device": "tpu*1"}, "system.device = 'tpu*1': expected <type>*<num>:<ids>"),
    ({"system.device": "gpu*2:5"}, "device id 5 is not among the 2 devices"),
    ({"system.float_type": "fp16"}, "system.float_type = 'fp16': expected \"fp32\", \"tf32\", \"fp64\" or \"bf16\""),
    ({"system.log_level": "error"}, "system.log_level = 'error': expected \"debug\""),
    ({"data.graph.storage_type": "ssd"}, "data.graph.storage_type = 'ssd': expected \"memory\" or \"disk\""),
    ({"process.train.optimizer.type": "lamb"}, "process.train.optimizer.type = 'lamb': expected \"sgd\""),
    ({"process.train.optimizer.clip_norm_factor": 0.0}, "clip_norm_factor = 0.0: 0 would clip every gradient to zero"),
    ({"process.train.scheduler.type": "cosine"}, "scheduler.type = 'cosine': expected \"reduce_on_plateau\" or "
                                                 "\"warmup_cosine_decay\""),
    ({"process.train.scheduler.accum_size": 0}, "accum_size = 0: expected -1 (one epoch) or a number of batches"),
    ({"process.train.scheduler.type": "warmup_cosine_decay", "process.train.scheduler.end_scale": -0.5},
     "end_scale = -0.5: expected a scale >= 0, or -1 (decay to 0)"),
    ({"process.train.dataloader.train_size": 0}, "train_size = 0: sizes must be train >= 1"),
    ({"process.train.continued.enable": True}, "process.train.continued.previous_output_dir = '': required when "
                                               "continued.enable is true"),
    ({"process.train.continued.enable": True, "process.train.continued.previous_output_dir": "nowhere"},
     "previous_output_dir = 'nowhere': not a run folder"),
    ({"process.train.continued.enable": True, "process.train.continued.previous_output_dir": "path/to/the/universal/"
      "model/run", "process.train.continued.load_model_type": "best", "process.train.continued.load_model_epoch": 3},
     "load_model_epoch = 3: selects among the latest models; with load_model_type = \"best\" it must be -1"),
    ({"process.train.continued.enable": True, "process.train.continued.previous_output_dir": "path/to/the/universal/"
      "model/run", "process.train.continued.load_model_type": "oldest"}, "load_model_type = 'oldest': expected"),
    # the schema's own checks, led by the TOML key
    ({"process.train.dataloader.batch_size": 0}, "process.train.dataloader.batch_size = 0: "
                                                 "training.training_data.batch_size: 0 is not valid: expected an "
                                                 "integer >= 1"),
    ({"model.advanced.net_irreps": "64x0e+banana"}, "model.advanced.net_irreps = '64x0e+banana': model.irreps_hidden:"),
    ({"data.graph.common_orbital_types": "p2s1"}, "data.graph.common_orbital_types = 'p2s1': "
                                                  "training.dataset.common_orbital_types"),
    ({"process.train.max_epoch": -1}, "process.train.max_epoch = -1: training.max_epoch: -1 is not valid"),
])
def test_refused_keys_name_the_key_why_and_the_alternative(here, values, message):
    text = refusal(here, values)
    assert text.split(": ", 1)[0].endswith("case.toml")
    assert message in text


@pytest.mark.parametrize("values, message", [
    ({"process.infer.output_type": "npz"}, "process.infer.output_type = 'npz': dpredict writes HDF5"),
    ({"process.infer.output_into": "to_input"}, "output_into = 'to_input': dpredict writes below the output folder"),
    ({"process.infer.target_symmetrize": False}, "target_symmetrize = false: deeph_tf's predictions are always "
                                                 "exactly Hermitian"),
    ({"data.graph.graph_type": "Sap"}, "graph_type = 'Sap': overlap-shape-only graphs are not implemented"),
    ({"data.graph.only_save_graph": True}, "only_save_graph = true: dpredict builds its graphs in memory"),
    ({"data.outputs_dir": None}, "data.outputs_dir: required"),
    ({"model.model_dir": "missing"}, "model.model_dir = 'missing': not a run folder"),
    ({"process.infer.dataloader.batch_size": 0}, "batch_size = 0: expected an integer >= 1"),
])
def test_refused_inference_keys(here, values, message):
    assert message in refusal(here, values, source="infer.toml", kind="infer")


@pytest.mark.parametrize("values, message", [
    ({"process.train.dataloader.batchsize": 2}, "undefined key 'batchsize' at process.train.dataloader; did you mean "
                                                "batch_size?"),
    ({"sytem.note": "x"}, "undefined key 'sytem' at <root>; did you mean system?"),
    ({"process.train.optimiser.type": "adam"}, "undefined key 'optimiser' at process.train; did you mean optimizer?"),
    ({"model.advanced.net_irrep": "8x0e"}, "undefined key 'net_irrep' at model.advanced; did you mean net_irreps?"),
    ({"process.train.max_epoch": "10"}, "process.train.max_epoch: '10' is not valid: expected an integer"),
    ({"process.train.optimizer.betas": [0.9]}, "process.train.optimizer.betas: [0.9] is not valid: expected a list of "
                                               "two numbers"),
    ({"data.inputs_dir": None}, "missing required key 'data.inputs_dir'"),
])
def test_unknown_keys_and_types_deepmd_style(here, values, message):
    assert message in refusal(here, values)


def test_syntax_error_and_file_kinds(here):
    bad = here / "bad.toml"
    bad.write_text("[system\nnote = 1\n")
    with pytest.raises(ConfigError, match=r"bad.toml: invalid TOML: .*line 1"):
        load_train_toml(bad)
    with pytest.raises(ConfigError, match=r"is an inference TOML \(\[process.infer\]\); run dpredict .*infer.toml"):
        load_train_toml(TOMLS / "infer.toml")
    with pytest.raises(ConfigError, match=r"is a training TOML \(\[process.train\]\); run dtrain .*train.toml"):
        load_infer_toml(TOMLS / "train.toml")


# ------------------------------------------------------------------ epochs in the JSON schema


def _json(**training):
    return {"training": {"training_data": {"systems": "x"}, **training}}


def test_steps_or_epochs_not_both():
    out = normalize(_json(max_epoch=5, save_freq_epochs=2, disp_freq_epochs=1))["training"]
    assert (out["numb_steps"], out["save_freq"], out["disp_freq"]) == (None, None, None)
    assert normalize(normalize(_json(max_epoch=5)))["training"]["max_epoch"] == 5
    for steps, epochs in (("numb_steps", "max_epoch"), ("save_freq", "save_freq_epochs"), ("disp_freq", "disp_freq_epochs")):
        with pytest.raises(ConfigError, match=rf"training: give {steps} or {epochs}, not both \({steps} = 10, {epochs} = 3\)"):
            normalize(_json(**{steps: 10, epochs: 3}))
    with pytest.raises(ConfigError, match=r"training.numb_steps: null is not valid: expected an integer, or "
                                          r"training.max_epoch"):
        normalize(_json(numb_steps=None))
    with pytest.raises(ConfigError, match="validation_numb_btch: 2 is not valid: expected 1 when"):
        normalize(_json(validation_numb_btch=2, validation_data={"systems": "y"}))


def test_epoch_cadence_and_length():
    from deeph_tf.train.epochs import cadence, epoch_end_step

    assert [epoch_end_step(k, 1.5) for k in (1, 2, 3, 4)] == [2, 3, 5, 6]  # epoch k ends at ceil(k x 1.5)
    assert [s for s in range(8) if cadence(1000, 1, 1.5)(s)] == [0, 2, 3, 5, 6]
    assert [s for s in range(8) if cadence(1000, 2, 1.5)(s)] == [0, 3, 6]
    assert [s for s in range(5) if cadence(1000, 3, 0.5)(s)] == [0, 2, 3]  # two epochs a step: 6 ends at 3
    assert [s for s in range(7) if cadence(3, None, 1.5)(s)] == [0, 3, 6]  # steps as before


def test_deeph_pack_schedules():
    from deeph_tf.train.schedules import build_schedule

    cosine = build_schedule({"type": "warmup_cosine", "start_lr": 1.0, "warmup_steps": 2, "warmup_start_lr": 0.1,
                             "stop_lr": 1e-3, "decay_steps": 4, "early_stop_lr": 1.01e-3}, 100)
    assert [round(cosine.lr(s), 6) for s in (0, 1, 2, 4, 6, 50)] == [0.1, 0.55, 1.0, 0.5005, 0.001, 0.001]
    assert [s for s in range(10) if cosine.stops_at(s)] == [6, 7, 8, 9]  # the scale fell to min_learning_rate_scale
    plateau = build_schedule({"type": "reduce_on_plateau", "start_lr": 1.0, "factor": 0.5, "patience": 1, "rtol": 0.0,
                              "cooldown": 0, "min_lr": 0.3, "stop_at_min_lr": True}, 100)
    assert [plateau.update(1.0) for _ in range(3)] == [False, False, True]  # 1 -> 0.5 -> 0.3 = min_lr: stop
    assert plateau.lr(0) == 0.3


# ------------------------------------------------------------------ the commands, without TensorFlow


def test_print_config_prints_the_normalized_input_without_tensorflow(here):
    code = ("import sys\nfrom deeph_tf.cli import dtrain\n"
            "code = dtrain.main(['case.toml', '--print-config', '-v', 'WARNING'])\n"
            "assert 'tensorflow' not in sys.modules, 'TensorFlow imported'\nsys.exit(code)\n")
    write_toml(here, "case.toml", {}, "train.toml")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=here)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["training"]["max_epoch"] == 10000 and printed["loss"]["type"] == "mse"
    assert not (here / "outputs").exists()  # nothing written


def test_print_config_of_a_json_input(here, capsys):
    from deeph_tf.cli.dtrain import main

    (here / "input.json").write_text(json.dumps({"training": {"training_data": {"systems": "inputs/dft"},
                                                              "max_epoch": 4}}))
    assert main(["input.json", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out) == normalize(json.loads((here / "input.json").read_text()))
    assert not (here / "out.json").exists()


def test_dtrain_refusal_exits_2_naming_the_key(here, capsys):
    from deeph_tf.cli.dtrain import main

    write_toml(here, "case.toml", {"model.loss_type": "ai2dft"}, "train.toml")
    assert main(["case.toml", "--print-config"]) == 2
    assert "model.loss_type = 'ai2dft'" in capsys.readouterr().err


def test_dpredict_print_config_and_conflicting_flags(here, capsys):
    from deeph_tf.cli.dpredict import main

    assert main([str(TOMLS / "infer.toml"), "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["graph"] == "overlap"
    assert main([str(TOMLS / "infer.toml"), "-b", "3"]) == 2
    assert "sets process.infer.dataloader.batch_size: do not give --batch-size with a TOML" in capsys.readouterr().err
    assert main(["-s", "inputs"]) == 2
    assert "give -m, -o (or a DeepH-pack inference TOML)" in capsys.readouterr().err
