"""Rules a JSON Schema cannot state: list lengths against systems, sums, orderings, symbols, targets."""
from __future__ import annotations

import math
import re
from typing import Any, Dict, Optional

from deeph_tf.config.errors import ConfigError, as_written, invalid, show_value
from deeph_tf.conventions import SHELL_LETTERS
from deeph_tf.elements import ATOMIC_NUMBERS

#: One ``start:end:weight`` block of an ``auto_prob`` string.
_PROB_BLOCK = re.compile(r"^\s*([0-9]+)\s*:\s*([0-9]+)\s*:\s*(\S+)\s*$")


def _systems_count(data: Dict[str, Any]) -> Optional[int]:
    systems = data.get("systems")
    return len(systems) if isinstance(systems, list) else None


def check_cross_fields(config: Dict[str, Any], raw: Dict[str, Any]) -> None:
    """Rules a JSON Schema cannot state (sums, lengths, orderings); ``raw`` is for messages."""
    training = config["training"]
    for section in ("training_data", "validation_data"):
        data = training.get(section)
        if not isinstance(data, dict):
            continue
        base = ("training", section)
        n_sys = _systems_count(data)
        batch_size = data.get("batch_size")
        if isinstance(batch_size, list) and n_sys is not None and len(batch_size) != n_sys:
            raise invalid(base + ("batch_size",), batch_size,
                           f"one batch size per system ({len(batch_size)} given for {n_sys} systems)")
        sys_probs = data.get("sys_probs")
        if isinstance(sys_probs, list):
            if n_sys is not None and len(sys_probs) != n_sys:
                raise invalid(base + ("sys_probs",), sys_probs,
                               f"one probability per system ({len(sys_probs)} given for {n_sys} systems)")
            if not sum(sys_probs) > 0:
                raise invalid(base + ("sys_probs",), sys_probs, "at least one probability > 0")
        auto_prob = data.get("auto_prob", "")
        if auto_prob.startswith("prob_sys_size") and ";" in auto_prob:
            blocks = [_PROB_BLOCK.match(b) for b in auto_prob.split(";")[1:]]
            for m in blocks:  # the schema's pattern guarantees every block matches
                start, end, weight = int(m.group(1)), int(m.group(2)), float(m.group(3))
                if start >= end or (n_sys is not None and end > n_sys) or not math.isfinite(weight):
                    limit = "" if n_sys is None else f" <= {n_sys} (the number of systems)"
                    raise invalid(base + ("auto_prob",), auto_prob,
                                   f"blocks start:end:weight with start < end{limit}, got {m.group(0).strip()}")
            if not sum(float(m.group(3)) for m in blocks) > 0:
                raise invalid(base + ("auto_prob",), auto_prob, "block weights with a sum > 0")

    dataset = training["dataset"]
    path = ("training", "dataset")
    cot = dataset.get("common_orbital_types")
    if isinstance(cot, str):
        letters = re.findall(r"([a-z])([0-9]+)", cot)
        ls = [SHELL_LETTERS.index(letter) for letter, _ in letters]
        if ls != sorted(set(ls)) or any(int(count) < 1 for _, count in letters):
            raise invalid(path + ("common_orbital_types",), cot,
                           "letters s, p, d, f, g in this order, each at most once, with counts >= 1, "
                           "like \"s3p2d1\"")
    elif isinstance(cot, list) and cot != sorted(cot):
        raise invalid(path + ("common_orbital_types",), cot, "one l per shell in ascending order, like [0, 0, 1, 2]")
    elements = dataset.get("elements")
    if isinstance(elements, list):
        for i, symbol in enumerate(elements):
            if symbol not in ATOMIC_NUMBERS:
                raise invalid(path + ("elements", i), symbol, "a chemical element symbol such as \"H\" or \"Fe\"")
    split = dataset.get("split")
    if isinstance(split, dict) and "train" in split:
        parts = [split["train"], split["validate"], split["test"]]
        if not all(isinstance(x, int) for x in parts):  # fractions
            total = sum(parts)
            if total > 1 + 1e-9:
                raise invalid(path + ("split",), as_written(raw, config, path + ("split",)),
                               f"fractions summing to at most 1 (they sum to {total:g}) or integer counts")

    _check_training_cross_fields(config)
    _check_steps_or_epochs(config, raw)
    _check_target_cross_fields(config, raw)


