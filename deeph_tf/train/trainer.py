"""The ``dtrain`` loop: graphs -> model -> XLA-compiled steps -> lcurve.out and checkpoints.

DeePMD semantics (docs/conventions.md, section "4. DeePMD file conventions"):

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

The parts: :mod:`~deeph_tf.train.start` (starting model, graphs, batches, model),
:mod:`~deeph_tf.train.loop` (the steps), :mod:`~deeph_tf.train.run_report` (the end).
"""
from __future__ import annotations

import copy
import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Tuple

import keras
import numpy as np

from deeph_tf.artifacts.checkpoint import assign_values
from deeph_tf.config import write_normalized
from deeph_tf.train.distributed import Workers
from deeph_tf.train.epochs import format_duration, resolve_epochs, steps_per_epoch
from deeph_tf.train.finetune_bias import CHANGE_BY_STATISTIC, change_bias_by_statistic
from deeph_tf.train.lcurve import plot_lcurve
from deeph_tf.train.loop import LoopResult, TrainingDiverged, TrainingState, run_steps
from deeph_tf.train.objectives import build_objective
from deeph_tf.train.optimizers import build_optimizer
from deeph_tf.train.run_report import write_run_report
from deeph_tf.train.schedules import build_schedule
from deeph_tf.train.start import (batch_iterators, has_subset, lock_layout, mix_extra_systems, new_model,
                                  prepare_graphs, starting_model, starting_weights,
                                  training_data_summary)
from deeph_tf.train.step import CompiledSteps

logger = logging.getLogger(__name__)

__all__ = ["TrainResult", "TrainingDiverged", "train"]


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


def train(
    config: dict,
    *,
    restart: Optional[str] = None,
    init_model: Optional[str] = None,
    init_frz_model: Optional[str] = None,
    output: Optional[str] = "out.json",
    workers: Optional[Workers] = None,
    extra_train_systems: Sequence[Tuple[str, Optional[str]]] = (),
    input_share: Optional[float] = None,
    comparisons: Optional[Callable[[Any, Any, str], List[dict]]] = None,
    finetune: bool = False,
) -> TrainResult:
    """Train on a normalized input (see :func:`deeph_tf.config.load_input`).

    ``dtrain`` calls this through :func:`deeph_tf.workflows.dtrain.run_dtrain`, which supplies
    the last three arguments for distillation (the input's ``distillation`` section is not read here).

    Args:
        config: the normalized input (not modified).
        restart, init_model, init_frz_model: at most one; see the module docstring.
        output: where to write the normalized input (None: nowhere).
        workers: a :class:`~deeph_tf.train.distributed.Workers` (default: this process alone).
        extra_train_systems: (systems, fmt) trained on besides the input's (training subset
            only: never validated or tested on), e.g. a teacher's labels.
        input_share: with ``extra_train_systems``, the share of batches drawn from the input's
            own systems (None: by size, DeePMD's default).
        comparisons: ``f(model, graph_set, subset) -> [comparison]`` for the report (e.g.
            student vs teacher), called at the end of the run.
        finetune: ``dtrain --finetune``: with ``init_model``/``init_frz_model``, change the
            model's output bias by the statistic of the new data first (``training.finetune_bias``,
            :mod:`~deeph_tf.train.finetune_bias`).
    """
    if sum(x is not None for x in (restart, init_model, init_frz_model)) > 1:
        raise ValueError("give at most one of restart, init_model, init_frz_model")
    if finetune and not (init_model or init_frz_model):
        raise ValueError("finetune needs the pretrained model as init_model or init_frz_model")
    workers = workers or Workers.single()
    config = copy.deepcopy(config)
    training = config["training"]
    if training.get("seed") is None:
        training["seed"] = random.SystemRandom().randrange(2**31)
        logger.info("training.seed is null: using seed %d (recorded in out.json)", training["seed"])
    seed = int(training["seed"])

    start = starting_model(restart, init_model, init_frz_model)
    if start is not None:
        lock_layout(config, start.layout, start.source)
        logger.info("model architecture and orbital layout from %s (the input's model section is not used)", start.source)
    if output and workers.is_root:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        write_normalized(config, output)
    graph_set, index = prepare_graphs(config, workers, start, extra_train_systems)
    has_validation = has_subset(index, "validate")
    keras.utils.set_random_seed(seed + 7919 * workers.rank)
    resumed = start.checkpoint if restart else None
    start_step = resumed.step if resumed else 0
    if extra_train_systems:
        mix_extra_systems(training["training_data"], graph_set, len(extra_train_systems), input_share)
    per_epoch = steps_per_epoch(graph_set, training, workers)
    resolve_epochs(training, per_epoch)  # max_epoch -> numb_steps, now that the data are known
    train_iter, valid_iter, numb_btch = batch_iterators(graph_set, training, workers, seed, start_step, has_validation)
    first_batch = next(train_iter)
    model = new_model(config, graph_set, index, first_batch) if start is None else starting_weights(start, config, graph_set)
    if finetune and training["finetune_bias"] == CHANGE_BY_STATISTIC:
        _change_bias_on_root(model, graph_set, config, workers)
    workers.broadcast_variables(model.weights)
    n_params = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    logger.info("model: %d trainable parameters, %s precision, target %s", n_params, config["model"]["precision"],
                config["model"]["target"])
    state = TrainingState(config=config, model=model, workers=workers, graph_set=graph_set, seed=seed,
                          start_step=start_step, restarted=resumed is not None, train_iter=train_iter,
                          valid_iter=valid_iter, numb_btch=numb_btch, has_validation=has_validation,
                          data_summary=training_data_summary(config, index, start), steps_per_epoch=per_epoch,
                          **_optimization(config, model, index, workers, start_step, resumed, start))
    counts = index["subsets"]
    loop = run_steps(state, first_batch, counts["train"]["counts"]["structures"],
                     counts.get("validate", {}).get("counts", {}).get("structures", 0))
    return _finish(state, loop, index, n_params, comparisons)


