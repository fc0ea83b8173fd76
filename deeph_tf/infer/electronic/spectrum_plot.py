"""dband's figures: bands along the k-path and the DOS, each with the Fermi level (absolute eV).

Bands are drawn by band index (a sparse solve's windows are aligned, gaps left blank), the
high-symmetry points as ticks ("G" drawn as Gamma, a jump as "X|Y"). PNGs are written
atomically (:func:`deeph_tf.plotting.save_png`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np

from deeph_tf.infer.electronic.spectrum import ElectronicStructure
from deeph_tf.plotting import new_figure, save_png

__all__ = ["plot_band_structure", "plot_dos"]

PathLike = Union[str, "os.PathLike[str]"]
#: Default half-height (eV) of the plotted energy range around E_F.
PLOT_HALF_RANGE_EV = 4.0


def _pretty(label: str) -> str:
    return "|".join("Γ" if part.upper() in ("GAMMA", "G", "\\GAMMA") else part for part in label.split("|"))


def _title(result: ElectronicStructure, title: Optional[str]) -> str:
    if title is not None:
        return title
    gap = "n/a" if result.gap_eV is None else f"{result.gap_eV:.3f} eV"
    return f"{result.name} ({result.solver}): E_F {result.fermi_energy_eV:.3f} eV, gap {gap}"


def plot_band_structure(result: ElectronicStructure, png_path: PathLike,
                        energy_range_eV: Optional[Tuple[float, float]] = None, title: Optional[str] = None) -> Path:
    """Bands along ``result``'s k-path with the Fermi level (PNG); y-range default E_F +-4 eV.

    Raises:
        ValueError: ``result`` has no path (a molecule, or computed without one).
    """
    if result.path is None or result.path_points is None:
        raise ValueError(f"structure {result.name}: no k-path to plot")
    pts = result.path_points
    _, energies = result.path.aligned()
    fig = new_figure((6.0, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(pts.distance, energies, color="black", lw=1.0)
    ef = result.fermi_energy_eV
    ax.axhline(ef, color="tab:blue", lw=0.8, ls="--", label=f"E_F {ef:.3f} eV (occupation)")
    for t in pts.tick_distance:
        ax.axvline(t, color="grey", lw=0.5)
    ax.set_xticks(pts.tick_distance)
    ax.set_xticklabels([_pretty(label) for label in pts.tick_labels])
    lo, hi = energy_range_eV if energy_range_eV is not None else (ef - PLOT_HALF_RANGE_EV, ef + PLOT_HALF_RANGE_EV)
    ax.set_ylim(lo, hi)
    x = pts.distance
    ax.set_xlim(float(x[0]), float(x[-1]) if x[-1] > x[0] else float(x[0]) + 1.0)
    ax.set_ylabel("E (eV)")
    ax.set_title(_title(result, title), fontsize="medium")
    ax.legend(loc="upper right", fontsize="small")
    return save_png(fig, png_path, dpi=120)


def plot_dos(result: ElectronicStructure, png_path: PathLike,
             energy_range_eV: Optional[Tuple[float, float]] = None, title: Optional[str] = None) -> Path:
    """The DOS (states / eV / cell) against E with the Fermi level (PNG); x-range default E_F +-4 eV
    (within the computed range)."""
    fig = new_figure((6.0, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    e, dos = result.dos_energy_eV, result.dos
    ef = result.fermi_energy_eV
    if len(e):
        ax.plot(e, dos, color="black", lw=1.0)
        ax.fill_between(e, 0.0, dos, where=e <= ef, color="tab:blue", alpha=0.25, lw=0, label="occupied")
    ax.axvline(ef, color="tab:blue", lw=0.8, ls="--", label=f"E_F {ef:.3f} eV")
    if energy_range_eV is not None:
        lo, hi = energy_range_eV
    else:
        lo, hi = ef - PLOT_HALF_RANGE_EV, ef + PLOT_HALF_RANGE_EV
        if len(e):
            lo, hi = max(lo, float(e[0])), min(hi, float(e[-1]))
            if not hi > lo:
                lo, hi = float(e[0]), float(e[-1])
    if hi > lo:
        ax.set_xlim(lo, hi)
        inside = (e >= lo) & (e <= hi)
        if np.any(inside):
            ax.set_ylim(0.0, 1.05 * float(dos[inside].max()) + 1e-12)
    ax.set_xlabel("E (eV)")
    ax.set_ylabel("DOS (states / eV / cell)")
    ax.set_title(_title(result, title) + f", sigma {result.sigma_eV:g} eV", fontsize="medium")
    ax.legend(loc="upper right", fontsize="small")
    return save_png(fig, png_path, dpi=120)
