"""``dtest`` for force fields: energy, force and virial errors in DeePMD-kit's layout.

Printed (as ``dp test``): energy MAE/RMSE total (eV) and per atom (eV/atom), force MAE/RMSE
(eV/Angstrom, over all components), virial MAE/RMSE total and per atom (eV) where the data
have virials. Detail files with ``-d PREFIX`` (DeePMD's names and columns)::

    PREFIX.e.out          # data_e pred_e                 one row per structure, eV
    PREFIX.e_peratom.out  # data_e pred_e                 one row per structure, eV/atom
    PREFIX.f.out          # data_fx data_fy data_fz pred_fx pred_fy pred_fz    one row per atom, eV/A
    PREFIX.v.out          # data_vxx ... data_vzz pred_vxx ... pred_vzz         one row per structure, eV
    PREFIX.v_peratom.out  # the same divided by the number of atoms
    PREFIX.summary.json   the printed numbers; PREFIX.parity.png  energy and force parity plots
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from deeph_tf.atomic_io import atomic_write_text
from deeph_tf.data import keys
from deeph_tf.jsonutil import json_text
from deeph_tf.plotting import ParityPanel, plot_parity
from deeph_tf.progress import track

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class EnergyResults:
    """Reference and predicted labels of the tested structures (eV, eV/A)."""

    names: List[str] = field(default_factory=list)
    natoms: List[int] = field(default_factory=list)
    energy_ref: List[float] = field(default_factory=list)
    energy_pred: List[float] = field(default_factory=list)
    forces_ref: List[np.ndarray] = field(default_factory=list)
    forces_pred: List[np.ndarray] = field(default_factory=list)
    virial_ref: List[Optional[np.ndarray]] = field(default_factory=list)
    virial_pred: List[np.ndarray] = field(default_factory=list)
    unlabeled: int = 0

    def summary(self) -> Dict[str, float]:
        """Error statistics (eV, eV/atom, eV/A); virial keys only where virials are known."""
        if not self.names:
            raise ValueError("no labelled structures were tested")
        natoms = np.asarray(self.natoms, np.float64)
        de = np.asarray(self.energy_pred) - np.asarray(self.energy_ref)
        df = np.concatenate([(p - r).reshape(-1) for p, r in zip(self.forces_pred, self.forces_ref)])
        out = {
            "structures": len(self.names), "atoms": int(natoms.sum()),
            "energy_mae": float(np.mean(np.abs(de))), "energy_rmse": float(np.sqrt(np.mean(de**2))),
            "energy_mae_per_atom": float(np.mean(np.abs(de / natoms))),
            "energy_rmse_per_atom": float(np.sqrt(np.mean((de / natoms) ** 2))),
            "force_mae": float(np.mean(np.abs(df))), "force_rmse": float(np.sqrt(np.mean(df**2))),
        }
        with_virial = [k for k, v in enumerate(self.virial_ref) if v is not None]
        if with_virial:
            dv = np.stack([self.virial_pred[k] - self.virial_ref[k] for k in with_virial])
            per_atom = dv / natoms[with_virial, None, None]
            out.update(virial_structures=len(with_virial), virial_mae=float(np.mean(np.abs(dv))),
                       virial_rmse=float(np.sqrt(np.mean(dv**2))), virial_mae_per_atom=float(np.mean(np.abs(per_atom))),
                       virial_rmse_per_atom=float(np.sqrt(np.mean(per_atom**2))))
        return out


def evaluate_frames(predictor, frames: Sequence[Tuple[str, object]], progress: bool = True) -> Tuple[EnergyResults, List]:
    """Predict every frame; returns (results over the labelled ones, predicted frames for ``-o``)."""
    from deeph_tf.data.labeled import LabeledFrame

    results, predicted = EnergyResults(), []
    for sid, frame in track(frames, description="dtest", enabled=progress):
        out = predictor.predict_frame(frame)
        predicted.append(LabeledFrame(name=frame.name, species=frame.species, positions=frame.positions, lattice=frame.lattice,
                                      pbc=frame.pbc, energy=float(out[keys.ENERGY]), forces=out[keys.FORCES],
                                      virial=out[keys.VIRIAL] if all(frame.pbc) else None))
        if frame.energy is None or frame.forces is None:
            results.unlabeled += 1
            continue
        results.names.append(sid)
        results.natoms.append(frame.n_atoms)
        results.energy_ref.append(float(frame.energy))
        results.energy_pred.append(float(out[keys.ENERGY]))
        results.forces_ref.append(np.asarray(frame.forces, np.float64))
        results.forces_pred.append(out[keys.FORCES])
        results.virial_ref.append(None if frame.virial is None else np.asarray(frame.virial, np.float64))
        results.virial_pred.append(out[keys.VIRIAL])
    return results, predicted


def format_summary(summary: Dict[str, float]) -> str:
    """DeePMD-kit's ``dp test`` printout."""
    lines = [
        f"# number of test data : {summary['structures']} structures, {summary['atoms']} atoms",
        f"Energy MAE         : {summary['energy_mae']:e} eV",
        f"Energy RMSE        : {summary['energy_rmse']:e} eV",
        f"Energy MAE/Natoms  : {summary['energy_mae_per_atom']:e} eV",
        f"Energy RMSE/Natoms : {summary['energy_rmse_per_atom']:e} eV",
        f"Force  MAE         : {summary['force_mae']:e} eV/A",
        f"Force  RMSE        : {summary['force_rmse']:e} eV/A",
    ]
    if "virial_mae" in summary:
        lines += [
            f"Virial MAE         : {summary['virial_mae']:e} eV",
            f"Virial RMSE        : {summary['virial_rmse']:e} eV",
            f"Virial MAE/Natoms  : {summary['virial_mae_per_atom']:e} eV",
            f"Virial RMSE/Natoms : {summary['virial_rmse_per_atom']:e} eV",
        ]
    return "\n".join(lines)


