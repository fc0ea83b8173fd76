"""The ``dtrain`` loop: graphs -> model -> XLA-compiled steps -> lcurve.out and checkpoints.

DeePMD semantics (CONVENTIONS.md section 2):

- ``numb_steps`` is the absolute target; step t = number of updates done.
- At t = 0 and every ``disp_freq`` steps a row goes to ``lcurve.out``: the loss and MAE of
  the current training batch and of ``numb_btch`` validation batches, and the (unscaled)
  learning rate. The MAE is in the target's unit (eV for the Hamiltonian); ``mae_gauge`` is
  the gauge-corrected MAE (best mu S removed per structure).
- A checkpoint every ``save_freq`` steps and at the end (independent of ``disp_freq``), the
  best model by validation loss (training loss without validation) at display steps.
- ``restart``: weights, optimizer slots, schedule state and step continue; lcurve is
  appended. ``init_model`` / ``init_frz_model``: weights only, step 0, a fresh optimizer and
  schedule, lcurve rewritten. The model's architecture and orbital layout come from the
  checkpoint (the input's ``model`` section is then ignored, with a log line), and the
  graphs of the new data are built in that layout.
- A NaN or Inf loss stops the run with :class:`TrainingDiverged`; the last checkpoint,
  written before the bad step, stays intact.
"""
from __future__ import annotations

import copy
import logging
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from deeph_tf.train.checkpoint import Checkpoint, CheckpointError, CheckpointManager, read_checkpoint, resolve_checkpoint

logger = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or Inf."""


@dataclass
class TrainResult:
    """What a finished run reports."""

    last_step: int
    stopped_early: bool
    latest_checkpoint: Optional[Path]
    best_checkpoint: Optional[Path]
    lcurve: Path
    seconds: float
    compilations: int


def _format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _initial_weights(restart, init_model, init_frz_model):
    """(source description, model_config, layout dict, weights, checkpoint or None)."""
    if restart or init_model:
        path = resolve_checkpoint(restart or init_model)
        ckpt = read_checkpoint(path)
        return str(path), ckpt.model_config, ckpt.layout, ckpt.model_weights, ckpt
    if init_frz_model:
        from deeph_tf.infer.frozen import is_frozen_model, load_frozen_weights

        if not is_frozen_model(init_frz_model):
            raise CheckpointError(f"{init_frz_model}: not a frozen model (no saved_model.pb); make one with dfreeze")
        metadata, weights = load_frozen_weights(init_frz_model)
        return str(init_frz_model), metadata["model_config"], metadata["layout"], weights, None
    return None, None, None, None, None


def _lock_layout(config: dict, layout: Dict[str, Any], source: str) -> None:
    """Build the new data's graphs in the layout of the model we start from."""
    from deeph_tf.data.layout import OrbitalLayout

    model_layout = OrbitalLayout.from_dict(layout)
    dataset = config["training"]["dataset"]
    for key, value in (("elements", list(model_layout.elements)), ("common_orbital_types", model_layout.common_orbital_types)):
        given = dataset.get(key)
        if given is None:
            dataset[key] = value
        elif key == "elements" and list(given) != value:
            raise ValueError(f"training.dataset.elements is {given}, but the model from {source} has {value}")


