"""Band plots: DFT against predicted bands along a k-path (or against the k index of a grid),
with the window's Fermi energy and the predicted Fermi level."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np

from deeph_tf.infer.electronic.bands import BandErrors
from deeph_tf.plotting import new_figure, save_png

logger = logging.getLogger(__name__)

__all__ = ["plot_bands"]

PathLike = Union[str, "os.PathLike[str]"]


def _pretty_label(label: str) -> str:
    return "|".join("Γ" if part.upper() in ("GAMMA", "G", "\\GAMMA") else part for part in label.split("|"))


def plot_bands(path_result: BandErrors, png_path: PathLike, energy_range_eV: Optional[Tuple[float, float]] = None,
               title: Optional[str] = None, fermi_pred_eV: Optional[float] = None) -> Path:
    """Write a band plot (PNG, atomically): DFT solid, prediction dashed, high-symmetry ticks, Fermi levels.

    Args:
        path_result: from :func:`~deeph_tf.infer.electronic.bands.band_structure` (a k-path; a
            grid is plotted against k index).
        png_path: output file (PNG).
        energy_range_eV: y-limits (eV); default Fermi energy -4 / +4 eV (at least the window).
        title: default the structure's name.
        fermi_pred_eV: predicted Fermi level (eV, drawn dashed; e.g. from the k-grid's
            :class:`BandErrors`); default ``path_result.fermi_pred_eV``, none drawn if None.

    Returns:
        the written path.
    """
    r = path_result
    x = r.distance if r.distance is not None else np.arange(len(r.k_frac), dtype=np.float64)
    fig = new_figure((6.0, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(x, r.energies_ref_eV, color="black", lw=1.0)
    ax.plot([], [], color="black", lw=1.0, label="DFT")
    if r.energies_pred_eV is not None:
        ax.plot(x, r.energies_pred_eV, color="tab:red", lw=1.0, ls="--")
        ax.plot([], [], color="tab:red", lw=1.0, ls="--", label="prediction")
    ax.axhline(r.fermi_energy_eV, color="tab:blue", lw=0.8, ls=":", label=f"E_F ({r.fermi_source})")
    fermi_pred = r.fermi_pred_eV if fermi_pred_eV is None else fermi_pred_eV
    if fermi_pred is not None:
        ax.axhline(fermi_pred, color="tab:orange", lw=0.8, ls="--", label="E_F predicted (occupation)")
    for t in r.tick_distance:
        ax.axvline(t, color="grey", lw=0.5)
    if r.tick_distance:
        ax.set_xticks(r.tick_distance)
        ax.set_xticklabels([_pretty_label(label) for label in r.tick_labels])
    else:
        ax.set_xlabel("k-point index")
    half = max(4.0, r.window_eV)
    lo, hi = energy_range_eV if energy_range_eV is not None else (r.fermi_energy_eV - half, r.fermi_energy_eV + half)
    ax.set_ylim(lo, hi)
    ax.set_xlim(float(x[0]), float(x[-1]) if len(x) > 1 else float(x[0]) + 1.0)
    ax.set_ylabel("E (eV)")
    ax.set_title(title if title is not None else r.name)
    ax.legend(loc="upper right", fontsize="small")
    return save_png(fig, png_path, dpi=120)
