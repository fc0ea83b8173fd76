"""The step loop of ``dtrain``: display rows (lcurve.out, log), checkpoints, progress, divergence.

DeePMD semantics (see :mod:`deeph_tf.train.trainer`): a row at step 0 and every ``disp_freq``
steps, a checkpoint every ``save_freq`` steps and at the end, the best model at display steps.
With ``disp_freq_epochs`` / ``save_freq_epochs`` (DeepH's epochs) the display / checkpoint
comes at the end of every N-th epoch instead (:func:`deeph_tf.train.epochs.cadence`).
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from deeph_tf.artifacts.checkpoint import Checkpoint, CheckpointManager, variable_values
from deeph_tf.progress import progress_bar
from deeph_tf.train.epochs import EpochClock, cadence, format_duration, steps_per_epoch
from deeph_tf.train.lcurve import LcurveWriter

logger = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or Inf."""


@dataclass
class TrainingState:
    """Everything the loop steps: the model and its optimizer, schedule, objective, compiled
    steps, this worker's batches, and where the run started."""

    config: dict
    model: Any
    optimizer: Any
    schedule: Any
    objective: Any
    steps: Any
    workers: Any
    graph_set: Any
    seed: int
    start_step: int
    restarted: bool
    lr_scale: float
    train_iter: Any
    valid_iter: Any
    numb_btch: int
    has_validation: bool
    best_loss: float = math.inf
    #: What the model was trained on (:func:`deeph_tf.train.start.training_data_summary`), kept
    #: in every checkpoint (``extra["training_data"]``) and frozen model for ``dinspect``.
    data_summary: dict = field(default_factory=dict)
    #: Updates per epoch (:func:`deeph_tf.train.epochs.steps_per_epoch`); 0: computed by the loop.
    steps_per_epoch: float = 0.0
    #: Sum and count of the training losses since the last display (``monitor_loss`` "training_mean").
    train_loss_sum: float = 0.0
    train_loss_count: int = 0

    def checkpoint(self, step: int) -> Checkpoint:
        """The checkpoint of the current weights, optimizer and schedule at ``step``."""
        return Checkpoint(
            step=step, model_config=self.model.get_config(), layout=self.graph_set.layout.to_dict(),
            model_weights=variable_values(self.model.weights), optimizer_variables=variable_values(self.optimizer.variables),
            input=self.config, schedule=self.schedule.state_dict(), extra={"best_loss": self.best_loss, "seed": self.seed,
                                                                      "training_data": self.data_summary,
                                                                      "steps_per_epoch": self.steps_per_epoch,
                                                                      "epoch": step / max(self.steps_per_epoch, 1e-9)},
        )

    def evaluate(self, batch_iter, n_batches: int) -> Dict[str, float]:
        """The objective's metrics over ``n_batches`` batches of ``batch_iter``, summed over the workers."""
        outputs = []
        for _ in range(n_batches if batch_iter is not None else 0):
            result = {k: v.numpy() for k, v in self.steps.evaluate(next(batch_iter)).items()}
            result["batches"] = 1.0
            outputs.append(result)
        total = {k: float(sum(float(o.get(k, 0.0)) for o in outputs)) for k in self.objective.sum_names}  # zeros without data
        return self.objective.finish(self.workers.allreduce_sums(total))


@dataclass
class LoopResult:
    last_step: int
    stopped_early: bool
    latest_checkpoint: Optional[Path]
    manager: Optional[CheckpointManager]
    epochs: EpochClock
    lcurve: Path
    seconds: float


class _StepTimer:
    """ms/step and ETA of the display lines, timed after the first two updates (the compilations)."""

    def __init__(self):
        self.since: Optional[float] = None
        self.steps = 0

    def tick(self, steps_done: int) -> None:
        if self.since is None and steps_done >= 2:
            self.since, self.steps = time.perf_counter(), 0
        elif self.since is not None:
            self.steps += 1

    def describe(self, step: int, numb_steps: int) -> Optional[str]:
        if self.since is None or self.steps <= 0:
            return None
        per_step = (time.perf_counter() - self.since) / self.steps
        return f"{per_step * 1e3:.1f} ms/step, ETA {format_duration(per_step * (numb_steps - step))}"