def train(
    config: dict,
    *,
    restart: Optional[str] = None,
    init_model: Optional[str] = None,
    init_frz_model: Optional[str] = None,
    output: Optional[str] = "out.json",
    workers=None,
) -> TrainResult:
    """Run ``dtrain`` on a normalized input (see :func:`deeph_tf.config.load_input`).

    Args:
        config: the normalized input (not modified).
        restart, init_model, init_frz_model: at most one; see the module docstring.
        output: where to write the normalized input (None: nowhere).
        workers: a :class:`~deeph_tf.train.distributed.Workers` (default: this process alone).
    """
    if sum(x is not None for x in (restart, init_model, init_frz_model)) > 1:
        raise ValueError("give at most one of restart, init_model, init_frz_model")
    import keras

    from deeph_tf.config import write_normalized
    from deeph_tf.data.pipeline import GraphSet
    from deeph_tf.data.shards import build_from_config
    from deeph_tf.model.builder import build_model, model_from_config
    from deeph_tf.model.network import model_inputs
    from deeph_tf.model.statistics import compute_statistics
    from deeph_tf.train.checkpoint import assign_values, variable_values
    from deeph_tf.train.distributed import Workers
    from deeph_tf.train.lcurve import LcurveWriter, plot_lcurve
    from deeph_tf.train.optimizers import build_optimizer
    from deeph_tf.train.schedules import build_schedule
    from deeph_tf.train.step import CompiledSteps

    workers = workers or Workers.single()
    config = copy.deepcopy(config)
    training = config["training"]
    if training.get("seed") is None:
        training["seed"] = random.SystemRandom().randrange(2**31)
        logger.info("training.seed is null: using seed %d (recorded in out.json)", training["seed"])
    seed = int(training["seed"])

    source, model_config, layout_dict, weights, ckpt = _initial_weights(restart, init_model, init_frz_model)
    if source is not None:
        _lock_layout(config, layout_dict, source)
        logger.info("model architecture and orbital layout from %s (the input's model section is not used)", source)
    if output and workers.is_root:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        write_normalized(config, output)

    index = build_from_config(config) if workers.is_root else None
    workers.barrier()
    graph_set = GraphSet(training["dataset"]["graph_dir"])
    if index is None:
        index = graph_set.index
    if layout_dict is not None and graph_set.layout.to_dict() != layout_dict:
        raise ValueError(f"the graphs in {graph_set.graph_dir} have the layout {graph_set.layout.to_dict()}, "
                         f"the model from {source} needs {layout_dict}")
    train_counts = index["subsets"]["train"]["counts"]
    if not train_counts["structures"]:
        raise ValueError("no training structures (check training.training_data.systems and training.dataset.split)")
    has_validation = index["subsets"].get("validate", {}).get("counts", {}).get("structures", 0) > 0
    operator = config["model"]["target"]
    if operator not in graph_set.operators:
        raise ValueError(f"model.target is {operator!r} but the graphs hold {list(graph_set.operators)}; "
                         "add it to training.dataset.targets")

    keras.utils.set_random_seed(seed + 7919 * workers.rank)
    start_step = ckpt.step if restart else 0
    train_iter, valid_iter, numb_btch = _batch_iterators(graph_set, training, workers, seed, start_step, has_validation)

    first_batch = next(train_iter)
    if model_config is None:
        statistics = compute_statistics(graph_set, operator=operator)
        model = build_model(config["model"], graph_set.layout, statistics)
        model(model_inputs(first_batch))
    else:
        model = model_from_config(model_config)
        assign_values(model.weights, weights, "model weights", source)
    workers.broadcast_variables(model.weights)
    n_params = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    logger.info("model: %d trainable parameters, %s precision, target %s", n_params, config["model"]["precision"], operator)

    numb_steps = int(training["numb_steps"])
    schedule = build_schedule(config["learning_rate"], numb_steps)
    if restart and ckpt.schedule:
        schedule.load_state_dict(ckpt.schedule)
    lr_scale = workers.lr_scale(training["scale_by_worker"])
    optimizer = build_optimizer(config["optimizer"], schedule.lr(start_step) * lr_scale)
    optimizer.build(model.trainable_variables)
    if restart:
        assign_values(optimizer.variables, ckpt.optimizer_variables, "optimizer state", source)
    workers.broadcast_variables(optimizer.variables)
    loss_config = config["loss"]
    steps = CompiledSteps(
        model, optimizer, loss=loss_config["type"], operator=operator, clip_norm=config["optimizer"]["clip_norm"],
        jit_compile=training["jit_compile"], huber_delta=loss_config["huber_delta"],
        gauge=config["model"]["standardize_gauge"], gradient_transform=workers.gradient_transform(),
    )

    metric_names = ["loss", "mae"] + (["mae_gauge"] if operator == "hamiltonian" else [])
    lcurve_path = Path(training["disp_file"])
    if workers.is_root:
        lcurve_path.parent.mkdir(parents=True, exist_ok=True)
    lcurve = LcurveWriter(lcurve_path, metric_names, mode="a" if restart else "w", restart_step=start_step,
                          validation=has_validation) if workers.is_root else None
    manager = CheckpointManager(training["save_ckpt"], training["max_ckpt_keep"]) if workers.is_root else None
    if manager is not None and restart:
        manager.prune_after(start_step)
    extra = dict(ckpt.extra) if (restart and ckpt.extra) else {}
    best_loss = float(extra.get("best_loss", math.inf))

    def make_checkpoint(step: int) -> Checkpoint:
        return Checkpoint(
            step=step, model_config=model.get_config(), layout=graph_set.layout.to_dict(),
            model_weights=variable_values(model.weights), optimizer_variables=variable_values(optimizer.variables),
            input=config, schedule=schedule.state_dict(), extra={"best_loss": best_loss, "seed": seed},
        )

    sum_names = ["abs_error_sum", "count", "loss", "batches"] + (["abs_error_sum_gauge"] if operator == "hamiltonian" else [])

    def summarize(outputs: List[dict]) -> Dict[str, float]:
        total = {k: float(sum(float(o[k]) for o in outputs)) for k in sum_names}  # zeros on a worker without data
        total = workers.allreduce_sums(total)
        count = max(total["count"], 1.0)
        out = {"loss": total["loss"] / max(total["batches"], 1.0), "mae": total["abs_error_sum"] / count}
        if "abs_error_sum_gauge" in total:
            out["mae_gauge"] = total["abs_error_sum_gauge"] / count
        return out

    def evaluate(batch_iter, n_batches: int) -> Dict[str, float]:
        outputs = []
        for _ in range(n_batches if batch_iter is not None else 0):
            result = {k: v.numpy() for k, v in steps.evaluate(next(batch_iter)).items()}
            result["batches"] = 1.0
            outputs.append(result)
        return summarize(outputs)

    disp_freq, save_freq = int(training["disp_freq"]), int(training["save_freq"])
    progress = _progress_bar(numb_steps, start_step, enabled=workers.is_root and training["disp_training"])
    batch = first_batch
    step, stopped_early, started = start_step, False, time.perf_counter()
    timed_from, timed_steps = None, 0
    latest = None
    logger.info("training from step %d to %d (%d training structures%s)", start_step, numb_steps,
                train_counts["structures"],
                f", {index['subsets']['validate']['counts']['structures']} validation" if has_validation else "")
    try:
        while True:
            lr = schedule.lr(step)
            if (step % disp_freq == 0 or step == numb_steps) and not (restart and step == start_step):
                train_metrics = evaluate(iter([batch]), 1)
                valid_metrics = evaluate(valid_iter, numb_btch) if has_validation else None
                if not all(math.isfinite(v) for v in train_metrics.values()):
                    raise TrainingDiverged(f"step {step}: training loss is {train_metrics['loss']}")
                if lcurve is not None:
                    lcurve.write(step, valid_metrics, train_metrics, lr)
                watched = (valid_metrics or train_metrics)["loss"]
                if workers.is_root and step > start_step and watched < best_loss:
                    best_loss = watched
                    manager.save_best(make_checkpoint(step))
                if training["disp_training"]:
                    _log_display(step, numb_steps, train_metrics, valid_metrics, lr,
                                 timed_from if training["time_training"] else None, timed_steps)
                if step > start_step and hasattr(schedule, "update") and schedule.update(watched):
                    logger.info("step %d: the learning rate reached its minimum and stopped improving; stopping", step)
                    stopped_early = True
            if workers.is_root and (step == numb_steps or stopped_early or (step > start_step and step % save_freq == 0)):
                latest = manager.save(make_checkpoint(step))
            if step >= numb_steps or stopped_early:
                break
            optimizer.learning_rate.assign(lr * lr_scale)
            out = steps.train(batch)
            loss_value = float(out["loss"])
            if not math.isfinite(loss_value):
                raise TrainingDiverged(f"step {step + 1}: training loss is {loss_value}")
            step += 1
            if timed_from is None and step - start_step >= 2:  # after the first compilations
                timed_from, timed_steps = time.perf_counter(), 0
            elif timed_from is not None:
                timed_steps += 1
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{loss_value:.3g}", refresh=False)
            batch = next(train_iter)
    except TrainingDiverged as error:
        last = manager.latest_path if manager is not None else None
        logger.error("%s; stopping. The last good checkpoint is %s", error, last or "(none yet)")
        raise
    finally:
        if progress is not None:
            progress.close()
        if lcurve is not None:
            lcurve.close()
    seconds = time.perf_counter() - started
    if workers.size > 1:
        difference = workers.weights_in_sync(model.weights)
        (logger.info if difference == 0.0 else logger.error)(
            "model weights %s on all %d workers (largest difference %.3g)",
            "identical" if difference == 0.0 else "DIFFER", workers.size, difference)
    compilations = steps.train_traces + steps.eval_traces
    logger.info("finished at step %d in %s; %d XLA compilation(s) (train %d, eval %d)", step, _format_duration(seconds),
                compilations, steps.train_traces, steps.eval_traces)
    if workers.is_root and training["plots"]:
        try:
            png = plot_lcurve(lcurve_path, lcurve_path.with_suffix(".png"))
            logger.info("learning curve: %s", png)
        except Exception as error:  # a plot must never fail a finished run
            logger.warning("could not plot the learning curve: %s", error)
    return TrainResult(
        last_step=step, stopped_early=stopped_early, latest_checkpoint=latest,
        best_checkpoint=manager.best_path if manager is not None and manager.best else None,
        lcurve=lcurve_path, seconds=seconds, compilations=compilations,
    )


