"""``dtest``: predict structure folders, score them against DFT, write predictions and plots.

For every structure: the blocks are predicted; where the reference target exists
(hamiltonian.h5 for a Hamiltonian model) the block errors are scored (raw and
gauge-corrected, per element pair and shell pair: :mod:`deeph_tf.infer.metrics`) and, for
Hamiltonians, the physics (:mod:`deeph_tf.infer.electronic`): orbital energies of molecules;
for crystals the bands of the predicted and the DFT H (both on the structure's overlap.h5)
along the folder's ``K_PATH`` (or a given k-path file) and on a Gamma-centred k-grid, each
with raw and shift-removed MAE within +-window of E_F (info.json), max error, gap error, and
on the grid the Fermi levels from the electron count (predicted vs DFT). Spinful (spin-orbit)
Hamiltonians add the SOC metrics of :mod:`~deeph_tf.infer.electronic.spin_orbit` (SOC-induced
level shifts and multiplet splittings at Gamma for molecules, at every corner of the K_PATH for
crystals: band splittings at the high-symmetry k-points). Structures without
the reference are predicted only. Predictions (``-o``) are written in the pair order of the
structure's own block file (:func:`in_pair_order`), as DeepH-dock's ``dock analyze error`` requires.
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
    spin_orbit: List[Dict[str, Any]] = field(default_factory=list)
    physics_skipped: Dict[str, str] = field(default_factory=dict)
    predictions: List[str] = field(default_factory=list)
    plots: List[str] = field(default_factory=list)

    def physics_summary(self) -> Dict[str, Any]:
        """Means over structures (meV). Molecules: ``orbital_energy_mae_meV``, ``gap_mae_meV``
        (HOMO-LUMO). Crystals: ``band_mae_meV`` / ``band_mae_shifted_meV`` (K_PATH where a
        structure has one, else the grid), ``band_grid_mae_meV``, ``band_gap_mae_meV`` (|error|,
        same k as band_mae_meV), ``fermi_mae_meV`` (|E_F(pred) - E_F(DFT)|, both from occupation).
        Spinful: ``soc_shift_mae_meV`` (SOC-induced level shifts), ``soc_splitting_mae_meV``
        (multiplet splittings, structures that have one), ``soc_largest_splitting_mae_meV``."""
        out: Dict[str, Any] = {}
        if self.spin_orbit:
            out["soc_shift_mae_meV"] = float(np.mean([r["shift_mae_meV"] for r in self.spin_orbit]))
            split = [r["splitting_mae_meV"] for r in self.spin_orbit if r["splitting_mae_meV"] is not None]
            largest = [abs(r["largest_splitting_pred_eV"] - r["largest_splitting_ref_eV"]) * 1000.0
                       for r in self.spin_orbit if r["largest_splitting_ref_eV"] is not None]
            if split:
                out["soc_splitting_mae_meV"] = float(np.mean(split))
                out["soc_largest_splitting_mae_meV"] = float(np.mean(largest))
        if self.molecules:
            out["orbital_energy_mae_meV"] = float(np.mean([m["mae_meV"] for m in self.molecules]))
            gaps = [abs(m["gap_error_meV"]) for m in self.molecules if m.get("gap_error_meV") is not None]
            if gaps:
                out["gap_mae_meV"] = float(np.mean(gaps))
        if self.crystals:
            main = [c["k_path"] or c["k_grid"] for c in self.crystals]
            values = {"band_mae_meV": [m["mae_meV"] for m in main],
                      "band_mae_shifted_meV": [m["mae_shifted_meV"] for m in main],
                      "band_grid_mae_meV": [c["k_grid"]["mae_meV"] for c in self.crystals],
                      "band_gap_mae_meV": [m["gap_error_meV"] for m in main],
                      "fermi_mae_meV": [c["fermi_error_meV"] for c in self.crystals]}
            for key, column in values.items():
                known = [abs(v) for v in column if v is not None]
                if known:
                    out[key] = float(np.mean(known))
        return out

    def to_dict(self) -> Dict[str, Any]:
        return {"n_structures": self.n_structures, "n_scored": self.n_scored, "blocks": self.blocks,
                "physics": self.physics_summary(), "molecules": self.molecules, "crystals": self.crystals,
                "spin_orbit": self.spin_orbit,
                "physics_skipped": self.physics_skipped, "predictions": self.predictions, "plots": self.plots}


def evaluate(
    predictor,
    structures: Sequence[Tuple[str, Path]],
    output_dir: Optional[PathLike] = None,
    detail_prefix: Optional[str] = None,
    physics: bool = True,
    k_grid: Optional[Sequence[int]] = None,
    progress: bool = True,
    k_path: Optional[PathLike] = None,
    band_window_eV: Optional[float] = None,
) -> Tuple[EvaluationReport, Any]:
    """Predict and score ``structures``; returns (report, :class:`DatasetErrors`).

    Crystals (:func:`~deeph_tf.infer.electronic.crystal_bands`): bands along ``k_path`` (a
    ``K_PATH`` file for every crystal; default each folder's own ``K_PATH``, if any) and on the
    Gamma-centred ``k_grid`` (3 ints; default per structure :func:`default_k_grid`), compared
    within +-``band_window_eV`` (default 2 eV) of the Fermi energy.
    """
    from deeph_tf.data.structure import load_structure, write_structure_folder
    from deeph_tf.infer.electronic import (DEFAULT_BAND_WINDOW_EV, crystal_bands, is_molecule,
                                           molecular_orbital_errors, plot_bands)
    from deeph_tf.infer.electronic.kpoints import read_k_path
    from deeph_tf.infer.electronic.spin_orbit import high_symmetry_points, spin_orbit_errors_at

    window = DEFAULT_BAND_WINDOW_EV if band_window_eV is None else float(band_window_eV)

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
        if physics and target == keys.HAMILTONIAN and structure.spinful:
            try:
                path_file = Path(k_path) if k_path else structure.path / "K_PATH"
                if is_molecule(reference) or not path_file.is_file():
                    points = [("Gamma", None)]
                else:
                    points = high_symmetry_points(read_k_path(path_file))
                report.spin_orbit.extend(r.to_dict() for r in spin_orbit_errors_at(
                    predicted, reference, overlap, structure, points, name=sid))
            except ValueError as error:
                report.physics_skipped[sid] = str(error)
                logger.warning("structure %s: no spin-orbit errors (%s)", sid, error)
        if physics and target == keys.HAMILTONIAN:
            try:
                if is_molecule(reference):
                    report.molecules.append(molecular_orbital_errors(predicted, reference, overlap, structure,
                                                                     name=sid).to_dict())
                    continue
                bands = crystal_bands(predicted, reference, overlap, structure, k_path=k_path,
                                      k_grid=tuple(k_grid) if k_grid else None, window_eV=window, name=sid)
            except ValueError as error:  # e.g. no occupation and no Fermi energy
                report.physics_skipped[sid] = str(error)
                logger.warning("structure %s: no eigenvalue errors (%s)", sid, error)
                continue
            report.crystals.append(bands.to_dict())
            if bands_dir is not None:  # the K_PATH where there is one, else the grid against k index
                png = bands_dir / f"{sid.replace('/', '_')}.png"
                png.parent.mkdir(parents=True, exist_ok=True)
                written = plot_bands(bands.main, png, title=sid, fermi_pred_eV=bands.grid.fermi_pred_eV)
                report.plots.append(str(written))
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


def _meV(value: Optional[float], signed: bool = False) -> str:
    if value is None:
        return "n/a"
    value = round(value, 3) + 0.0  # no "-0.000"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _band_line(r: Dict[str, Any]) -> str:
    """One k-set of a crystal: raw / shift-removed / max error, gap error, entries (meV)."""
    source = r["k_source"]
    if source.startswith("K_PATH "):  # "K_PATH <file>": the file's name only where it is not K_PATH
        name = Path(source[len("K_PATH "):]).name
        source = "K_PATH" if name == "K_PATH" else f"K_PATH {name}"
    return (f"  {source} ({r['n_k']} k): MAE {_meV(r['mae_meV'])} meV raw, {_meV(r['mae_shifted_meV'])} meV "
            f"mean shift removed, max {_meV(r['max_abs_meV'])} meV, gap error {_meV(r['gap_error_meV'], True)} meV, "
            f"{r['n_compared']} (k, band) entries")


def format_physics(report: EvaluationReport) -> str:
    """The eigenvalue part of dtest's printout (meV): molecules; per crystal a line for the K_PATH
    (if any) and one for the grid (with the Fermi levels); the mean over several crystals."""
    lines = []
    summary = report.physics_summary()
    if report.molecules:
        lines.append(f"orbital energies of {len(report.molecules)} molecule(s) (occupied + LUMO, raw):")
        lines.append(f"  MAE {summary['orbital_energy_mae_meV']:.3f} meV"
                     + (f", HOMO-LUMO gap MAE {summary['gap_mae_meV']:.3f} meV" if "gap_mae_meV" in summary else ""))
    for c in report.crystals:
        occupied = f", {c['n_occupied']} occupied bands" if c.get("n_occupied") is not None else ""
        lines.append(f"bands of {c['name']} (+-{c['window_eV']:g} eV around E_F {c['fermi_energy_eV']:.4f} eV "
                     f"from {c['fermi_source']}{occupied}):")
        if c["k_path"] is not None:
            lines.append(_band_line(c["k_path"]))
        fermi = ""
        if c.get("fermi_pred_eV") is not None:
            fermi = (f"; E_F from occupation: predicted {c['fermi_pred_eV']:.4f} eV, DFT "
                     f"{c['fermi_ref_occupation_eV']:.4f} eV, error {_meV(c['fermi_error_meV'], True)} meV")
        lines.append(_band_line(c["k_grid"]) + fermi)
    if len(report.crystals) > 1:
        lines.append(f"bands, mean over {len(report.crystals)} crystals: MAE {_meV(summary.get('band_mae_meV'))} meV "
                     f"raw, {_meV(summary.get('band_mae_shifted_meV'))} meV mean shift removed (K_PATH, else grid); "
                     f"grid MAE {_meV(summary.get('band_grid_mae_meV'))} meV; |gap error| "
                     f"{_meV(summary.get('band_gap_mae_meV'))} meV; |E_F error| "
                     f"{_meV(summary.get('fermi_mae_meV'))} meV")
    if report.spin_orbit:
        lines.append(f"spin-orbit coupling at {len(report.spin_orbit)} structure k-point(s) (molecules Gamma, "
                     "crystals the K_PATH corners; occupied + lowest unoccupied Kramers pair):")
        line = f"  SOC-induced level shift MAE {_meV(summary.get('soc_shift_mae_meV'))} meV"
        if "soc_splitting_mae_meV" in summary:
            line += (f", multiplet splitting MAE {_meV(summary['soc_splitting_mae_meV'])} meV, largest splitting "
                     f"MAE {_meV(summary['soc_largest_splitting_mae_meV'])} meV")
        lines.append(line)
        for r in report.spin_orbit:
            if r["largest_splitting_ref_eV"] is not None:
                lines.append(f"  {r['name']}: largest splitting DFT {r['largest_splitting_ref_eV']:.4f} eV, predicted "
                             f"{r['largest_splitting_pred_eV']:.4f} eV; shift MAE {_meV(r['shift_mae_meV'])} meV")
    if report.physics_skipped:
        lines.append(f"no eigenvalue errors for {len(report.physics_skipped)} structure(s) (see the log)")
    return "\n".join(lines)