#: (steps key, epochs key) pairs of ``training``: at most one of each pair is given.
STEP_EPOCH_PAIRS = (("numb_steps", "max_epoch"), ("disp_freq", "disp_freq_epochs"), ("save_freq", "save_freq_epochs"))


def _check_steps_or_epochs(config: Dict[str, Any], raw: Dict[str, Any]) -> None:
    """Steps or epochs, not both; with max_epoch, numb_steps is null (set once the data are known)."""
    training, written = config["training"], raw.get("training", {})
    for steps_key, epochs_key in STEP_EPOCH_PAIRS:
        if training.get(epochs_key) is not None and written.get(steps_key) is not None:
            raise ConfigError(f"training: give {steps_key} or {epochs_key}, not both ({steps_key} = "
                              f"{show_value(written[steps_key])}, {epochs_key} = {show_value(training[epochs_key])})",
                              path=f"training.{epochs_key}")
        if training.get(epochs_key) is not None:
            training[steps_key] = None  # set once the data are known (numb_steps) or unused
        elif training[steps_key] is None:
            raise invalid(("training", steps_key), None, f"an integer, or training.{epochs_key}")
    if training.get("validation_data") is not None and training.get("validation_numb_btch", 1) != 1:
        raise invalid(("training", "validation_numb_btch"), training["validation_numb_btch"],
                      "1 when training.validation_data is given (its numb_btch is used)")


def _check_target_cross_fields(config: Dict[str, Any], raw: Dict[str, Any]) -> None:
    """The loss and data formats that go with model.target (``ener`` is the force-field loss)."""
    target = config["model"]["target"]
    loss = config["loss"]
    written = isinstance(raw.get("loss"), dict) and "type" in raw["loss"]
    if target == "energy_force":
        if not written:
            loss["type"] = "ener"
        elif loss["type"] != "ener":
            raise invalid(("loss", "type"), loss["type"], "\"ener\" for model.target \"energy_force\" (DeePMD's "
                           "energy/force loss)")
    elif loss["type"] == "ener":
        raise invalid(("loss", "type"), "ener", f"\"mae\", \"mse\", \"huber\" or \"wmae\" for model.target "
                       f"{show_value(target)} (\"ener\" is the loss of target \"energy_force\")")
    for section in ("training_data", "validation_data"):
        data = config["training"].get(section)
        fmt = data.get("fmt") if isinstance(data, dict) else None
        if fmt not in (None, "deeph") and target != "energy_force":
            raise invalid(("training", section, "fmt"), fmt, f"null or \"deeph\" for model.target {show_value(target)} "
                           "(other formats carry no Hamiltonian; they need target \"energy_force\")")


def _check_training_cross_fields(config: Dict[str, Any]) -> None:
    """Learning rates in order (stop/min at most start) and optimizer keys of the chosen type only."""
    lr = config["learning_rate"]
    lowest = "min_lr" if lr["type"] == "reduce_on_plateau" else "stop_lr"
    if lr[lowest] > lr["start_lr"]:
        raise invalid(("learning_rate", lowest), lr[lowest],
                       f"a learning rate at most start_lr ({show_value(lr['start_lr'])})")
    opt = config["optimizer"]
    for key, owner in (("weight_decay", "adamw"), ("momentum", "sgd")):
        if opt[key] != 0 and opt["type"] != owner:
            raise invalid(("optimizer", key), opt[key],
                           f"0 with optimizer type {show_value(opt['type'])} ({key} is used by type \"{owner}\" only)")
