"""Figures of the package: bare matplotlib ``Figure`` objects, PNG files, the one parity plot.

Library code leaves the user's matplotlib state alone: no ``matplotlib.use``, no pyplot.
Every figure is a :class:`matplotlib.figure.Figure` with its own Agg canvas and is written
atomically (:func:`deeph_tf.atomic_io.atomic_path`), so a failed plot never leaves half a PNG.
Used by dtest (block and force-field parity, bands), the learning curve and the training report.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from deeph_tf.atomic_io import atomic_path

logger = logging.getLogger(__name__)

__all__ = ["ParityPanel", "new_figure", "save_png", "plot_parity", "HEXBIN_ABOVE"]

PathLike = Union[str, "os.PathLike[str]"]
#: Parity panels with more points than this are drawn as a log-scaled hexbin, not a scatter.
HEXBIN_ABOVE = 20000


def new_figure(figsize: Tuple[float, float]):
    """A :class:`~matplotlib.figure.Figure` (constrained layout) on its own Agg canvas; no pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, png_path: PathLike, dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG atomically; returns the path."""
    png_path = Path(png_path)
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    logger.debug("wrote %s", png_path)
    return png_path


@dataclass(frozen=True)
class ParityPanel:
    """One parity panel: predicted against reference values of one quantity.

    Attributes:
        label: what the values are, e.g. ``"force components"`` or ``"hamiltonian"``.
        reference / predicted: same size (flattened when drawn), in ``unit``.
        unit: e.g. ``"eV"``, ``"eV/A"``; ``""`` for dimensionless values.
    """

    label: str
    reference: np.ndarray
    predicted: np.ndarray
    unit: str = ""


def _values(panel: ParityPanel) -> Tuple[np.ndarray, np.ndarray]:
    reference = np.asarray(panel.reference, dtype=float).ravel()
    predicted = np.asarray(panel.predicted, dtype=float).ravel()
    if reference.shape != predicted.shape:
        raise ValueError(f"{panel.label}: {reference.size} reference values but {predicted.size} predicted")
    if reference.size == 0:
        raise ValueError(f"{panel.label}: no values")
    return reference, predicted


def plot_parity(panels: Sequence[ParityPanel], png_path: PathLike, title: Optional[str] = None,
                error_histogram: bool = False, dpi: int = 110) -> Path:
    """Parity plot(s): one panel per quantity, MAE and RMSE in each panel's title; atomic PNG.

    Each panel shows predicted against reference values (a log hexbin above
    :data:`HEXBIN_ABOVE` points, else a scatter) with the diagonal. With
    ``error_histogram`` every panel is followed by a (log) histogram of predicted - reference.

    Args:
        panels: the quantities, drawn left to right.
        png_path: the PNG to write.
        title: an optional title above all panels.

    Raises:
        ValueError: no panels, or a panel whose arrays differ in size or are empty.
    """
    if not panels:
        raise ValueError("plot_parity: no panels")
    values = [_values(panel) for panel in panels]
    per_panel = 2 if error_histogram else 1
    fig = new_figure((5.0 * per_panel * len(panels), 4.6))
    axes = fig.subplots(1, per_panel * len(panels), squeeze=False)[0]
    for k, (panel, (reference, predicted)) in enumerate(zip(panels, values)):
        ax = axes[per_panel * k]
        error = predicted - reference
        mae, rmse = float(np.mean(np.abs(error))), float(np.sqrt(np.mean(error**2)))
        suffix = f" ({panel.unit})" if panel.unit else ""
        unit_text = f" {panel.unit}" if panel.unit else ""
        lo = float(min(np.nanmin(reference), np.nanmin(predicted)))
        hi = float(max(np.nanmax(reference), np.nanmax(predicted)))
        if reference.size > HEXBIN_ABOVE:
            ax.hexbin(reference, predicted, gridsize=120, bins="log", mincnt=1, cmap="viridis")
        else:
            ax.scatter(reference, predicted, s=4, alpha=0.5)
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(f"reference {panel.label}{suffix}")
        ax.set_ylabel(f"predicted {panel.label}{suffix}")
        ax.set_title(f"{panel.label}: {reference.size} values\nMAE {mae:.3g}{unit_text}, RMSE {rmse:.3g}{unit_text}",
                     fontsize="medium")
        ax.grid(True, alpha=0.3)
        if error_histogram:
            ax_error = axes[per_panel * k + 1]
            ax_error.hist(error[np.isfinite(error)], bins=100, log=True)
            ax_error.set_xlabel(f"predicted - reference{suffix}")
            ax_error.set_ylabel("values")
    if title:
        fig.suptitle(title)
    return save_png(fig, png_path, dpi=dpi)
