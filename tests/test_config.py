"""The training-input schema and deeph_tf.config: defaults, comments, DeePMD-style errors, docs."""
from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from deeph_tf import config as cfg
from deeph_tf.config import ConfigError, load_input, normalize, strip_comments, write_normalized

REPO_ROOT = Path(__file__).resolve().parents[1]


def minimal(**training_data):
    return {"training": {"training_data": {"systems": "water_rotated/dft", **training_data}}}


def with_dataset(**dataset):
    c = minimal()
    c["training"]["dataset"] = dataset
    return c


def error_of(config) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        normalize(config)
    return info.value


# ------------------------------------------------------------------ the schema itself


def test_schema_is_valid_draft_2020_12():
    schema = cfg.load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["training"]
    assert list(schema["properties"]) == ["model", "learning_rate", "loss", "optimizer", "training", "targets",
                                          "distillation"]


def test_load_schema_returns_a_copy():
    cfg.load_schema()["properties"].clear()
    assert "training" in cfg.load_schema()["properties"]


def test_every_key_has_description_and_expected_and_a_valid_default():
    keys = list(cfg.iter_schema_keys())
    assert len(keys) > 30
    for path, node, required in keys:
        assert node.get("description"), path
        assert node.get("x-expected"), path
        if "default" in node:
            assert not required, path
            errors = list(jsonschema.Draft202012Validator(node).iter_errors(node["default"]))
            assert not errors, (path, errors)