def _batch_iterators(graph_set, training: dict, workers, seed: int, start_step: int, has_validation: bool):
    """(training batches, validation batches or None, validation batches per display) of this worker.

    Training data are sharded over the workers (each needs a part of every system); the
    shuffle seed depends on (seed, rank, start step), so a restart does not replay the
    first epochs. Validation is sharded when every system can be, else rank 0 validates all.
    """
    if workers.size > 1:
        short = _systems_smaller_than(graph_set, "train", workers.size)
        if short:
            raise ValueError(f"training system(s) {short} have fewer structures than the {workers.size} workers; "
                             "every worker needs its own part of every system")
    validation_sharded = has_validation and not _systems_smaller_than(graph_set, "validate", workers.size)
    validates_here = has_validation and (validation_sharded or workers.is_root)
    train_data, options = training["training_data"], training["dataset"]
    common = {"num_buckets": options["num_buckets"], "storage": options["storage"]}
    train_ds, _ = graph_set.dataset(
        "train", train_data["batch_size"], shuffle=True, repeat=True,
        seed=seed + 1009 * workers.rank + 104729 * start_step, shuffle_buffer=options["shuffle_buffer"],
        worker_index=workers.rank, num_workers=workers.size,
        auto_prob=train_data["auto_prob"], sys_probs=train_data["sys_probs"], **common,
    )
    if not validates_here:
        return iter(train_ds), None, 0
    valid_data = training["validation_data"] or {"batch_size": train_data["batch_size"], "auto_prob": "prob_sys_size",
                                                   "sys_probs": None, "numb_btch": 1}
    valid_ds, _ = graph_set.dataset(
        "validate", valid_data["batch_size"], shuffle=False, repeat=True, seed=seed,
        worker_index=workers.rank if validation_sharded else 0, num_workers=workers.size if validation_sharded else 1,
        auto_prob=valid_data["auto_prob"], sys_probs=valid_data["sys_probs"], **common,
    )
    return iter(train_ds), iter(valid_ds), int(valid_data.get("numb_btch", 1))


