"""Learning-rate schedules, computed on the host (pure Python, no TensorFlow).

The training loop asks the schedule for the learning rate of each step and assigns it to the
optimizer's learning-rate variable (``optimizer.learning_rate.assign(lr)``), so the compiled
step never retraces. At each display (every ``training.disp_freq`` steps) it calls
:meth:`Schedule.update` with the validation loss; only :class:`ReduceOnPlateau` uses it, and
its answer ``True`` means: stop training. :meth:`Schedule.state_dict` is JSON-serializable
and is saved with each checkpoint, so ``dtrain --restart`` resumes the schedule exactly.

Learning rates are in the optimizer's units (per step); steps count optimizer updates.
With several workers the loop multiplies the schedule's value by the worker factor
(``training.scale_by_worker``, see deeph_tf.train.distributed); lcurve.out shows the
unscaled value.
"""
from __future__ import annotations

import logging
import math
from typing import Any, Dict, Mapping, Optional

logger = logging.getLogger(__name__)

__all__ = [
    "Schedule",
    "ExponentialDecay",
    "WarmupCosine",
    "ReduceOnPlateau",
    "build_schedule",
]


class Schedule:
    """Base class: ``lr(step)``, ``update(validation_loss)``, ``state_dict()`` / ``load_state_dict()``."""

    #: The ``learning_rate.type`` of the input this schedule implements.
    type: str = ""

    def lr(self, step: int) -> float:
        """Learning rate to use for the update at ``step`` (0-based)."""
        raise NotImplementedError

    def update(self, validation_loss: float) -> bool:
        """Report the validation loss of a display; returns True when training should stop.

        Step-based schedules ignore it and return False.
        """
        return False

    def stops_at(self, step: int) -> bool:
        """Whether training stops before the update at ``step`` (a learning-rate floor reached)."""
        return False

    def state_dict(self) -> Dict[str, Any]:
        """The schedule's mutable state, JSON-serializable (``{"type": ...}`` when stateless)."""
        return {"type": self.type}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state made by :meth:`state_dict` of a schedule of the same type.

        Raises:
            ValueError: the state is of another schedule type.
        """
        self._check_type(state)

    def _check_type(self, state: Mapping[str, Any]) -> None:
        if state.get("type") != self.type:
            raise ValueError(
                f"cannot restore a learning-rate schedule of type {state.get('type')!r} "
                f"into one of type {self.type!r}"
            )


def _check_step(step: int) -> int:
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return int(step)


class ExponentialDecay(Schedule):
    """DeePMD-kit's ``exp`` schedule: lr(t) = start_lr * r^floor(t / decay_steps).

    r = (stop_lr / start_lr)^(decay_steps / numb_steps), so the staircase reaches stop_lr at
    t = numb_steps when numb_steps is a multiple of decay_steps (slightly above it otherwise).
    As in DeePMD-kit (``deepmd/dpmodel/utils/learning_rate.py``):

    * a ``decay_steps >= numb_steps`` is replaced by ``100`` if ``numb_steps // 10 > 100``,
      else by ``numb_steps // 100 + 1`` (so a short run still decays in steps);
    * the learning rate never goes below stop_lr (steps past numb_steps stay at stop_lr).

    ``numb_steps == 0`` (no update) gives a constant start_lr.

    Args:
        start_lr: learning rate at step 0 (> 0).
        stop_lr: learning rate at step numb_steps (0 < stop_lr <= start_lr).
        decay_steps: steps between two decays (>= 1), before the replacement above.
        numb_steps: the training length in steps (>= 0).
    """

    type = "exp"

    def __init__(self, start_lr: float, stop_lr: float, decay_steps: int, numb_steps: int) -> None:
        if not start_lr > 0 or not stop_lr > 0:
            raise ValueError(f"start_lr and stop_lr must be > 0, got {start_lr} and {stop_lr}")
        if stop_lr > start_lr:
            raise ValueError(f"stop_lr ({stop_lr}) must be at most start_lr ({start_lr})")
        if decay_steps < 1 or numb_steps < 0:
            raise ValueError(f"need decay_steps >= 1 and numb_steps >= 0, got {decay_steps} and {numb_steps}")
        self.start_lr = float(start_lr)
        self.stop_lr = float(stop_lr)
        self.numb_steps = int(numb_steps)
        self.decay_steps = int(decay_steps)
        if self.decay_steps >= self.numb_steps:
            replacement = 100 if self.numb_steps // 10 > 100 else self.numb_steps // 100 + 1
            if self.numb_steps > 0:
                logger.info(
                    "learning_rate.decay_steps = %d >= numb_steps = %d: decaying every %d steps instead "
                    "(as DeePMD-kit)",
                    self.decay_steps, self.numb_steps, replacement,
                )
            self.decay_steps = replacement
        if self.numb_steps == 0:
            self.decay_rate = 1.0
        else:
            self.decay_rate = math.exp(math.log(self.stop_lr / self.start_lr) / (self.numb_steps / self.decay_steps))

    def lr(self, step: int) -> float:
        step = _check_step(step)
        return max(self.start_lr * self.decay_rate ** (step // self.decay_steps), self.stop_lr)


class WarmupCosine(Schedule):
    """Linear warmup, then cosine decay.

    For t < warmup_steps: lr = warmup_start_lr + (start_lr - warmup_start_lr) * t / warmup_steps.
    Then lr = stop_lr + (start_lr - stop_lr) * (1 + cos(pi * p)) / 2 with
    p = (t - warmup_steps) / decay_steps, clipped to [0, 1] (decay_steps None: numb_steps -
    warmup_steps): start_lr right after the warmup, stop_lr at the end of the decay and after.
    When warmup_steps >= numb_steps (and no decay_steps) the run ends inside the warmup (and any
    step past it is at stop_lr). With ``early_stop_lr``, :meth:`stops_at` is true from the first
    step after the warmup whose learning rate is at most it (DeepH-pack's min_learning_rate_scale).

    Args:
        start_lr: peak learning rate, reached at t = warmup_steps (> 0).
        stop_lr: final learning rate at t = numb_steps (0 <= stop_lr <= start_lr).
        warmup_steps: steps of linear warmup (>= 0; 0: none).
        numb_steps: the training length in steps (>= 0).
        warmup_start_lr: learning rate at step 0 (>= 0).
        decay_steps: steps of the decay (>= 1), None: until numb_steps.
        early_stop_lr: stop once the learning rate after the warmup is at most this (None: never).
    """

    type = "warmup_cosine"

    def __init__(
        self, start_lr: float, stop_lr: float, warmup_steps: int, numb_steps: int, warmup_start_lr: float = 0.0,
        decay_steps: Optional[int] = None, early_stop_lr: Optional[float] = None,
    ) -> None:
        if not start_lr > 0 or stop_lr < 0 or warmup_start_lr < 0:
            raise ValueError(
                f"need start_lr > 0, stop_lr >= 0, warmup_start_lr >= 0, got {start_lr}, {stop_lr}, {warmup_start_lr}"
            )
        if stop_lr > start_lr:
            raise ValueError(f"stop_lr ({stop_lr}) must be at most start_lr ({start_lr})")
        if warmup_steps < 0 or numb_steps < 0:
            raise ValueError(f"need warmup_steps >= 0 and numb_steps >= 0, got {warmup_steps} and {numb_steps}")
        self.start_lr = float(start_lr)
        self.stop_lr = float(stop_lr)
        self.warmup_steps = int(warmup_steps)
        self.numb_steps = int(numb_steps)
        self.warmup_start_lr = float(warmup_start_lr)
        if decay_steps is not None and decay_steps < 1:
            raise ValueError(f"decay_steps must be >= 1 or None, got {decay_steps}")
        self.decay_steps = None if decay_steps is None else int(decay_steps)
        self.early_stop_lr = None if early_stop_lr is None else float(early_stop_lr)
        if self.warmup_steps > self.numb_steps:
            logger.warning(
                "learning_rate.warmup_steps = %d > numb_steps = %d: training ends during the warmup",
                self.warmup_steps, self.numb_steps,
            )

    def lr(self, step: int) -> float:
        step = _check_step(step)
        if step < self.warmup_steps:
            return self.warmup_start_lr + (self.start_lr - self.warmup_start_lr) * step / self.warmup_steps
        span = self.numb_steps - self.warmup_steps if self.decay_steps is None else self.decay_steps
        if span <= 0:  # no decay phase: the run ended inside (or right at the end of) the warmup
            return self.stop_lr
        progress = min((step - self.warmup_steps) / span, 1.0)
        return self.stop_lr + 0.5 * (self.start_lr - self.stop_lr) * (1.0 + math.cos(math.pi * progress))

    def stops_at(self, step: int) -> bool:
        return self.early_stop_lr is not None and step >= self.warmup_steps and self.lr(step) <= self.early_stop_lr


class ReduceOnPlateau(Schedule):
    """Reduce the learning rate when the validation loss stops improving (mode "min").

    Like Keras' / PyTorch's ReduceLROnPlateau with a relative threshold: a loss is an
    improvement when ``loss < best - rtol * |best|`` (the first loss always is). After
    ``patience`` consecutive displays without improvement (Keras' count: the reduction comes
    at the ``patience``-th one), lr becomes ``max(lr * factor, min_lr)``, the count restarts
    and the next ``cooldown`` displays are not counted (as in PyTorch). When the count
    reaches ``patience`` while lr is already at min_lr, :meth:`update` returns True: stop
    training. A NaN or infinite loss is never an improvement. With ``stop_at_min_lr``, the
    reduction that brings lr to min_lr stops training at once (DeepH-pack's
    min_learning_rate_scale).

    Args:
        start_lr: learning rate until the first reduction (> 0).
        factor: multiplier of each reduction, in (0, 1).
        patience: displays without improvement before a reduction (>= 1).
        rtol: relative improvement needed (>= 0).
        cooldown: displays not counted after a reduction (>= 0).
        min_lr: lower bound of the learning rate (0 <= min_lr <= start_lr).
        stop_at_min_lr: stop when a reduction reaches min_lr.
    """

    type = "reduce_on_plateau"

    def __init__(
        self,
        start_lr: float,
        factor: float = 0.5,
        patience: int = 10,
        rtol: float = 1e-3,
        cooldown: int = 0,
        min_lr: float = 1e-6,
        stop_at_min_lr: bool = False,
    ) -> None:
        if not start_lr > 0 or not 0 < factor < 1 or patience < 1 or rtol < 0 or cooldown < 0 or min_lr < 0:
            raise ValueError(
                "need start_lr > 0, 0 < factor < 1, patience >= 1, rtol >= 0, cooldown >= 0, min_lr >= 0; got "
                f"start_lr={start_lr}, factor={factor}, patience={patience}, rtol={rtol}, cooldown={cooldown}, "
                f"min_lr={min_lr}"
            )
        if min_lr > start_lr:
            raise ValueError(f"min_lr ({min_lr}) must be at most start_lr ({start_lr})")
        self.start_lr = float(start_lr)
        self.factor = float(factor)
        self.patience = int(patience)
        self.rtol = float(rtol)
        self.cooldown = int(cooldown)
        self.min_lr = float(min_lr)
        self.stop_at_min_lr = bool(stop_at_min_lr)
        self.current_lr = self.start_lr
        self.best: Optional[float] = None  # best loss so far (None before the first display)
        self.num_bad = 0  # consecutive counted displays without improvement
        self.cooldown_left = 0
        self.stopped = False

    def lr(self, step: int) -> float:
        _check_step(step)
        return self.current_lr

    def _improves(self, loss: float) -> bool:
        if not math.isfinite(loss):
            return False
        return self.best is None or loss < self.best - self.rtol * abs(self.best)

    def update(self, validation_loss: float) -> bool:
        loss = float(validation_loss)
        if self._improves(loss):
            self.best = loss
            self.num_bad = 0
        elif self.cooldown_left > 0:
            self.num_bad = 0
        else:
            self.num_bad += 1
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
        if self.num_bad >= self.patience:
            self.num_bad = 0
            if self.current_lr <= self.min_lr:
                self.stopped = True
                logger.info("validation loss on a plateau at the smallest learning rate %.3g: stopping", self.min_lr)
            else:
                old = self.current_lr
                self.current_lr = max(self.current_lr * self.factor, self.min_lr)
                self.cooldown_left = self.cooldown
                logger.info("validation loss on a plateau: learning rate %.3g -> %.3g", old, self.current_lr)
                if self.stop_at_min_lr and self.current_lr <= self.min_lr:
                    self.stopped = True
                    logger.info("the learning rate reached min_lr %.3g (stop_at_min_lr): stopping", self.min_lr)
        return self.stopped

    def state_dict(self) -> Dict[str, Any]:
        return {
            "type": self.type,
            "current_lr": self.current_lr,
            "best": self.best,
            "num_bad": self.num_bad,
            "cooldown_left": self.cooldown_left,
            "stopped": self.stopped,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._check_type(state)
        self.current_lr = float(state["current_lr"])
        self.best = None if state["best"] is None else float(state["best"])
        self.num_bad = int(state["num_bad"])
        self.cooldown_left = int(state["cooldown_left"])
        self.stopped = bool(state["stopped"])


def build_schedule(lr_config: Mapping[str, Any], numb_steps: int) -> Schedule:
    """The schedule of a normalized ``learning_rate`` section (see deeph_tf.config.normalize).

    Args:
        lr_config: ``config["learning_rate"]`` with every default filled (``type`` included;
            a missing ``type`` means "exp").
        numb_steps: ``config["training"]["numb_steps"]``, the absolute training length.

    Raises:
        ValueError: an unknown type or inconsistent values.
    """
    kind = lr_config.get("type", "exp")
    if kind == "exp":
        return ExponentialDecay(lr_config["start_lr"], lr_config["stop_lr"], lr_config["decay_steps"], numb_steps)
    if kind == "warmup_cosine":
        return WarmupCosine(
            lr_config["start_lr"], lr_config["stop_lr"], lr_config["warmup_steps"], numb_steps,
            lr_config["warmup_start_lr"], lr_config.get("decay_steps"), lr_config.get("early_stop_lr"),
        )
    if kind == "reduce_on_plateau":
        return ReduceOnPlateau(
            lr_config["start_lr"], lr_config["factor"], lr_config["patience"], lr_config["rtol"],
            lr_config["cooldown"], lr_config["min_lr"], lr_config.get("stop_at_min_lr", False),
        )
    raise ValueError(f"unknown learning_rate type {kind!r}: expected 'exp', 'reduce_on_plateau' or 'warmup_cosine'")