def _objects_with_properties(node):
    if isinstance(node, dict):
        if "properties" in node:
            yield node
        for value in node.values():
            yield from _objects_with_properties(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects_with_properties(value)


def test_every_object_with_properties_is_closed():
    for node in _objects_with_properties(cfg.load_schema()):
        assert node.get("additionalProperties") is False, sorted(node["properties"])


def test_hermiticity_default_matches_conventions():
    from deeph_tf.conventions import HERMITICITY_TOLERANCE_EV

    out = normalize(minimal())
    assert out["training"]["dataset"]["hermiticity_tolerance"] == HERMITICITY_TOLERANCE_EV


def test_config_module_imports_neither_tensorflow_nor_numpy():
    code = "import sys, deeph_tf.config; assert not {'tensorflow', 'numpy'} & set(sys.modules), sys.modules.keys()"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# ------------------------------------------------------------------ defaults and comments


def test_defaults_filled():
    out = normalize(minimal())
    assert out["learning_rate"] == {"type": "exp", "start_lr": 1e-3, "stop_lr": 1e-6, "decay_steps": 5000}
    assert out["loss"] == {"type": "mae", "huber_delta": 0.01, "start_pref_e": 0.02, "limit_pref_e": 1.0, "start_pref_f": 1000.0, "limit_pref_f": 1.0, "start_pref_v": 0.0, "limit_pref_v": 0.0}
    assert out["optimizer"] == {
        "type": "adam",
        "beta1": 0.9,
        "beta2": 0.999,
        "epsilon": 1e-8,
        "weight_decay": 0.0,
        "momentum": 0.0,
        "clip_norm": None,
    }
    assert out["model"]["preset"] == "light" and out["model"]["convolution"] == "so2"
    assert out["model"]["irreps_hidden"] is None and out["model"]["cutoff"] == "auto"
    td = out["training"]["training_data"]
    assert td == {"systems": "water_rotated/dft", "batch_size": "auto", "auto_prob": "prob_sys_size", "sys_probs": None,
                  "fmt": None}
    assert out["training"]["validation_data"] is None
    assert out["training"]["seed"] is None
    loop_keys = {k: v for k, v in out["training"].items() if k not in ("training_data", "validation_data", "dataset", "seed")}
    assert loop_keys == {
        "numb_steps": 100000,
        "max_epoch": None,
        "disp_file": "lcurve.out",
        "disp_freq": 1000,
        "disp_freq_epochs": None,
        "validation_numb_btch": 1,
        "finetune_bias": "change-by-statistic",
        "save_freq": 1000,
        "save_freq_epochs": None,
        "save_ckpt": "model.ckpt",
        "max_ckpt_keep": 5,
        "save_best": True,
        "monitor_loss": "validation",
        "disp_training": True,
        "time_training": True,
        "jit_compile": True,
        "scale_by_worker": "linear",
        "plots": True,
        "report": True,
    }
    assert out["training"]["dataset"] == {
        "data_dir_depth": 0,
        "targets": ["hamiltonian"],
        "common_orbital_types": None,
        "elements": None,
        "graph_dir": "graphs",
        "storage": "memory",
        "dtype": "float32",
        "split": None,
        "bad_structures": "fail",
        "hermiticity_tolerance": 1e-4,
        "num_workers": 0,
        "structures_per_shard": 256,
        "num_buckets": 4,
        "shuffle_buffer": 1024,
        "radius_cutoff": None,
    }


def test_given_values_kept_and_validation_data_filled():
    c = minimal(batch_size=2)
    c["training"]["validation_data"] = {"systems": ["v1", "v2"]}
    c["training"]["dataset"] = {"storage": "disk", "num_buckets": 8}
    c["learning_rate"] = {"start_lr": 0.01}
    c["model"] = {"preset": "accurate", "num_blocks": 2}
    out = normalize(c)
    assert out["training"]["training_data"]["batch_size"] == 2
    assert out["training"]["validation_data"] == {
        "systems": ["v1", "v2"],
        "batch_size": "auto",
        "auto_prob": "prob_sys_size",
        "sys_probs": None,
        "numb_btch": 1,
        "fmt": None,
    }
    assert out["training"]["dataset"]["storage"] == "disk"
    assert out["training"]["dataset"]["num_buckets"] == 8
    assert out["training"]["dataset"]["dtype"] == "float32"
    assert out["learning_rate"] == {"type": "exp", "start_lr": 0.01, "stop_lr": 1e-6, "decay_steps": 5000}
    assert out["model"]["preset"] == "accurate" and out["model"]["num_blocks"] == 2


def test_keys_come_out_in_schema_order():
    c = {"training": {"seed": 1, "dataset": {"dtype": "float64", "data_dir_depth": 2}, "training_data": {"systems": "s"}}}
    out = normalize(c)
    assert list(out) == ["model", "learning_rate", "loss", "optimizer", "training", "targets", "distillation"]
    assert list(out["training"])[:4] == ["training_data", "validation_data", "dataset", "seed"]
    assert list(out["learning_rate"]) == ["type", "start_lr", "stop_lr", "decay_steps"]
    assert list(out["training"]["dataset"])[:2] == ["data_dir_depth", "targets"]


def test_comments_dropped_at_any_depth():
    c = {
        "_comment": "top",
        "learning_rate": {"_note": 1, "type": "reduce_on_plateau", "patience": 3},
        "training": {
            "_comment": "x",
            "training_data": {"systems": "s", "_why": "deep"},
            "dataset": {"_comment": "deeper", "split": {"_c": 0, "file": "split.json"}},
        },
    }
    original = copy.deepcopy(c)
    out = normalize(c)
    assert c == original  # the input is not modified
    text = json.dumps(out)
    assert '"_' not in text
    assert out["learning_rate"]["patience"] == 3 and "_note" not in out["learning_rate"]
    assert out["training"]["dataset"]["split"] == {"file": "split.json"}
    assert strip_comments({"_a": 1, "b": [{"_c": 2, "d": 3}], "e": {"_f": {}}}) == {"b": [{"d": 3}], "e": {}}


def test_normalize_is_idempotent():
    c = minimal(batch_size=[1, 2], sys_probs=[0.5, 0.5])
    c["training"]["training_data"]["systems"] = ["a", "b"]
    c["training"]["validation_data"] = {"systems": "v", "numb_btch": 3}
    c["training"]["dataset"] = {"split": {"train": 0.8, "validate": 0.1, "test": 0.1}, "targets": ["overlap"]}
    c["learning_rate"] = {"type": "warmup_cosine", "warmup_steps": 10}
    c["optimizer"] = {"type": "sgd", "momentum": 0.9}
    once = normalize(c)
    twice = normalize(once)
    assert twice == once
    assert json.dumps(twice) == json.dumps(once)  # same key order too
    assert normalize(normalize(minimal())) == normalize(minimal())


# ------------------------------------------------------------------ unknown keys (DeePMD style)


@pytest.mark.parametrize(
    "config, message, path",
    [
        (
            {"training": {"training_dat": {"systems": "s"}}},
            "undefined key 'training_dat' at training; did you mean training_data?",
            "training.training_dat",
        ),
        (
            with_dataset(storgae="disk"),
            "undefined key 'storgae' at training.dataset; did you mean storage?",
            "training.dataset.storgae",
        ),
        ({"trainig": {}}, "undefined key 'trainig' at <root>; did you mean training?", "trainig"),
        (
            minimal(batch_szie=1),
            "undefined key 'batch_szie' at training.training_data; did you mean batch_size?",
            "training.training_data.batch_szie",
        ),
        (
            {"training": {"training_data": {"systems": "s"}, "validation_data": {"systems": "v", "numb_batch": 2}}},
            "undefined key 'numb_batch' at training.validation_data; did you mean numb_btch?",
            "training.validation_data.numb_batch",
        ),
        (
            with_dataset(split={"tain": 0.8, "validate": 0.1, "test": 0.1}),
            "undefined key 'tain' at training.dataset.split; did you mean train?",
            "training.dataset.split.tain",
        ),
        # nothing close: no suggestion
        (with_dataset(xyzzy=1), "undefined key 'xyzzy' at training.dataset", "training.dataset.xyzzy"),
    ],
)
def test_unknown_keys_deepmd_style(config, message, path):
    e = error_of(config)
    assert str(e) == message
    assert e.path == path


def test_numb_btch_only_in_validation_data():
    assert str(error_of(minimal(numb_btch=2))) == "undefined key 'numb_btch' at training.training_data"


def test_unknown_key_reported_before_type_errors():
    e = error_of({"training": {"training_data": {"systems": 5}, "datset": {}}})
    assert str(e) == "undefined key 'datset' at training; did you mean dataset?"


# ------------------------------------------------------------------ wrong types and values


@pytest.mark.parametrize(
    "config, message",
    [
        (
            minimal(batch_size="autox"),
            "training.training_data.batch_size: 'autox' is not valid: expected an integer >= 1, "
            'a list of integers, "auto" or "auto:N"',
        ),
        (with_dataset(num_workers="four"), "training.dataset.num_workers: 'four' is not valid: expected an integer >= 0"),
        (with_dataset(storage="ssd"), "training.dataset.storage: 'ssd' is not valid: expected \"memory\" or \"disk\""),
        (
            with_dataset(hermiticity_tolerance=0),
            "training.dataset.hermiticity_tolerance: 0 is not valid: expected a number > 0 (eV)",
        ),
        (
            with_dataset(split={"train": -1, "validate": 0.1, "test": 0.1}),
            "training.dataset.split.train: -1 is not valid: expected a number >= 0",
        ),
        ({"training": []}, "training: [] is not valid: expected an object"),
        ({"training": {"training_data": {}}}, "training.training_data: missing required key 'systems'"),
        ({"model": {}}, "<root>: missing required key 'training'"),
        (
            {"training": {"training_data": {"systems": []}}},
            "training.training_data.systems: [] is not valid: expected a directory or a non-empty list of directories",
        ),
        (
            {"training": {"training_data": {"systems": "s"}, "validation_data": {"systems": "v", "numb_btch": 0}}},
            "training.validation_data.numb_btch: 0 is not valid: expected an integer >= 1",
        ),
        (
            {"training": {"training_data": {"systems": "s"}, "seed": 1.5}},
            "training.seed: 1.5 is not valid: expected null or an integer >= 0",
        ),
    ],
)
def test_bad_values_name_path_value_and_expectation(config, message):
    e = error_of(config)
    assert str(e) == message
    assert e.path == message.split(":")[0]


def test_top_level_must_be_an_object():
    assert str(error_of([1, 2])) == "<root>: expected a JSON object, got list"


@pytest.mark.parametrize("batch_size", [1, 7, [1, 2], "auto", "auto:32", "auto:1"])
def test_batch_size_forms_accepted(batch_size):
    c = minimal(batch_size=batch_size)
    if isinstance(batch_size, list):
        c["training"]["training_data"]["systems"] = ["a", "b"]
    assert normalize(c)["training"]["training_data"]["batch_size"] == batch_size


@pytest.mark.parametrize("batch_size", ["auto:", "auto:0", "auto:01", 0, -1, "big", "Auto", True, 1.5, [], [1, 0], [1, "a"]])
def test_batch_size_bad_forms_rejected(batch_size):
    e = error_of(minimal(batch_size=batch_size))
    assert e.path == "training.training_data.batch_size"
    assert str(e).endswith('expected an integer >= 1, a list of integers, "auto" or "auto:N"')


def test_batch_size_list_needs_one_per_system():
    c = minimal(batch_size=[1, 2, 3])
    c["training"]["training_data"]["systems"] = ["a", "b"]
    assert str(error_of(c)) == (
        "training.training_data.batch_size: [1, 2, 3] is not valid: "
        "expected one batch size per system (3 given for 2 systems)"
    )
    # a directory: the number of systems is known only once it is searched
    assert normalize(minimal(batch_size=[1, 2, 3]))["training"]["training_data"]["batch_size"] == [1, 2, 3]


@pytest.mark.parametrize(
    "auto_prob",
    ["prob_sys_size", "prob_uniform", "prob_sys_size; 0:2:0.6; 2:3:0.4", "prob_sys_size;0:1:1", "prob_sys_size; 0:3:1e-1"],
)
def test_auto_prob_accepted(auto_prob):
    assert normalize(minimal(auto_prob=auto_prob))["training"]["training_data"]["auto_prob"] == auto_prob


@pytest.mark.parametrize(
    "auto_prob",
    [
        "prob_sys_sizes",
        "prob_uniform; 0:1:1",
        "prob_sys_size;",
        "prob_sys_size; 0:2",
        "prob_sys_size; 0:2:x",
        "prob_sys_size; 0:2:-1",
        "prob_sys_size; 2:0:0.5",  # start must be < end
        "prob_sys_size; 1:1:0.5",
        "prob_sys_size; 0:1:0",  # weights must not all be 0
        "",
    ],
)
def test_auto_prob_rejected(auto_prob):
    assert error_of(minimal(auto_prob=auto_prob)).path == "training.training_data.auto_prob"


def test_auto_prob_blocks_within_the_systems():
    c = minimal(auto_prob="prob_sys_size; 0:1:0.5; 1:3:0.5")
    c["training"]["training_data"]["systems"] = ["a", "b"]
    e = error_of(c)
    assert str(e) == (
        "training.training_data.auto_prob: 'prob_sys_size; 0:1:0.5; 1:3:0.5' is not valid: expected blocks "
        "start:end:weight with start < end <= 2 (the number of systems), got 1:3:0.5"
    )


def test_sys_probs():
    c = minimal(sys_probs=[0.25, 0.75])
    c["training"]["training_data"]["systems"] = ["a", "b"]
    assert normalize(c)["training"]["training_data"]["sys_probs"] == [0.25, 0.75]
    c["training"]["training_data"]["sys_probs"] = [1.0]
    assert "one probability per system (1 given for 2 systems)" in str(error_of(c))
    assert error_of(minimal(sys_probs=[0.5, -0.1])).path == "training.training_data.sys_probs"
    assert error_of(minimal(sys_probs=[0, 0])).path == "training.training_data.sys_probs"


# ------------------------------------------------------------------ dataset options


@pytest.mark.parametrize(
    "split",
    [
        None,
        {"train": 0.8, "validate": 0.1, "test": 0.1},
        {"train": 0.5, "validate": 0.25, "test": 0, "seed": 7},
        {"train": 100, "validate": 10, "test": 10},  # all integers: counts
        {"file": "split.json"},
    ],
)
def test_split_forms_accepted(split):
    out = normalize(with_dataset(split=split))["training"]["dataset"]["split"]
    if split is not None and "train" in split:
        assert out == {"seed": 0, **split}
    else:
        assert out == split


@pytest.mark.parametrize(
    "split",
    [
        {"train": 0.8, "validate": 0.3, "test": 0.1},  # fractions summing to more than 1
        {"train": 100, "validate": 0.5, "test": 0},  # mixed: fractions, sum > 1
        {"train": 0.8, "validate": 0.1},  # test missing
        {"train": 0.8, "validate": 0.1, "test": 0.1, "file": "split.json"},  # both forms
        {"file": ""},
        {"train": 0.8, "validate": 0.1, "test": 0.1, "seed": -1},
        "80/10/10",
    ],
)
def test_split_bad_forms_rejected(split):
    assert error_of(with_dataset(split=split)).path.startswith("training.dataset.split")


def test_split_messages():
    e = error_of(with_dataset(split={"train": 0.8, "validate": 0.3, "test": 0.1}))
    assert str(e) == (
        'training.dataset.split: {"train": 0.8, "validate": 0.3, "test": 0.1} is not valid: '
        "expected fractions summing to at most 1 (they sum to 1.2) or integer counts"
    )
    e = error_of(with_dataset(split={"train": 0.8, "file": "split.json"}))
    assert str(e).startswith('training.dataset.split: {"train": 0.8, "file": "split.json"} is not valid: expected null, ')


@pytest.mark.parametrize("value", [None, "s3p2d1", "s1", "s2p1d1f1g1", [0, 0, 0, 1, 1, 2], [4]])
def test_common_orbital_types_accepted(value):
    assert normalize(with_dataset(common_orbital_types=value))["training"]["dataset"]["common_orbital_types"] == value


@pytest.mark.parametrize("value", ["", "s", "h1", "p2s3", "s1s2", "s0p1", "S3", [], [5], [-1], [1, 0], "s3 p2"])
def test_common_orbital_types_rejected(value):
    assert error_of(with_dataset(common_orbital_types=value)).path == "training.dataset.common_orbital_types"


def test_targets_and_elements():
    out = normalize(with_dataset(targets=["hamiltonian", "density_matrix"], elements=["H", "O", "Fe"]))
    assert out["training"]["dataset"]["targets"] == ["hamiltonian", "density_matrix"]
    for bad in ([], ["hamiltonian", "hamiltonian"], ["hamiltonain"], "hamiltonian"):
        assert error_of(with_dataset(targets=bad)).path == "training.dataset.targets"
    assert str(error_of(with_dataset(elements=["H", "Xx"]))) == (
        "training.dataset.elements[1]: 'Xx' is not valid: expected a chemical element symbol such as \"H\" or \"Fe\""
    )
    for bad in ([], ["h"], ["H", "H"]):
        assert error_of(with_dataset(elements=bad)).path == "training.dataset.elements"


@pytest.mark.parametrize(
    "key, good, bad",
    [
        ("data_dir_depth", 2, -1),
        ("graph_dir", "/tmp/graphs", ""),
        ("dtype", "float64", "float16"),
        ("bad_structures", "skip", "ignore"),
        ("num_workers", 4, -1),
        ("structures_per_shard", 1, 0),
        ("num_buckets", 1, 0),
        ("shuffle_buffer", 1, 0),
        ("radius_cutoff", 6.0, 0),
        ("radius_cutoff", None, "6"),
    ],
)
def test_dataset_scalars(key, good, bad):
    assert normalize(with_dataset(**{key: good}))["training"]["dataset"][key] == good
    assert error_of(with_dataset(**{key: bad})).path == f"training.dataset.{key}"


# ------------------------------------------------------------------ learning rate, loss, optimizer, training loop


def with_lr(**learning_rate):
    c = minimal()
    c["learning_rate"] = learning_rate
    return c


@pytest.mark.parametrize(
    "learning_rate, expected",
    [
        ({}, {"type": "exp", "start_lr": 1e-3, "stop_lr": 1e-6, "decay_steps": 5000}),
        ({"type": "exp"}, {"type": "exp", "start_lr": 1e-3, "stop_lr": 1e-6, "decay_steps": 5000}),
        ({"decay_steps": 100}, {"type": "exp", "start_lr": 1e-3, "stop_lr": 1e-6, "decay_steps": 100}),
        (
            {"type": "reduce_on_plateau"},
            {"type": "reduce_on_plateau", "start_lr": 1e-3, "factor": 0.5, "patience": 10, "rtol": 1e-3,
             "cooldown": 0, "min_lr": 1e-6, "stop_at_min_lr": False},
        ),
        (
            {"type": "warmup_cosine", "start_lr": 0.01},
            {"type": "warmup_cosine", "start_lr": 0.01, "warmup_steps": 1000, "warmup_start_lr": 0.0, "stop_lr": 1e-6,
             "decay_steps": None, "early_stop_lr": None},
        ),
    ],
)
def test_learning_rate_defaults_of_each_type(learning_rate, expected):
    out = normalize(with_lr(**learning_rate))["learning_rate"]
    assert out == expected
    assert list(out) == list(expected)  # type first, then schema order
    assert normalize(normalize(with_lr(**learning_rate)))["learning_rate"] == expected


@pytest.mark.parametrize(
    "learning_rate, message, path",
    [
        (
            {"strat_lr": 1e-3},
            "undefined key 'strat_lr' at learning_rate; did you mean start_lr?",
            "learning_rate.strat_lr",
        ),
        (
            {"type": "reduce_on_plateau", "patinece": 3},
            "undefined key 'patinece' at learning_rate; did you mean patience?",
            "learning_rate.patinece",
        ),
        (
            {"type": "warmup_cosine", "warmup_step": 3},
            "undefined key 'warmup_step' at learning_rate; did you mean warmup_steps?",
            "learning_rate.warmup_step",
        ),
        # a key of another type is unknown for this type
        (
            {"type": "reduce_on_plateau", "decay_steps": 5},
            "undefined key 'decay_steps' at learning_rate",
            "learning_rate.decay_steps",
        ),
        ({"patience": 5}, "undefined key 'patience' at learning_rate", "learning_rate.patience"),
    ],
)
def test_learning_rate_unknown_keys_of_the_chosen_type(learning_rate, message, path):
    e = error_of(with_lr(**learning_rate))
    assert str(e) == message
    assert e.path == path


@pytest.mark.parametrize("bad_type", ["cosine", "EXP", 3, None, ["exp"]])
def test_learning_rate_bad_type(bad_type):
    e = error_of(with_lr(type=bad_type, patinece=3))  # the type is reported before the keys
    assert e.path == "learning_rate.type"
    assert str(e).endswith('is not valid: expected "exp", "reduce_on_plateau" or "warmup_cosine"')
    assert str(error_of(with_lr(type="cosine"))) == (
        "learning_rate.type: 'cosine' is not valid: expected \"exp\", \"reduce_on_plateau\" or \"warmup_cosine\""
    )


@pytest.mark.parametrize(
    "learning_rate, message",
    [
        ({"start_lr": -1}, "learning_rate.start_lr: -1 is not valid: expected a number > 0"),
        ({"type": "exp", "decay_steps": 1.5}, "learning_rate.decay_steps: 1.5 is not valid: expected an integer >= 1"),
        ({"type": "reduce_on_plateau", "factor": 1}, "learning_rate.factor: 1 is not valid: expected a number in (0, 1)"),
        (
            {"type": "reduce_on_plateau", "patience": "3"},
            "learning_rate.patience: '3' is not valid: expected an integer >= 1",
        ),
        (
            {"type": "warmup_cosine", "warmup_steps": -1},
            "learning_rate.warmup_steps: -1 is not valid: expected an integer >= 0",
        ),
        (
            {"start_lr": 1e-4, "stop_lr": 1e-3},
            "learning_rate.stop_lr: 0.001 is not valid: expected a learning rate at most start_lr (0.0001)",
        ),
        (
            {"type": "reduce_on_plateau", "start_lr": 1e-4, "min_lr": 1e-3},
            "learning_rate.min_lr: 0.001 is not valid: expected a learning rate at most start_lr (0.0001)",
        ),
    ],
)
def test_learning_rate_bad_values_use_the_chosen_type(learning_rate, message):
    e = error_of(with_lr(**learning_rate))
    assert str(e) == message
    assert e.path == message.split(":")[0]


def test_learning_rate_must_be_an_object():
    e = error_of({"learning_rate": "exp", **minimal()})
    assert e.path == "learning_rate"
    assert str(e).startswith("learning_rate: 'exp' is not valid: expected an object with \"type\" one of")


def test_loss_and_optimizer():
    c = minimal()
    c["loss"] = {"type": "huber", "huber_delta": 0.05}
    c["optimizer"] = {"type": "adamw", "weight_decay": 1e-4, "clip_norm": 1.0}
    out = normalize(c)
    assert out["loss"] == {"type": "huber", "huber_delta": 0.05, "start_pref_e": 0.02, "limit_pref_e": 1.0, "start_pref_f": 1000.0, "limit_pref_f": 1.0, "start_pref_v": 0.0, "limit_pref_v": 0.0}
    assert out["optimizer"]["weight_decay"] == 1e-4 and out["optimizer"]["clip_norm"] == 1.0
    assert out["optimizer"]["beta1"] == 0.9

    from deeph_tf.train.losses import LOSSES

    assert cfg.load_schema()["properties"]["loss"]["properties"]["type"]["enum"] == list(LOSSES) + ["ener"]


@pytest.mark.parametrize(
    "section, value, message",
    [
        ("loss", {"type": "l1"}, 'loss.type: \'l1\' is not valid: expected "mae", "mse", "huber", "wmae" or "ener"'),
        ("loss", {"huber_delta": 0}, "loss.huber_delta: 0 is not valid: expected a number > 0 (eV)"),
        ("loss", {"huber": 0.1}, "undefined key 'huber' at loss; did you mean huber_delta?"),
        ("optimizer", {"type": "rmsprop"}, "optimizer.type: 'rmsprop' is not valid: expected \"adam\", \"adamw\" or \"sgd\""),
        ("optimizer", {"beta1": 1.0}, "optimizer.beta1: 1.0 is not valid: expected a number in [0, 1)"),
        ("optimizer", {"clip_norm": 0}, "optimizer.clip_norm: 0 is not valid: expected null or a number > 0"),
        ("optimizer", {"clipnorm": 1}, "undefined key 'clipnorm' at optimizer; did you mean clip_norm?"),
        (
            "optimizer",
            {"weight_decay": 0.01},
            "optimizer.weight_decay: 0.01 is not valid: expected 0 with optimizer type 'adam' "
            '(weight_decay is used by type "adamw" only)',
        ),
        (
            "optimizer",
            {"type": "adamw", "momentum": 0.9},
            "optimizer.momentum: 0.9 is not valid: expected 0 with optimizer type 'adamw' "
            '(momentum is used by type "sgd" only)',
        ),
    ],
)
def test_loss_and_optimizer_errors(section, value, message):
    c = minimal()
    c[section] = value
    assert str(error_of(c)) == message


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("numb_steps", "1000", "training.numb_steps: '1000' is not valid: expected an integer >= 0"),
        ("numb_steps", -1, "training.numb_steps: -1 is not valid: expected an integer >= 0"),
        ("disp_freq", 0, "training.disp_freq: 0 is not valid: expected an integer >= 1"),
        ("save_freq", 1.5, "training.save_freq: 1.5 is not valid: expected an integer >= 1"),
        ("max_ckpt_keep", 0, "training.max_ckpt_keep: 0 is not valid: expected an integer >= 1"),
        ("disp_file", "", "training.disp_file: '' is not valid: expected a non-empty path"),
        ("jit_compile", "yes", "training.jit_compile: 'yes' is not valid: expected true or false"),
        (
            "scale_by_worker",
            "log",
            'training.scale_by_worker: \'log\' is not valid: expected "linear", "sqrt" or "none"',
        ),
        ("numb_step", 10, "undefined key 'numb_step' at training; did you mean numb_steps?"),
    ],
)
def test_training_loop_keys(key, value, message):
    c = minimal()
    c["training"][key] = value
    assert str(error_of(c)) == message