def _change_bias_on_root(model, graph_set, config: dict, workers) -> None:
    """Rank 0 changes the bias by statistic; the weights reach the others by the broadcast that
    follows, a force field's atom energies (constants, not weights) by a sum here."""
    training = config["training"]
    if workers.is_root:
        change_bias_by_statistic(model, graph_set, config["model"]["target"], training["training_data"]["batch_size"],
                                 num_buckets=training["dataset"]["num_buckets"], storage=training["dataset"]["storage"])
    if workers.size > 1 and hasattr(model, "atom_energies"):
        own = {f"{i:04d}": (value if workers.is_root else 0.0) for i, value in enumerate(model.atom_energies)}
        summed = workers.allreduce_sums(own)
        model.atom_energies = [summed[key] for key in sorted(summed)]


def _optimization(config: dict, model, index: dict, workers, start_step: int, resumed, start) -> dict:
    """The schedule, optimizer (restored on a restart), objective and compiled steps of ``model``,
    and the best loss so far, as :class:`~deeph_tf.train.loop.TrainingState` fields."""
    training = config["training"]
    schedule = build_schedule(config["learning_rate"], int(training["numb_steps"]))
    if resumed is not None and resumed.schedule:
        schedule.load_state_dict(resumed.schedule)
    lr_scale = workers.lr_scale(training["scale_by_worker"])
    optimizer = build_optimizer(config["optimizer"], schedule.lr(start_step) * lr_scale)
    optimizer.build(model.trainable_variables)
    if resumed is not None:
        assign_values(optimizer.variables, resumed.optimizer_variables, "optimizer state", start.source)
    workers.broadcast_variables(optimizer.variables)
    energy_force = config["model"]["target"] == "energy_force"
    has_virial = energy_force and index["subsets"]["train"]["counts"].get("virials", 0) > 0
    objective = build_objective(config, config["learning_rate"]["start_lr"], has_virial,
                                spinful=bool(index.get("spinful", False)))
    steps = CompiledSteps(
        model, optimizer, clip_norm=config["optimizer"]["clip_norm"], jit_compile=training["jit_compile"],
        gradient_transform=workers.gradient_transform(), objective=objective,
    )
    extra = dict(resumed.extra) if (resumed is not None and resumed.extra) else {}
    return {"optimizer": optimizer, "schedule": schedule, "objective": objective, "steps": steps, "lr_scale": lr_scale,
            "best_loss": float(extra.get("best_loss", math.inf))}


def _finish(state: TrainingState, loop: LoopResult, index: dict, n_params: int, comparisons) -> TrainResult:
    """Worker agreement, timing and compilations in the log, the learning-curve plot and the report."""
    workers, steps, training = state.workers, state.steps, state.config["training"]
    if workers.size > 1:
        difference = workers.weights_in_sync(state.model.weights)
        (logger.info if difference == 0.0 else logger.error)(
            "model weights %s on all %d workers (largest difference %.3g)",
            "identical" if difference == 0.0 else "DIFFER", workers.size, difference)
    compilations = steps.train_traces + steps.eval_traces
    logger.info("finished at step %d in %s; %d XLA compilation(s) (train %d, eval %d)", loop.last_step,
                format_duration(loop.seconds), compilations, steps.train_traces, steps.eval_traces)
    if workers.is_root and training["plots"]:
        try:
            png = plot_lcurve(loop.lcurve, loop.lcurve.with_suffix(".png"))
            logger.info("learning curve: %s", png)
        except Exception as error:  # a plot must never fail a finished run
            logger.warning("could not plot the learning curve: %s", error)
    if workers.is_root and training["report"]:
        try:
            write_run_report(state.config, state.model, state.graph_set, index, compilations, loop.epochs, loop.lcurve,
                             n_params, loop.last_step, loop.seconds, comparisons)
        except Exception as error:  # a report must never fail a finished run
            logger.warning("could not write the training report: %s", error, exc_info=logger.isEnabledFor(logging.DEBUG))
    manager = loop.manager
    return TrainResult(
        last_step=loop.last_step, stopped_early=loop.stopped_early, latest_checkpoint=loop.latest_checkpoint,
        best_checkpoint=manager.best_path if manager is not None and manager.best else None,
        lcurve=loop.lcurve, seconds=loop.seconds, compilations=compilations,
    )
