"""Who trains: this process alone, or one of N data-parallel workers.

The training loop talks to a :class:`Workers` object only; the serial one (this module)
does nothing collective. The Horovod implementation plugs into the same methods.
"""
from __future__ import annotations

import logging
import math
import os
from typing import Callable, Dict, Optional, Sequence

import numpy as np

logger = logging.getLogger(__name__)

#: Environment variables a multi-process launcher sets (horovodrun/Gloo, Open MPI, MPICH/Slurm PMI).
LAUNCHER_SIZE_VARIABLES = ("HOROVOD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE")

SCALE_BY_WORKER = ("linear", "sqrt", "none")


class Workers:
    """A single process: rank 0 of 1."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    #: Whether this worker logs (rank 0, or every rank with ``--mpi-log workers``).
    logs: bool = True

    @classmethod
    def single(cls) -> "Workers":
        return cls()

    @property
    def is_root(self) -> bool:
        """Rank 0 writes out.json, lcurve.out, checkpoints, plots and logs."""
        return self.rank == 0

    def lr_scale(self, scale_by_worker: str) -> float:
        """Factor on the optimizer's learning rate for ``size`` workers (lcurve shows the unscaled lr)."""
        if scale_by_worker not in SCALE_BY_WORKER:
            raise ValueError(f"scale_by_worker must be one of {SCALE_BY_WORKER}, got {scale_by_worker!r}")
        return {"linear": float(self.size), "sqrt": math.sqrt(self.size), "none": 1.0}[scale_by_worker]

    def barrier(self) -> None:
        """Wait for every worker (no-op alone)."""

    def broadcast_variables(self, variables: Sequence) -> None:
        """Give every worker rank 0's values (no-op alone)."""

    def allreduce_sums(self, values: Dict[str, float]) -> Dict[str, float]:
        """Sum each value over the workers (identity alone)."""
        return dict(values)

    def gradient_transform(self) -> Optional[Callable]:
        """``f(gradient_sums, count) -> (sums, count)`` over the workers (None alone: no collective)."""
        return None

    def weights_in_sync(self, variables: Sequence) -> float:
        """Largest difference between this worker's and rank 0's values (0 alone)."""
        return 0.0


class HorovodWorkers(Workers):
    """One of ``hvd.size()`` data-parallel workers (``horovodrun -np N dtrain ...``).

    One GPU per local rank when GPUs exist. Collectives: variables broadcast from rank 0,
    gradient sums and metric sums all-reduced (Gloo on CPU, NCCL on GPU builds).
    """

    def __init__(self, hvd):
        import tensorflow as tf

        self.hvd = hvd
        self.rank, self.size, self.local_rank = hvd.rank(), hvd.size(), hvd.local_rank()
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            gpu = gpus[self.local_rank % len(gpus)]
            tf.config.set_visible_devices(gpu, "GPU")
            tf.config.experimental.set_memory_growth(gpu, True)
        self._allreduce = tf.function(lambda tensors: hvd.grouped_allreduce(tensors, op=hvd.Sum))

    def barrier(self) -> None:
        import tensorflow as tf

        self.hvd.allreduce(tf.constant(0.0), op=self.hvd.Sum, name="deeph_tf_barrier")

    def broadcast_variables(self, variables: Sequence) -> None:
        self.hvd.broadcast_variables([getattr(v, "value", v) for v in variables], root_rank=0)

    def allreduce_sums(self, values: Dict[str, float]) -> Dict[str, float]:
        import tensorflow as tf

        names = sorted(values)
        summed = self.hvd.allreduce(tf.constant([float(values[k]) for k in names], tf.float64), op=self.hvd.Sum,
                                    name="deeph_tf_metrics")
        return dict(zip(names, summed.numpy().tolist()))

    def gradient_transform(self) -> Optional[Callable]:
        def transform(gradient_sums, count):
            reduced = self._allreduce(list(gradient_sums) + [count])
            return reduced[:-1], reduced[-1]

        return transform

    def weights_in_sync(self, variables: Sequence) -> float:
        import tensorflow as tf

        values = [np.asarray(v.numpy(), np.float64).ravel() for v in variables]
        local = tf.constant(np.concatenate(values) if values else np.zeros(0))
        root = self.hvd.broadcast(local, root_rank=0, name="deeph_tf_sync_check").numpy()
        difference = float(np.max(np.abs(root - local.numpy()))) if local.shape[0] else 0.0
        worst = self.hvd.allreduce(tf.constant(difference, tf.float64), op=self.hvd.Max, name="deeph_tf_sync_max")
        return float(worst.numpy())


def launched_size() -> int:
    """Processes a launcher started (1 when dtrain runs on its own)."""
    for name in LAUNCHER_SIZE_VARIABLES:
        value = os.environ.get(name)
        if value and value.isdigit():
            return int(value)
    return 1


def detect_workers(mpi_log: str = "master") -> Workers:
    """The workers of this run: Horovod's when launched by horovodrun/mpirun, else this process alone.

    Raises:
        RuntimeError: launched with several processes but Horovod is not importable.
    """
    size = launched_size()
    try:
        import horovod.tensorflow as hvd
    except ImportError as error:
        if size > 1:
            raise RuntimeError(
                f"dtrain runs as one of {size} processes (horovodrun/mpirun), but Horovod is not importable "
                f"({error}). Build it with: bash tools/install_horovod.sh"
            ) from error
        logging.getLogger("dtrain").warning("Horovod is not installed: training in this process only "
                                            "(tools/install_horovod.sh adds multi-worker training)")
        return Workers.single()
    hvd.init()
    if hvd.size() == 1:
        return Workers.single()
    workers = HorovodWorkers(hvd)
    workers.logs = workers.is_root or mpi_log == "workers"
    return workers