def test_training_loop_keys_accepted():
    c = minimal()
    c["training"].update(numb_steps=0, disp_freq=10, save_freq=7, plots=False, scale_by_worker="sqrt")
    out = normalize(c)["training"]
    assert (out["numb_steps"], out["disp_freq"], out["save_freq"], out["plots"], out["scale_by_worker"]) == (
        0, 10, 7, False, "sqrt")


# ------------------------------------------------------------------ files


def test_load_input_and_write_normalized(tmp_path):
    src = tmp_path / "input.json"
    src.write_text(json.dumps({"_comment": "hi", "training": {"training_data": {"systems": "s"}}}))
    out = load_input(src)
    assert out == normalize({"training": {"training_data": {"systems": "s"}}})
    dst = tmp_path / "out.json"
    write_normalized(out, dst)
    text = dst.read_text()
    assert text == json.dumps(out, indent=2) + "\n"
    assert load_input(dst) == out
    assert {p.name for p in tmp_path.iterdir()} == {"input.json", "out.json"}  # no temporary file left


def test_load_input_json_syntax_error_names_file_and_line(tmp_path):
    src = tmp_path / "input.json"
    src.write_text('{\n  "training": {\n    "training_data": {"systems": "s"}\n    "seed": 1\n  }\n}\n')
    with pytest.raises(ConfigError) as info:
        load_input(src)
    message = str(info.value)
    assert message.startswith(f"{src}:4:5: invalid JSON: ")
    assert "Expecting ',' delimiter" in message


