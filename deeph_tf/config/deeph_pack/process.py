"""``[process.train]`` of a DeepH-pack TOML: epochs, checkpoints, dataloader, optimizer, scheduler.

Each function fills its part of the deeph_tf input (``config``, before normalization) and records
in ``sources`` which TOML key a schema path came from (for the messages of the schema's errors).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict

from deeph_tf.config.deeph_pack.reader import TomlInput

PT = "process.train"
_UNSUPERVISED = ("ai2dft", "ai2dft_node", "hopad", "aims")


def loop(toml: TomlInput, config: Dict[str, Any], sources: Dict[str, str]) -> None:
    """Length, display and checkpoint cadence (epochs), compilation, regularization."""
    training = config["training"]
    training["max_epoch"] = toml[f"{PT}.max_epoch"]
    sources["training.max_epoch"] = f"{PT}.max_epoch"
    training["dataset"]["num_buckets"] = toml[f"{PT}.multi_way_jit_num"]
    sources["training.dataset.num_buckets"] = f"{PT}.multi_way_jit_num"
    toml.note(f"{PT}.multi_way_jit_num = {toml[f'{PT}.multi_way_jit_num']}: training.dataset.num_buckets (padded "
              "batch shapes, each compiled once; padding is masked, so results do not depend on it)")
    toml.note(f"{PT}.ahead_of_time_compile = {toml[f'{PT}.ahead_of_time_compile']}: deeph_tf compiles each batch "
              "shape at its first use; when the compilation happens does not change what is computed")
    toml.note(f"{PT}.do_remat = {toml[f'{PT}.do_remat']}: rematerialization trades memory for time; the gradients "
              "are the same operations either way (deeph_tf does not rematerialize)")
    for name in ("dropout_rate", "stochastic_depth", "proj_rate"):
        key = f"{PT}.drop.{name}"
        if toml[key] != 0.0:
            raise toml.refuse(key, "dropout is not implemented in deeph_tf's network; use 0.0")
        if toml.given(key):
            toml.note(f"{key} = 0.0: no dropout, as deeph_tf's network")
    save = "data.model_save"
    training["save_best"] = toml[f"{save}.best"]
    sources["training.save_best"] = f"{save}.best"
    if toml[f"{save}.latest"]:
        training["save_freq_epochs"] = toml[f"{save}.latest_interval"]
        training["max_ckpt_keep"] = toml[f"{save}.latest_num"]
        sources.update({"training.save_freq_epochs": f"{save}.latest_interval",
                        "training.max_ckpt_keep": f"{save}.latest_num"})
    else:
        training["save_freq_epochs"] = max(1, toml[f"{PT}.max_epoch"])
        training["max_ckpt_keep"] = 1
        toml.note(f"{save}.latest = false: no periodic checkpoints; deeph_tf still writes the final one (dfreeze "
                  f"and restarts need it), so latest_interval and latest_num are unused")


def dataloader(toml: TomlInput, config: Dict[str, Any], sources: Dict[str, str]) -> None:
    """Batch size, the split (sizes or split JSON), validation coverage and the watched loss."""
    key = f"{PT}.dataloader"
    training = config["training"]
    batch = toml[f"{key}.batch_size"]
    training["training_data"]["batch_size"] = batch
    sources["training.training_data.batch_size"] = f"{key}.batch_size"
    split_file = toml[f"{key}.dataset_split_json"]
    sizes = {name: toml[f"{key}.{name}_size"] for name in ("train", "validate", "test")}
    if split_file:
        training["dataset"]["split"] = {"file": split_file}
        sources["training.dataset.split"] = f"{key}.dataset_split_json"
        unused = [f"{key}.{n}_size" for n in sizes if toml.given(f"{key}.{n}_size")]
        if unused:
            toml.note(f"{', '.join(unused)}: unused, the split comes from {key}.dataset_split_json")
        n_validate = _validate_count(Path(split_file))
    else:
        if sizes["train"] < 1 or sizes["validate"] < 0 or sizes["test"] < 0:
            raise toml.refuse(f"{key}.train_size", f"sizes must be train >= 1, validate >= 0, test >= 0 (got "
                              f"{sizes['train']}, {sizes['validate']}, {sizes['test']})")
        training["dataset"]["split"] = {**sizes, "seed": toml["system.random_seed"]}
        sources["training.dataset.split"] = f"{key}.train_size"
        toml.note(f"{key}.train/validate/test_size = {sizes['train']}/{sizes['validate']}/{sizes['test']}: "
                  f"training.dataset.split by counts, shuffled with system.random_seed; structures beyond them unused")
        n_validate = sizes["validate"]
    if n_validate and batch >= 1:
        training["validation_numb_btch"] = max(1, math.ceil(n_validate / batch))
        toml.note(f"validation over the whole validation set at each display ({training['validation_numb_btch']} "
                  "batch(es): training.validation_numb_btch)")
    train_only = toml[f"{key}.only_use_train_loss"] or not n_validate
    training["monitor_loss"] = "training_mean" if train_only else "validation"
    toml.note(f"the scheduler and the best model watch the {'mean training' if train_only else 'validation'} loss "
              f"(training.monitor_loss {training['monitor_loss']!r}; {key}.only_use_train_loss = "
              f"{toml[f'{key}.only_use_train_loss']}, {n_validate} validation structures)")


def _validate_count(path: Path) -> int:
    try:
        return len(json.loads(path.read_text()).get("validate", []))
    except (OSError, ValueError, AttributeError):
        return 0  # the split file's own check (at graph building) reports it


def optimizer(toml: TomlInput, config: Dict[str, Any], sources: Dict[str, str]) -> None:
    key = f"{PT}.optimizer"
    kind = toml[f"{key}.type"]
    if kind not in ("sgd", "adam", "adamw"):
        raise toml.refuse(f"{key}.type", "expected \"sgd\", \"adam\" or \"adamw\"")
    out: Dict[str, Any] = {"type": kind}
    clip = toml[f"{key}.clip_norm_factor"]
    if clip == 0:
        raise toml.refuse(f"{key}.clip_norm_factor", "0 would clip every gradient to zero; use a number > 0, or a "
                          "negative one for no clipping")
    out["clip_norm"] = clip if clip > 0 else None
    sources["optimizer.clip_norm"] = f"{key}.clip_norm_factor"
    used = {"sgd": ("momentum",), "adam": ("betas", "eps"), "adamw": ("betas", "eps", "weight")}[kind]
    if kind == "sgd":
        out["momentum"] = toml[f"{key}.momentum"]
    else:
        out["beta1"], out["beta2"] = toml[f"{key}.betas"]
        out["epsilon"] = toml[f"{key}.eps"]
        if kind == "adamw":
            out["weight_decay"] = toml[f"{key}.weight"]
    sources.update({"optimizer.momentum": f"{key}.momentum", "optimizer.beta1": f"{key}.betas",
                    "optimizer.beta2": f"{key}.betas", "optimizer.epsilon": f"{key}.eps",
                    "optimizer.weight_decay": f"{key}.weight", "optimizer.type": f"{key}.type"})
    unused = [n for n in ("momentum", "betas", "eps", "weight") if n not in used]
    toml.note(f"{key}: type {kind!r} uses {', '.join(used)}; {', '.join(unused)} unused by it (as in DeepH-pack)")
    config["optimizer"] = out


def scheduler(toml: TomlInput, config: Dict[str, Any], sources: Dict[str, str]) -> None:
    """reduce_on_plateau and warmup_cosine_decay as learning_rate forms; displays every epoch."""
    key = f"{PT}.scheduler"
    kind = toml[f"{key}.type"]
    lr0 = toml[f"{PT}.optimizer.init_learning_rate"]
    floor = lr0 * toml[f"{key}.min_learning_rate_scale"]
    training = config["training"]
    plateau_keys = ("factor", "patience", "rtol", "cooldown", "accum_size")
    cosine_keys = ("init_scale", "warmup_steps", "decay_steps", "end_scale")
    if kind == "reduce_on_plateau":
        config["learning_rate"] = {"type": kind, "start_lr": lr0, "factor": toml[f"{key}.factor"],
                                   "patience": toml[f"{key}.patience"], "rtol": toml[f"{key}.rtol"],
                                   "cooldown": toml[f"{key}.cooldown"], "min_lr": floor, "stop_at_min_lr": True}
        accum = toml[f"{key}.accum_size"]
        if accum == -1:
            training["disp_freq_epochs"] = 1
        elif accum >= 1:
            training["disp_freq"] = accum
            sources["training.disp_freq"] = f"{key}.accum_size"
        else:
            raise toml.refuse(f"{key}.accum_size", "expected -1 (one epoch) or a number of batches >= 1")
        unused = cosine_keys
        toml.note(f"{key}: plateau checked every {'epoch' if accum == -1 else f'{accum} steps'} (a display: lcurve "
                  f"row and validation); patience and cooldown count those checks; lr = {lr0:g} until a reduction; "
                  f"training stops when a reduction reaches min_lr = {lr0:g} x min_learning_rate_scale")
    elif kind == "warmup_cosine_decay":
        end_scale, decay = toml[f"{key}.end_scale"], toml[f"{key}.decay_steps"]
        if end_scale < 0 and end_scale != -1:
            raise toml.refuse(f"{key}.end_scale", "expected a scale >= 0, or -1 (decay to 0)")
        if decay == 0 or decay < -1:
            raise toml.refuse(f"{key}.decay_steps", "expected a number of steps >= 1, or -1 (until max_epoch ends)")
        config["learning_rate"] = {"type": "warmup_cosine", "start_lr": lr0,
                                   "warmup_steps": toml[f"{key}.warmup_steps"],
                                   "warmup_start_lr": lr0 * toml[f"{key}.init_scale"],
                                   "stop_lr": lr0 * max(end_scale, 0.0),
                                   "decay_steps": None if decay == -1 else decay, "early_stop_lr": floor}
        training["disp_freq_epochs"] = 1
        unused = plateau_keys
        toml.note(f"{key}: warmup_cosine from {lr0 * toml[f'{key}.init_scale']:g} to {lr0:g} in "
                  f"{toml[f'{key}.warmup_steps']} steps, then to {lr0 * max(end_scale, 0.0):g} in "
                  f"{'the rest of the run' if decay == -1 else f'{decay} steps'}; training stops at lr <= {floor:g} "
                  "(min_learning_rate_scale); a display every epoch")
    else:
        raise toml.refuse(f"{key}.type", "expected \"reduce_on_plateau\" or \"warmup_cosine_decay\"")
    sources.update({f"learning_rate.{n}": f"{key}.{n}" for n in ("factor", "patience", "rtol", "cooldown",
                                                                   "warmup_steps", "decay_steps")})
    sources.update({"learning_rate.start_lr": f"{PT}.optimizer.init_learning_rate",
                    "learning_rate.min_lr": f"{key}.min_learning_rate_scale",
                    "learning_rate.early_stop_lr": f"{key}.min_learning_rate_scale",
                    "learning_rate.warmup_start_lr": f"{key}.init_scale", "learning_rate.stop_lr": f"{key}.end_scale",
                    "learning_rate": f"{key}.type"})
    toml.note(f"{key}: {', '.join(unused)} unused by type {kind!r}")


def loss(toml: TomlInput, config: Dict[str, Any], sources: Dict[str, str]) -> None:
    kind = toml["model.loss_type"]
    if kind in _UNSUPERVISED:
        raise toml.refuse("model.loss_type", "DeepH-pack's on-the-fly unsupervised losses are not implemented in "
                          "deeph_tf; use \"mae\", \"mse\", \"huber\" or \"wmae\" (supervised, on DFT labels)")
    if kind not in ("mae", "mse", "huber", "wmae"):
        raise toml.refuse("model.loss_type", "expected \"mae\", \"mse\", \"huber\" or \"wmae\"")
    config["loss"] = {"type": kind}
    sources["loss"] = "model.loss_type"
    if kind == "huber":
        toml.note("model.loss_type = \"huber\": quadratic below loss.huber_delta = 0.01 eV, linear above")
