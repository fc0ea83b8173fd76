"""``dtest``: predict structure folders, score them against DFT, write predictions and plots.

For every structure: the blocks are predicted; where the reference target exists
(hamiltonian.h5 for a Hamiltonian model) the block errors are scored (raw and
gauge-corrected, per element pair and shell pair: :mod:`deeph_tf.infer.metrics`) and, for
Hamiltonians, the physics: orbital energies of molecules or bands of crystals
(:mod:`deeph_tf.infer.electronic`). Structures without the reference are predicted only.
Predictions (``-o``) are written in the pair order of the structure's own block file
(:func:`in_pair_order`), as DeepH-dock's ``dock analyze error`` requires.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from deeph_tf.atomic_io import atomic_write_text
from deeph_tf.data import keys
from deeph_tf.data.block_h5 import BlockSet
from deeph_tf.infer.metrics import DatasetErrors, aligned_blocks, counted_entries, structure_errors
from deeph_tf.jsonutil import json_text
from deeph_tf.plotting import ParityPanel, plot_parity
from deeph_tf.progress import track

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
    from deeph_tf.infer.electronic import BandErrors, physics_errors, plot_bands

    target = predictor.target
    report, errors = EvaluationReport(), DatasetErrors()
    parity: List[Tuple[np.ndarray, np.ndarray]] = []
    detail_rows: List[str] = []
    output_dir = Path(output_dir) if output_dir else None
    # Plots: PREFIX.parity.png and PREFIX.bands/<sid>.png with -d, else in OUTPUT_DIR.
    parity_png = Path(f"{detail_prefix}.parity.png") if detail_prefix else (output_dir / "parity.png" if output_dir else None)
    bands_dir = Path(f"{detail_prefix}.bands") if detail_prefix else (output_dir / "bands" if output_dir else None)
    for sid, folder in track(structures, description="dtest", enabled=progress):
        structure = load_structure(folder)
        graph, predicted = predictor.predict_structure(structure)
        report.n_structures += 1
        overlap = structure.read_blocks(keys.OVERLAP) if structure.has_blocks(keys.OVERLAP) else None
        scored = target != keys.OVERLAP and structure.has_blocks(target)
        reference = structure.read_blocks(target) if scored else None
        if output_dir is not None:
            pair_order = reference if reference is not None else overlap
            blocks = {f"{target}_pred": predicted if pair_order is None else in_pair_order(predicted, pair_order, sid)}
            if overlap is not None:
                blocks[keys.OVERLAP] = overlap
            written = write_structure_folder(output_dir / "dft" / sid, structure.poscar, structure.info, blocks)
            report.predictions.append(str(Path(written) / f"{target}_pred.h5"))
        if reference is None:
            continue
        errors.add(structure_errors(predicted, reference, overlap, structure, name=sid, operator=target,
                                    gauge=target == keys.HAMILTONIAN))
        report.n_scored += 1
        ref_values, pred_values = counted_entries(predicted, reference, overlap, structure)
        parity.append((ref_values, pred_values))
        if detail_prefix:
            detail_rows.extend(f"{sid} {r: .8e} {p: .8e}" for r, p in zip(ref_values, pred_values))
        if physics and target == keys.HAMILTONIAN:
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
            report.plots.append(str(plot_block_parity(parity, parity_png, target)))
    if detail_prefix:
        _write_details(detail_prefix, target, detail_rows, report)
    return report, errors


def in_pair_order(blocks: BlockSet, template: BlockSet, name: str = "") -> BlockSet:
    """``blocks`` for ``template``'s atom_pairs, in their order (pairs beyond them dropped).

    A prediction comes in the graph's order (on-site pairs first); written in the order of
    the structure's own hamiltonian.h5 (or overlap.h5) it has that file's ``atom_pairs``,
    ``chunk_shapes`` and ``chunk_boundaries``, which DeepH-dock's ``dock analyze error`` requires.

    Raises:
        ValueError: ``blocks`` lacks one of the template's pairs (names structure ``name``).
    """
    if np.array_equal(blocks.atom_pairs, template.atom_pairs):
        return blocks
    return BlockSet(template.atom_pairs, aligned_blocks(blocks, template.keys(), name, "prediction"))


def plot_block_parity(pairs: Sequence[Tuple[np.ndarray, np.ndarray]], png_path: PathLike,
                      target: str = keys.HAMILTONIAN) -> Path:
    """dtest's parity figure: every counted entry, predicted against DFT, with an error histogram.

    Args:
        pairs: (reference, predicted) counted entries of each structure (eV for a Hamiltonian).
    """
    panel = ParityPanel(f"{target} entries", np.concatenate([r for r, _ in pairs]),
                        np.concatenate([p for _, p in pairs]), "eV" if target == keys.HAMILTONIAN else "")
    return plot_parity([panel], png_path, title=f"{len(pairs)} structures", error_histogram=True)


def _write_details(prefix: str, target: str, rows: List[str], report: EvaluationReport) -> None:
    """``PREFIX.<target>.out`` (structure, DFT, predicted per counted entry), ``PREFIX.orbital_energy.out``
    and ``PREFIX.summary.json``, DeePMD's detail-file style."""
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    unit = "eV" if target == keys.HAMILTONIAN else "1"
    atomic_write_text(f"{prefix}.{target}.out", f"# structure  data_{target}({unit})  pred_{target}({unit})\n"
                      + "\n".join(rows) + ("\n" if rows else ""))
    if report.molecules:
        lines = ["# structure  orbital  data_e(eV)  pred_e(eV)"]
        for m in report.molecules:
            for index, ref, pred in zip(m["orbital_indices"], m["energies_ref_eV"], m["energies_pred_eV"]):
                lines.append(f"{m['name']} {int(index)} {ref: .8e} {pred: .8e}")
        atomic_write_text(f"{prefix}.orbital_energy.out", "\n".join(lines) + "\n")
    atomic_write_text(f"{prefix}.summary.json", json_text(report.to_dict()))


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
