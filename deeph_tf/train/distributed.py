"""Who trains: this process alone, or one of N data-parallel workers.

The training loop talks to a :class:`Workers` object only; the serial one (this module)
does nothing collective. The Horovod implementation plugs into the same methods.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Sequence

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
        """A function applied to the gradient list inside the compiled step (None alone)."""
        return None

def detect_workers(mpi_log: str = "master") -> Workers:
    """The serial :class:`Workers` (a multi-worker launcher is detected by the Horovod issue)."""
    workers = Workers.single()
    workers.logs = True
    return workers