def _table(header: str, rows: np.ndarray) -> str:
    body = "\n".join(" ".join(f"{v: .10e}" for v in row) for row in rows)
    return f"# {header}\n" + body + ("\n" if len(rows) else "")


def write_details(prefix: str, results: EnergyResults, summary: Dict[str, float], plots: bool = True) -> List[str]:
    """The detail files of the module docstring (atomic writes); returns the paths written."""
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    natoms = np.asarray(results.natoms, np.float64)
    e = np.column_stack([results.energy_ref, results.energy_pred])
    paths = [f"{prefix}.e.out", f"{prefix}.e_peratom.out", f"{prefix}.f.out"]
    atomic_write_text(paths[0], _table("data_e pred_e", e))
    atomic_write_text(paths[1], _table("data_e pred_e", e / natoms[:, None]))
    forces = np.column_stack([np.concatenate(results.forces_ref), np.concatenate(results.forces_pred)])
    atomic_write_text(paths[2], _table("data_fx data_fy data_fz pred_fx pred_fy pred_fz", forces))
    with_virial = [k for k, v in enumerate(results.virial_ref) if v is not None]
    if with_virial:
        comps = ("xx", "xy", "xz", "yx", "yy", "yz", "zx", "zy", "zz")
        header = " ".join(f"data_v{c}" for c in comps) + " " + " ".join(f"pred_v{c}" for c in comps)
        v = np.stack([np.concatenate([results.virial_ref[k].reshape(-1), results.virial_pred[k].reshape(-1)]) for k in with_virial])
        atomic_write_text(f"{prefix}.v.out", _table(header, v))
        atomic_write_text(f"{prefix}.v_peratom.out", _table(header, v / natoms[with_virial, None]))
        paths += [f"{prefix}.v.out", f"{prefix}.v_peratom.out"]
    atomic_write_text(f"{prefix}.summary.json", json_text(dict(summary, structures_tested=results.names)))
    paths.append(f"{prefix}.summary.json")
    if plots:
        try:
            paths.append(str(plot_energy_parity(results, Path(f"{prefix}.parity.png"))))
        except Exception as error:  # a plot never fails a test run
            logger.warning("could not plot the parity: %s", error)
    return paths


def plot_energy_parity(results: EnergyResults, png_path: PathLike) -> Path:
    """Two parity panels: energy per atom (eV/atom) and force components (eV/A), DFT vs predicted."""
    natoms = np.asarray(results.natoms, np.float64)
    return plot_parity(
        [ParityPanel("energy per atom", np.asarray(results.energy_ref) / natoms,
                     np.asarray(results.energy_pred) / natoms, "eV/atom"),
         ParityPanel("force components", np.concatenate(results.forces_ref), np.concatenate(results.forces_pred), "eV/A")],
        png_path)
