"""``dtest``: predict structure folders, score them against DFT, write predictions and plots.

For every structure: the blocks are predicted; where the reference target exists
(hamiltonian.h5 for a Hamiltonian model) the block errors are scored (raw and
gauge-corrected, per element pair and shell pair: :mod:`deeph_tf.infer.metrics`) and, for
Hamiltonians, the physics: orbital energies of molecules or bands of crystals
(:mod:`deeph_tf.infer.eigen`). Structures without the reference are predicted only.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from deeph_tf.atomic_io import atomic_path, atomic_write_text

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class EvaluationReport:
    """What dtest found (errors in meV)."""

    n_structures: int = 0
    n_scored: int = 0
    blocks: Optional[Dict[str, Any]] = None
    molecules: List[Dict[str, Any]] = field(default_factory=list)
    crystals: List[Dict[str, Any]] = field(default_factory=list)
    physics_skipped: Dict[str, str] = field(default_factory=dict)
    predictions: List[str] = field(default_factory=list)
    plots: List[str] = field(default_factory=list)

    def physics_summary(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        if self.molecules:
            out["orbital_energy_mae_meV"] = float(np.mean([m["mae_meV"] for m in self.molecules]))
            gaps = [abs(m["gap_error_meV"]) for m in self.molecules if m.get("gap_error_meV") is not None]
            if gaps:
                out["gap_mae_meV"] = float(np.mean(gaps))
        if self.crystals:
            out["band_mae_meV"] = float(np.mean([c["mae_meV"] for c in self.crystals if c.get("mae_meV") is not None]))
        return out

    def to_dict(self) -> Dict[str, Any]:
        return {"n_structures": self.n_structures, "n_scored": self.n_scored, "blocks": self.blocks,
                "physics": self.physics_summary(), "molecules": self.molecules, "crystals": self.crystals,
                "physics_skipped": self.physics_skipped, "predictions": self.predictions, "plots": self.plots}


def select_structures(inputs: PathLike, data_dir_depth: Optional[int] = 0, split_file: Optional[PathLike] = None,
                      subset: str = "test", numb_test: int = 0) -> List[Tuple[str, Path]]:
    """(id, folder) of the structures to test: all under ``inputs`` (or a split's subset), first N."""
    from deeph_tf.data.discovery import find_structure_folders

    _, found = find_structure_folders(inputs, data_dir_depth)
    if split_file is not None:
        split = json.loads(Path(split_file).read_text())
        if subset not in split:
            raise ValueError(f"{split_file}: no subset {subset!r} (has {sorted(split)})")
        wanted = {str(s) for s in split[subset]}
        chosen = [(sid, p) for sid, p in found if sid in wanted or p.name in wanted]
        if not chosen:
            raise ValueError(f"{split_file}: none of the {len(wanted)} {subset!r} structures is under {inputs}")
        found = chosen
    return found[:numb_test] if numb_test and numb_test > 0 else found


def evaluate(
    predictor,
    structures: Sequence[Tuple[str, Path]],
    output_dir: Optional[PathLike] = None,
    detail_prefix: Optional[str] = None,
    physics: bool = True,
    k_grid: Optional[Sequence[int]] = None,
    progress: bool = True,
) -> Tuple[EvaluationReport, Any]:
    """Predict and score ``structures``; returns (report, :class:`DatasetErrors`)."""
    from deeph_tf.data.structure import load_structure, write_structure_folder
    from deeph_tf.infer.eigen import BandErrors, physics_errors, plot_bands
    from deeph_tf.infer.metrics import DatasetErrors, counted_entries, structure_errors

    target = predictor.target
    report, errors = EvaluationReport(), DatasetErrors()
    parity: List[Tuple[np.ndarray, np.ndarray]] = []
    detail_rows: List[str] = []
    output_dir = Path(output_dir) if output_dir else None
    # Plots: PREFIX.parity.png and PREFIX.bands/<sid>.png with -d, else in OUTPUT_DIR.
    parity_png = Path(f"{detail_prefix}.parity.png") if detail_prefix else (output_dir / "parity.png" if output_dir else None)
    bands_dir = Path(f"{detail_prefix}.bands") if detail_prefix else (output_dir / "bands" if output_dir else None)
    iterator = structures
    if progress and sys.stderr.isatty():
        from tqdm import tqdm

        iterator = tqdm(structures, desc="dtest", unit="structure", leave=False)
    for sid, folder in iterator:
        structure = load_structure(folder)
        graph, predicted = predictor.predict_structure(structure)
        report.n_structures += 1
        overlap = structure.read_blocks("overlap") if structure.has_blocks("overlap") else None
        if output_dir is not None:
            blocks = {f"{target}_pred": predicted}
            if overlap is not None:
                blocks["overlap"] = overlap
            written = write_structure_folder(output_dir / "dft" / sid, structure.poscar, structure.info, blocks)
            report.predictions.append(str(Path(written) / f"{target}_pred.h5"))
        if target == "overlap" or not structure.has_blocks(target):
            continue
        reference = structure.read_blocks(target)
        errors.add(structure_errors(predicted, reference, overlap, structure, name=sid, operator=target,
                                    gauge=target == "hamiltonian"))
        report.n_scored += 1
        ref_values, pred_values = counted_entries(predicted, reference, overlap, structure)
        parity.append((ref_values, pred_values))
        if detail_prefix:
            detail_rows.extend(f"{sid} {r: .8e} {p: .8e}" for r, p in zip(ref_values, pred_values))
        if physics and target == "hamiltonian":
            try:
                result = physics_errors(predicted, reference, overlap, structure, name=sid,
                                        **({"k_grid": tuple(k_grid)} if k_grid else {}))
            except ValueError as error:  # e.g. no occupation and no Fermi energy
                report.physics_skipped[sid] = str(error)
                logger.warning("structure %s: no eigenvalue errors (%s)", sid, error)
                continue
            if isinstance(result, BandErrors):
                report.crystals.append(result.to_dict())
                if bands_dir is not None:
                    png = bands_dir / f"{sid.replace('/', '_')}.png"
                    png.parent.mkdir(parents=True, exist_ok=True)
                    report.plots.append(str(plot_bands(result, png, title=sid)))
            else:
                report.molecules.append(result.to_dict())
    if len(errors):
        report.blocks = errors.to_dict()
        if parity_png is not None:
            parity_png.parent.mkdir(parents=True, exist_ok=True)
            report.plots.append(str(plot_parity(parity, parity_png, target)))
    if detail_prefix:
        _write_details(detail_prefix, target, detail_rows, report)
    return report, errors


def plot_parity(pairs: Sequence[Tuple[np.ndarray, np.ndarray]], png_path: PathLike, target: str = "hamiltonian") -> Path:
    """Prediction against DFT of every counted entry (hexbin for many points), with the MAE."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reference = np.concatenate([r for r, _ in pairs])
    predicted = np.concatenate([p for _, p in pairs])
    unit = "eV" if target == "hamiltonian" else ""
    mae_meV = 1e3 * float(np.mean(np.abs(predicted - reference)))
    fig, (ax, ax_err) = plt.subplots(1, 2, figsize=(9, 4))
    lo, hi = float(min(reference.min(), predicted.min())), float(max(reference.max(), predicted.max()))
    if reference.size > 20000:
        ax.hexbin(reference, predicted, gridsize=120, bins="log", mincnt=1, cmap="viridis")
    else:
        ax.scatter(reference, predicted, s=3, alpha=0.5)
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlabel(f"DFT {target} entry ({unit})".replace(" ()", ""))
    ax.set_ylabel(f"predicted ({unit})".replace(" ()", ""))
    ax.set_title(f"{len(pairs)} structures, {reference.size} entries, MAE {mae_meV:.3g} m{unit}")
    errors_meV = 1e3 * (predicted - reference)
    ax_err.hist(errors_meV, bins=100, log=True)
    ax_err.set_xlabel(f"prediction - DFT (m{unit})")
    ax_err.set_ylabel("entries")
    fig.tight_layout()
    png_path = Path(png_path)
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return png_path


def _write_details(prefix: str, target: str, rows: List[str], report: EvaluationReport) -> None:
    """``PREFIX.<target>.out`` (structure, DFT, predicted per counted entry), ``PREFIX.orbital_energy.out``
    and ``PREFIX.summary.json``, DeePMD's detail-file style."""
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    unit = "eV" if target == "hamiltonian" else "1"
    atomic_write_text(f"{prefix}.{target}.out", f"# structure  data_{target}({unit})  pred_{target}({unit})\n"
                      + "\n".join(rows) + ("\n" if rows else ""))
    if report.molecules:
        lines = ["# structure  orbital  data_e(eV)  pred_e(eV)"]
        for m in report.molecules:
            for index, ref, pred in zip(m["orbital_indices"], m["energies_ref_eV"], m["energies_pred_eV"]):
                lines.append(f"{m['name']} {int(index)} {ref: .8e} {pred: .8e}")
        atomic_write_text(f"{prefix}.orbital_energy.out", "\n".join(lines) + "\n")
    atomic_write_text(f"{prefix}.summary.json", json.dumps(report.to_dict(), indent=1, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(type(value))


def format_physics(report: EvaluationReport) -> str:
    """The eigenvalue part of dtest's printout (meV)."""
    lines = []
    if report.molecules:
        summary = report.physics_summary()
        lines.append(f"orbital energies of {len(report.molecules)} molecule(s) (occupied + LUMO, raw):")
        lines.append(f"  MAE {summary['orbital_energy_mae_meV']:.3f} meV"
                     + (f", HOMO-LUMO gap MAE {summary['gap_mae_meV']:.3f} meV" if "gap_mae_meV" in summary else ""))
    for crystal in report.crystals:
        gap = f", gap error {crystal['gap_error_meV']:.1f} meV" if crystal.get("gap_error_meV") is not None else ""
        lines.append(f"bands of {crystal['name']} ({crystal['k_source']}, +-{crystal['window_eV']:g} eV around E_F): "
                     f"MAE {crystal['mae_meV']:.3f} meV, after removing the mean shift {crystal['mae_shifted_meV']:.3f} meV{gap}")
    if report.physics_skipped:
        lines.append(f"no eigenvalue errors for {len(report.physics_skipped)} structure(s) (see the log)")
    return "\n".join(lines)