def test_load_input_rejects_duplicate_keys_and_nan(tmp_path):
    src = tmp_path / "input.json"
    src.write_text('{"training": {"training_data": {"systems": "s", "batch_size": 1, "batch_size": 2}}}')
    with pytest.raises(ConfigError, match=re.escape(f"{src}: invalid input: duplicate key 'batch_size'")):
        load_input(src)
    src.write_text('{"_c": 1, "_c": 2, "training": {"training_data": {"systems": "s"}}}')
    load_input(src)  # repeated comments are fine
    src.write_text('{"training": {"training_data": {"systems": "s"}, "dataset": {"hermiticity_tolerance": NaN}}}')
    with pytest.raises(ConfigError, match="NaN is not valid JSON"):
        load_input(src)


def test_load_input_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_input(tmp_path / "nope.json")


def test_example_inputs_validate():
    examples = sorted((REPO_ROOT / "examples").glob("*.json"))
    assert REPO_ROOT / "examples" / "input_minimal.json" in examples
    examples += sorted((REPO_ROOT / "examples").glob("*/input*.json"))  # every demo's inputs
    assert REPO_ROOT / "examples" / "universal" / "input_pretrain32k.json" in examples
    for path in examples:
        load_input(path)
    raw = json.loads((REPO_ROOT / "examples" / "input_minimal.json").read_text())
    assert strip_comments(raw) == {"training": {"training_data": {"systems": "water_rotated/dft"}}}


