"""The report's figures: the learning curve and one parity plot per quantity of parity.npz.

``parity.npz`` holds pairs ``<quantity>_reference`` / ``<quantity>_predicted`` (same shape,
flattened when plotted), e.g. ``energy_per_atom_*`` (eV/atom), ``force_*`` (eV/A),
``hamiltonian_*`` (eV), and optionally the unit as a 0-d string array ``<quantity>_unit``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, List, Mapping, Optional, Tuple

import numpy as np

from deeph_tf.data import keys
from deeph_tf.plotting import ParityPanel, plot_parity
from deeph_tf.train.lcurve import plot_lcurve
from deeph_tf.train.report.record import resolve_path
from deeph_tf.train.report.sections import cell_text

logger = logging.getLogger(__name__)

__all__ = ["LCURVE_PNG", "read_parity_pairs", "figure_lines"]

LCURVE_PNG = "report_lcurve.png"
#: Units of parity quantities without a stored ``<quantity>_unit``.
_DEFAULT_UNITS = {
    keys.ENERGY: "eV", "energy_per_atom": "eV/atom", "force": "eV/A", keys.VIRIAL: "eV",
    keys.HAMILTONIAN: "eV", keys.OVERLAP: "", keys.DENSITY_MATRIX: "",
}


def read_parity_pairs(npz_path: Path) -> List[Tuple[str, np.ndarray, np.ndarray, str]]:
    """(quantity, reference, predicted, unit) for each complete pair in parity.npz, sorted by name."""
    pairs = []
    with np.load(npz_path, allow_pickle=False) as data:
        names = set(data.files)
        for name in sorted(names):
            if not name.endswith("_reference"):
                continue
            quantity = name[: -len("_reference")]
            if f"{quantity}_predicted" not in names:
                logger.warning("%s: %s without %s_predicted, skipped", npz_path, name, quantity)
                continue
            reference = np.asarray(data[name], dtype=float).ravel()
            predicted = np.asarray(data[f"{quantity}_predicted"], dtype=float).ravel()
            if f"{quantity}_unit" in names:
                unit = str(data[f"{quantity}_unit"][()])
            else:
                unit = _DEFAULT_UNITS.get(quantity, "")
            pairs.append((quantity, reference, predicted, unit))
    return pairs


def figure_lines(record: Mapping[str, Any], folder: Path, figures_dir: Path, lcurve_path: Optional[Path],
             plots: bool) -> List[str]:
    """Draw the figures (each failure logged and noted) and return their markdown lines."""
    parity_path = resolve_path(folder, record.get("parity"))
    if not plots:
        return ["Figures were not drawn (`--no-plots`)."]
    lines: List[str] = []
    if lcurve_path is not None:
        try:
            png = plot_lcurve(lcurve_path, figures_dir / LCURVE_PNG)
            lines += [f"![learning curve]({png.name})", ""]
        except Exception as error:  # a figure must never cost the report
            logger.warning("report: cannot draw the learning curve: %s", error)
            lines += [f"*The learning-curve figure could not be drawn: {cell_text(error, 300)}*", ""]
    else:
        lines += ["*No learning curve: lcurve.out is missing or unreadable.*", ""]
    if parity_path is None:
        lines.append("No parity data in the record.")
    elif not parity_path.is_file():
        logger.warning("report: %s not found", parity_path)
        lines.append(f"*Parity data `{parity_path}` not found.*")
    else:
        try:
            pairs = read_parity_pairs(parity_path)
        except Exception as error:
            logger.warning("report: cannot read %s: %s", parity_path, error)
            pairs = []
            lines.append(f"*Parity data `{parity_path.name}` could not be read: {cell_text(error, 300)}*")
        for quantity, reference, predicted, unit in pairs:
            try:
                png = plot_parity([ParityPanel(quantity, reference, predicted, unit)],
                                  figures_dir / f"report_parity_{quantity}.png")
                lines += [f"![parity: {quantity}]({png.name})", ""]
            except Exception as error:
                logger.warning("report: cannot draw the %s parity plot: %s", quantity, error)
                lines += [f"*The {quantity} parity figure could not be drawn: {cell_text(error, 300)}*", ""]
    while lines and lines[-1] == "":
        lines.pop()
    return lines
