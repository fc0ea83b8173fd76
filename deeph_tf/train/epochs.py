"""Epoch bookkeeping of a run: updates per pass over the training set, and what each epoch took."""
from __future__ import annotations

import logging
import math
import time
from typing import Callable, List, Optional

from deeph_tf.data.pipeline import resolve_batch_size
from deeph_tf.train.final_eval import peak_memory_mib

logger = logging.getLogger(__name__)


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` of a number of seconds."""
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class EpochClock:
    """Epoch boundaries (every ``steps_per_epoch`` updates), wall time and peak memory at each.

    An epoch is one pass over the training structures: training structures / (batch size x
    workers) updates, possibly fractional; epoch k ends at the first step >= k * steps_per_epoch.
    """

    def __init__(self, steps_per_epoch: float, start_step: int = 0):
        self.steps_per_epoch = max(float(steps_per_epoch), 1e-9)
        self.started = self.last = time.perf_counter()
        self.epochs: List[dict] = []
        self._next = int(start_step // self.steps_per_epoch) + 1

    def _record(self, step: int, epoch: float) -> None:
        now = time.perf_counter()
        rss, device = peak_memory_mib()
        self.epochs.append({"epoch": epoch, "step": int(step), "seconds": now - self.last, "elapsed": now - self.started,
                            "peak_rss_mib": rss, "peak_device_mib": device})
        self.last = now

    def tick(self, step: int) -> None:
        """Call after every update; records the epochs that ended at ``step``."""
        while step >= math.ceil(self._next * self.steps_per_epoch - 1e-9):
            self._record(step, self._next)
            self._next += 1

    def finish(self, step: int) -> None:
        """Record a last, partial epoch if training stopped inside one."""
        if not self.epochs or self.epochs[-1]["step"] < step:
            self._record(step, round(step / self.steps_per_epoch, 3))


def steps_per_epoch(graph_set, training: dict, workers) -> float:
    """Updates per pass over the training structures (per-system batch sizes, all workers)."""
    shards = graph_set.shards("train")
    systems = sorted({s["system"] for s in shards})
    atoms = [[n for s in shards if s["system"] == k for n in s["n_atoms"]] for k in systems]
    sizes = resolve_batch_size(training["training_data"]["batch_size"], atoms)
    return sum(len(a) / b for a, b in zip(atoms, sizes)) / max(workers.size, 1)


def epoch_end_step(epoch: float, per_epoch: float) -> int:
    """The step at which epoch ``epoch`` ends: ceil(epoch x steps_per_epoch) (the clock's rule)."""
    return int(math.ceil(epoch * per_epoch - 1e-9))


def epochs_done(step: int, per_epoch: float) -> int:
    """Whole epochs ended by ``step``: the largest k with epoch_end_step(k) <= step."""
    return int(math.floor((step + 1e-9) / max(per_epoch, 1e-9)))


def cadence(every_steps: int, every_epochs: Optional[int], per_epoch: float) -> Callable[[int], bool]:
    """``due(step)``: every ``every_steps`` steps, or at the end of every ``every_epochs``-th epoch
    (at least one such epoch ended at ``step``; step 0 is due, as for steps)."""
    if every_epochs is None:
        return lambda step: step % int(every_steps) == 0
    n = int(every_epochs)
    return lambda step: step == 0 or epochs_done(step, per_epoch) // n > epochs_done(step - 1, per_epoch) // n


def resolve_epochs(training: dict, per_epoch: float) -> None:
    """Set ``numb_steps`` from ``max_epoch`` (in place) and log the run's length in both units."""
    if training.get("max_epoch") is not None:
        training["numb_steps"] = epoch_end_step(training["max_epoch"], per_epoch)
        logger.info("max_epoch %d = %d steps (%.4g steps per epoch)", training["max_epoch"], training["numb_steps"],
                    per_epoch)
    for key, steps_key in (("disp_freq_epochs", "disp_freq"), ("save_freq_epochs", "save_freq")):
        if training.get(key) is not None:
            logger.info("%s %d: at the end of every %d epoch(s) (~%.4g steps) instead of every %s steps", key,
                        training[key], training[key], training[key] * per_epoch, steps_key)