def run_steps(state: TrainingState, first_batch, train_structures: int, valid_structures: int) -> LoopResult:
    """Train from ``state.start_step`` to ``training.numb_steps`` (or an early stop)."""
    training = state.config["training"]
    workers = state.workers
    lcurve_path = Path(training["disp_file"])
    if workers.is_root:
        lcurve_path.parent.mkdir(parents=True, exist_ok=True)
    lcurve = LcurveWriter(lcurve_path, state.objective.metric_names, mode="a" if state.restarted else "w",
                          restart_step=state.start_step, validation=state.has_validation) if workers.is_root else None
    manager = CheckpointManager(training["save_ckpt"], training["max_ckpt_keep"]) if workers.is_root else None
    if manager is not None and state.restarted:
        manager.prune_after(state.start_step)
    numb_steps = int(training["numb_steps"])
    if not state.steps_per_epoch:
        state.steps_per_epoch = steps_per_epoch(state.graph_set, training, workers)
    epochs = EpochClock(state.steps_per_epoch, state.start_step)
    display_due = cadence(training["disp_freq"], training.get("disp_freq_epochs"), state.steps_per_epoch)
    save_due = cadence(training["save_freq"], training.get("save_freq_epochs"), state.steps_per_epoch)
    progress = progress_bar(numb_steps, unit="step", initial=state.start_step,
                            enabled=workers.is_root and training["disp_training"])
    timer = _StepTimer()
    batch, step, stopped_early, latest = first_batch, state.start_step, False, None
    started = time.perf_counter()
    logger.info("training from step %d to %d, epoch %.4g to %.4g (%d training structures, %.4g steps per epoch%s)",
                state.start_step, numb_steps, state.start_step / state.steps_per_epoch, numb_steps / state.steps_per_epoch,
                train_structures, state.steps_per_epoch, f", {valid_structures} validation" if state.has_validation else "")
    try:
        while True:
            lr = state.schedule.lr(step)
            state.objective.update(lr)  # loss prefactors that follow the lr (ener), for display and the step
            halt = step > state.start_step and state.schedule.stops_at(step)
            display_step = display_due(step) or step == numb_steps or halt
            if display_step and not (state.restarted and step == state.start_step):
                stopped_early = _display(state, step, batch, lr, lcurve, manager, timer)
            if halt:
                logger.info("step %d: the learning rate %.3g reached learning_rate.early_stop_lr; stopping", step, lr)
                stopped_early = True
            if workers.is_root and (step == numb_steps or stopped_early
                                    or (step > state.start_step and save_due(step))):
                latest = manager.save(state.checkpoint(step))
            if step >= numb_steps or stopped_early:
                epochs.finish(step)
                break
            state.optimizer.learning_rate.assign(lr * state.lr_scale)
            loss_value = float(state.steps.train(batch)["loss"])
            if not math.isfinite(loss_value):
                raise TrainingDiverged(f"step {step + 1}: training loss is {loss_value}")
            state.train_loss_sum += loss_value
            state.train_loss_count += 1
            step += 1
            epochs.tick(step)
            timer.tick(step - state.start_step)
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{loss_value:.3g}", refresh=False)
            batch = next(state.train_iter)
    except TrainingDiverged as error:
        last = manager.latest_path if manager is not None else None
        raise TrainingDiverged(f"{error}; stopping. The last good checkpoint is {last or '(none yet)'}") from None
    finally:
        if progress is not None:
            progress.close()
        if lcurve is not None:
            lcurve.close()
    return LoopResult(step, stopped_early, latest, manager, epochs, lcurve_path, time.perf_counter() - started)


def _display(state: TrainingState, step: int, batch, lr: float, lcurve, manager, timer: _StepTimer) -> bool:
    """A display step: metrics of the batch and validation, lcurve row, best model, log line;
    whether the schedule asks to stop (its learning rate reached its minimum and stalled)."""
    training = state.config["training"]
    train_metrics = state.evaluate(iter([batch]), 1)
    valid_metrics = state.evaluate(state.valid_iter, state.numb_btch) if state.has_validation else None
    if not math.isfinite(train_metrics["loss"]):
        raise TrainingDiverged(f"step {step}: training loss is {train_metrics['loss']}")
    if lcurve is not None:
        lcurve.write(step, valid_metrics, train_metrics, lr)
    watched = (valid_metrics or train_metrics)["loss"]
    if training.get("monitor_loss") == "training_mean" and state.train_loss_count:
        watched = state.train_loss_sum / state.train_loss_count
    state.train_loss_sum, state.train_loss_count = 0.0, 0
    if state.workers.is_root and step > state.start_step and watched < state.best_loss:
        state.best_loss = watched
        if training.get("save_best", True):
            manager.save_best(state.checkpoint(step))
    if training["disp_training"]:
        timing = timer.describe(step, int(training["numb_steps"])) if training["time_training"] else None
        _log_display(step, step / state.steps_per_epoch, train_metrics, valid_metrics, lr, timing)
    if step > state.start_step and hasattr(state.schedule, "update") and state.schedule.update(watched):
        logger.info("step %d: the learning rate reached its minimum and stopped improving; stopping", step)
        return True
    return False


def _log_display(step: int, epoch: float, train_metrics: Dict[str, float], valid_metrics: Optional[Dict[str, float]],
                 lr: float, timing: Optional[str]) -> None:
    parts: List[str] = [f"step {step:7d}", f"epoch {epoch:8.2f}"]
    for name, value in train_metrics.items():
        shown = f"{name}_trn {value:.3e}"
        if valid_metrics is not None:
            shown = f"{name}_val {valid_metrics[name]:.3e}  " + shown
        parts.append(shown)
    parts.append(f"lr {lr:.2e}")
    if timing:
        parts.append(timing)
    logger.info("  ".join(parts))