# ------------------------------------------------------------------ docs


def test_docs_contain_every_key():
    doc = cfg.schema_doc_markdown()
    paths = [path for path, _, _ in cfg.iter_schema_keys()]
    for expected in (
        "training.training_data.batch_size",
        "training.validation_data.numb_btch",
        "training.dataset.split.train",
        "training.dataset.split.seed",
        "training.dataset.split.file",
        "training.seed",
        "training.numb_steps",
        "learning_rate.decay_steps",
        "learning_rate.patience",
        "learning_rate.warmup_steps",
        "optimizer.clip_norm",
        "loss.huber_delta",
        "model",
    ):
        assert expected in paths
    for path in paths:
        assert f"`{path}`" in doc, path
    assert "default: `\"auto\"`" in doc
    # keys of the learning-rate types are grouped and labelled by type
    assert "### `learning_rate.start_lr` (`\"type\": \"reduce_on_plateau\"`)" in doc
    assert "**`learning_rate` with `\"type\": \"exp\"`** (the default)" in doc


def test_checked_in_docs_are_up_to_date():
    doc = (REPO_ROOT / "docs" / "input.md").read_text(encoding="utf-8")
    assert doc == cfg.schema_doc_markdown(), "run: python tools/gen_input_docs.py"


def test_energy_force_target_gets_the_deepmd_ener_loss():
    base = {"training": {"training_data": {"systems": "data"}}}
    config = cfg.normalize(dict(base, model={"target": "energy_force"}))
    assert config["loss"]["type"] == "ener"
    assert (config["loss"]["start_pref_e"], config["loss"]["limit_pref_e"]) == (0.02, 1.0)
    assert (config["loss"]["start_pref_f"], config["loss"]["limit_pref_f"]) == (1000.0, 1.0)
    assert cfg.normalize(config) == config  # idempotent
    with pytest.raises(cfg.ConfigError, match=r"loss.type: 'mae' is not valid: expected \"ener\""):
        cfg.normalize(dict(base, model={"target": "energy_force"}, loss={"type": "mae"}))
    with pytest.raises(cfg.ConfigError, match="loss.type.*target \"energy_force\""):
        cfg.normalize(dict(base, loss={"type": "ener"}))


def test_dpdata_formats_need_a_force_field_and_targets_name_metrics():
    data = {"systems": "water_npy", "fmt": "deepmd/npy"}
    with pytest.raises(cfg.ConfigError, match="training.training_data.fmt"):
        cfg.normalize({"training": {"training_data": data}})
    config = cfg.normalize({"model": {"target": "energy_force"}, "training": {"training_data": data},
                            "targets": {"rmse_f": 0.1, "mae_e": 0.01}})
    assert config["targets"] == {"rmse_f": 0.1, "mae_e": 0.01} and config["distillation"] is None
    with pytest.raises(cfg.ConfigError, match="targets"):
        cfg.normalize({"training": {"training_data": data}, "targets": {"rmse_force": 0.1}})
    with pytest.raises(cfg.ConfigError, match="distillation"):
        cfg.normalize({"training": {"training_data": {"systems": "d"}}, "distillation": {"systems": "u"}})
    config = cfg.normalize({"training": {"training_data": {"systems": "d"}},
                            "distillation": {"teacher": "t", "systems": "u", "dft_weight": 0.3}})
    assert config["distillation"]["cache_dir"] == "teacher_labels"
