"""The learning curve file (DeePMD-kit's lcurve.out): writer, reader and plot.

Format (as DeePMD-kit writes it)::

    #  step      mae_val     mae_trn         lr
          0     1.23e-01    1.30e-01    1.0e-03
       1000     4.56e-03    4.70e-03    9.7e-04

a header ``# step`` then, for each metric, ``<name>_val <name>_trn`` (only ``<name>_trn``
without validation data), then ``lr``; rows ``%7d`` for the step, ``%11.2e`` for the metrics
(in the metric's unit, eV for Hamiltonian errors), ``%8.1e`` for the (unscaled) learning rate;
a metric that was not computed is written ``nan``. ``numpy.genfromtxt(path, names=True)``
reads it, with the column names above. The training loop decides when to write (step 0 and
every ``training.disp_freq`` steps; rank 0 only).
"""
from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path
from typing import List, Mapping, Optional, Sequence, TextIO, Union

import numpy as np

from deeph_tf.atomic_io import atomic_write_text

logger = logging.getLogger(__name__)

__all__ = ["LcurveWriter", "read_lcurve", "plot_lcurve"]

PathLike = Union[str, "os.PathLike[str]"]

#: Metric names must survive numpy.genfromtxt's name validation unchanged.
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class LcurveWriter:
    """Writes lcurve.out rows, flushing each one.

    Args:
        path: the file (``training.disp_file``).
        metric_names: metric names in column order, e.g. ``["loss", "mae"]``; letters, digits
            and ``_``, starting with a letter (so genfromtxt keeps them as they are).
        mode: "w": a new file (an existing one is replaced, atomically), for a new run or
            ``--init-model``; "a": append, for ``--restart``: the header is not repeated, the
            rows with step <= ``restart_step`` are kept and later ones (written by a killed
            run after its last checkpoint), as well as an incomplete last line, are dropped
            (the file is then rewritten atomically). A missing or empty file is started anew.
        restart_step: the step of the checkpoint restarted from (mode "a"; None keeps every
            complete row).
        validation: whether there is validation data: with False, only ``<name>_trn`` columns.

    Raises:
        ValueError: a bad mode or metric name, or (mode "a") an existing file whose header has
            other columns.
    """

    def __init__(
        self,
        path: PathLike,
        metric_names: Sequence[str],
        mode: str = "w",
        restart_step: Optional[int] = None,
        validation: bool = True,
    ) -> None:
        if mode not in ("w", "a"):
            raise ValueError(f"mode must be 'w' or 'a', got {mode!r}")
        names = list(metric_names)
        for name in names:
            if not _NAME.match(name) or name in ("step", "lr"):
                raise ValueError(f"bad metric name {name!r}: letters, digits and '_', starting with a letter")
        if len(set(names)) != len(names):
            raise ValueError(f"metric names must be distinct, got {names}")
        self.path = Path(path)
        self.metric_names = names
        self.validation = validation
        self.columns: List[str] = ["step"]
        for name in names:
            self.columns += [f"{name}_val", f"{name}_trn"] if validation else [f"{name}_trn"]
        self.columns.append("lr")

        if mode == "a" and self.path.exists() and self.path.stat().st_size > 0:
            self._truncate_for_restart(restart_step)
        else:
            if mode == "a":
                logger.info("%s: nothing to append to, starting a new learning curve", self.path)
            atomic_write_text(self.path, self.header())
        self._file: Optional[TextIO] = open(self.path, "a", encoding="utf-8")

    def header(self) -> str:
        """The header line, with its newline."""
        text = "# %5s" % "step"
        for name in self.metric_names:
            text += "   %11s %11s" % (f"{name}_val", f"{name}_trn") if self.validation else "   %11s" % f"{name}_trn"
        return text + "   %8s\n" % "lr"

    def _truncate_for_restart(self, restart_step: Optional[int]) -> None:
        text = self.path.read_text(encoding="utf-8")
        lines = text.splitlines(keepends=True)
        found = lines[0].lstrip("#").split()
        if found != self.columns:
            raise ValueError(
                f"{self.path}: cannot append: its columns {found} differ from this run's {self.columns} "
                "(use another training.disp_file)"
            )
        kept = [lines[0] if lines[0].endswith("\n") else lines[0] + "\n"]
        dropped = 0
        for line in lines[1:]:
            fields = line.split()
            if not line.endswith("\n") or len(fields) != len(self.columns):
                if fields:  # an incomplete row (a killed write); blank lines go silently
                    dropped += 1
                continue
            try:
                step = int(fields[0])
            except ValueError:
                dropped += 1
                continue
            if restart_step is not None and step > restart_step:
                dropped += 1
                continue
            kept.append(line)
        if dropped or len(kept) != len(lines):
            logger.info(
                "%s: dropping %d row(s) that are incomplete or after step %s (the checkpoint restarted from)",
                self.path, dropped, restart_step,
            )
            atomic_write_text(self.path, "".join(kept))

    def write(
        self,
        step: int,
        validation: Optional[Mapping[str, float]],
        train: Mapping[str, float],
        lr: float,
    ) -> None:
        """Append one row and flush it (arguments in column order: validation, then training).

        Args:
            step: the training step (optimizer updates done).
            validation: metric name -> value on validation data (None: all nan; ignored
                without validation columns); missing names are written nan.
            train: the same on training batches.
            lr: the learning rate of the schedule (unscaled by the number of workers).
        """
        if self._file is None:
            raise ValueError(f"{self.path}: the writer is closed")
        row = "%7d" % step
        for name in self.metric_names:
            trn = float(train.get(name, math.nan))
            if self.validation:
                val = math.nan if validation is None else float(validation.get(name, math.nan))
                row += "   %11.2e %11.2e" % (val, trn)
            else:
                row += "   %11.2e" % trn
        row += "   %8.1e\n" % lr
        self._file.write(row)
        self._file.flush()

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "LcurveWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_lcurve(path: PathLike) -> np.ndarray:
    """The learning curve as a 1-D structured array with fields ``step``, ``<name>_val`` ... ``lr``.

    Uses ``numpy.genfromtxt(path, names=True)``; always 1-D (one row gives shape (1,), a
    header alone shape (0,)). Values are floats (the step too).
    """
    return np.atleast_1d(np.genfromtxt(os.fspath(path), names=True))