def _systems_smaller_than(graph_set, subset: str, size: int) -> List[int]:
    """Systems of ``subset`` with fewer than ``size`` structures (cannot give every worker a part)."""
    counts: Dict[int, int] = {}
    for shard in graph_set.index["subsets"].get(subset, {}).get("shards", []):
        counts[shard["system"]] = counts.get(shard["system"], 0) + len(shard["n_atoms"])
    return sorted(system for system, n in counts.items() if n < size)


def _progress_bar(total: int, start: int, enabled: bool):
    """A tqdm bar on a terminal (stderr is a TTY), else None."""
    if not enabled or not sys.stderr.isatty() or total <= start:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=start, unit="step", dynamic_ncols=True, leave=False)


def _log_display(step, numb_steps, train_metrics, valid_metrics, lr, timed_from, timed_steps) -> None:
    parts = [f"step {step:7d}"]
    for name, value in train_metrics.items():
        shown = f"{name}_trn {value:.3e}"
        if valid_metrics is not None:
            shown = f"{name}_val {valid_metrics[name]:.3e}  " + shown
        parts.append(shown)
    parts.append(f"lr {lr:.2e}")
    if timed_from is not None and timed_steps > 0:
        per_step = (time.perf_counter() - timed_from) / timed_steps
        parts.append(f"{per_step * 1e3:.1f} ms/step, ETA {_format_duration(per_step * (numb_steps - step))}")
    logger.info("  ".join(parts))