def plot_lcurve(path: PathLike, png_path: Optional[PathLike] = None) -> Path:
    """Plot a learning curve to a PNG: each metric's training (solid) and validation (dashed)
    values on a log scale against the step, the learning rate on a second (log) axis.

    Uses matplotlib's Agg renderer through a bare ``Figure`` (no pyplot, no global state;
    :mod:`deeph_tf.plotting`); the PNG is written atomically.

    Args:
        path: the lcurve.out file.
        png_path: where to write; default: ``path`` with the suffix ``.png`` (lcurve.png).

    Returns:
        the PNG's path.
    """
    from deeph_tf.plotting import new_figure, save_png

    path = Path(path)
    png = path.with_suffix(".png") if png_path is None else Path(png_path)
    data = read_lcurve(path)
    names = data.dtype.names
    metrics = [n[: -len("_trn")] for n in names if n.endswith("_trn")]

    fig = new_figure((7.0, 4.5))
    ax = fig.add_subplot()
    for i, name in enumerate(metrics):
        color = f"C{i}"
        ax.plot(data["step"], data[f"{name}_trn"], color=color, lw=1.2, label=f"{name} (train)")
        if f"{name}_val" in names:
            ax.plot(data["step"], data[f"{name}_val"], color=color, lw=1.2, ls="--", label=f"{name} (validation)")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("error")
    ax.grid(True, which="both", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if "lr" in names:
        ax_lr = ax.twinx()
        ax_lr.plot(data["step"], data["lr"], color="0.4", lw=1.0, ls=":", label="learning rate")
        ax_lr.set_yscale("log")
        ax_lr.set_ylabel("learning rate")
        more_handles, more_labels = ax_lr.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    if handles:
        ax.legend(handles, labels, loc="upper right", fontsize="small")
    ax.set_title(path.name)
    save_png(fig, png, dpi=120)
    logger.info("wrote %s", png)
    return png
