"""``dband``: bands, Fermi level, gap and DOS of every structure of a folder, from its H and S.

Inputs per structure folder (POSCAR, info.json with ``occupation``): the Hamiltonian
``hamiltonian_pred.h5`` (preferred), else ``hamiltonian.h5``, or the file ``--hamiltonian``
names; the overlap ``overlap.h5``, else ``overlap_pred.h5`` (logged). Every structure's files
are checked before any is solved. Outputs (``output_dir``; energies in eV)::

    <sid>/bands.h5     root: the k-path (crystals) or the Gamma orbital energies (molecules):
                         k_frac [n_k, 3], energies [n_k, n_bands], first_band [n_k] (band index of
                         column 0; 0 for dense), and for a path distance [n_k] (1/Angstrom),
                         tick_distance, tick_labels; attributes fermi_energy_eV, n_occupied, solver,
                         n_orbitals, kind, gap_eV, vbm_eV, cbm_eV (NaN: unknown), k_path, k_grid
                       grid/ k_frac, energies, first_band (the k-grid); dos/ energy_eV, dos
                         (states / eV / cell), attribute sigma_eV
    <sid>/bands.png    bands along the path with E_F (crystals with a path)
    <sid>/dos.png      DOS with E_F
    summary.json       per structure: solver, n_orbitals, Fermi level, gap, ..., time_s; with a
                       reference, its errors (meV) as dtest computes them

Each ``<sid>`` folder is staged and renamed into place (:func:`~deeph_tf.atomic_io.atomic_folder`),
summary.json is written last (an old one is removed first): an interrupted run leaves no
folder or summary that reads as complete. With ``reference_dir`` the structure of the same
id there (hamiltonian.h5 + overlap.h5) is compared through dtest's code
(:func:`~deeph_tf.infer.electronic.crystal_bands`, :func:`~deeph_tf.infer.electronic.molecular_orbital_errors`;
dense, so for dense solves only), on the reference's overlap, along the same path and grid.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from deeph_tf.atomic_io import atomic_folder, atomic_write_text
from deeph_tf.data.block_h5 import BlockSet, read_block_h5
from deeph_tf.data.structure import StructureFolder, load_structure
from deeph_tf.infer.electronic.auto_path import DEFAULT_PATH_POINTS
from deeph_tf.infer.electronic.spectrum import (DEFAULT_NUM_BANDS, DEFAULT_SIGMA_EV, DEFAULT_SPARSE_ABOVE,
                                                ElectronicStructure, electronic_structure)
from deeph_tf.jsonutil import json_text
from deeph_tf.progress import track

logger = logging.getLogger(__name__)

__all__ = ["FORMAT", "DbandOptions", "StructureInputs", "DbandReport", "resolve_inputs", "run_dband",
           "write_bands_h5"]

PathLike = Union[str, "os.PathLike[str]"]
FORMAT = "deeph_tf.dband/1"
SUMMARY_NAME = "summary.json"
HAMILTONIAN_FILES = ("hamiltonian_pred.h5", "hamiltonian.h5")
OVERLAP_FILES = ("overlap.h5", "overlap_pred.h5")


@dataclass
class DbandOptions:
    """dband's settings (see :func:`~deeph_tf.infer.electronic.spectrum.electronic_structure`).

    ``hamiltonian``: file name (".h5" optional) instead of hamiltonian_pred.h5 / hamiltonian.h5;
    ``band_window_eV``: half-width of the reference comparison's window; ``plots``: write PNGs.
    """

    hamiltonian: Optional[str] = None
    solver: str = "auto"
    k_path: Optional[str] = None
    k_grid: Optional[Tuple[int, int, int]] = None
    use_path: bool = True
    n_bands: int = DEFAULT_NUM_BANDS
    sigma_eV: float = DEFAULT_SIGMA_EV
    sparse_above: int = DEFAULT_SPARSE_ABOVE
    path_points: int = DEFAULT_PATH_POINTS
    band_window_eV: float = 2.0
    plots: bool = True


@dataclass(frozen=True)
class StructureInputs:
    """One structure: its id, folder and the H and S files used."""

    sid: str
    folder: Path
    hamiltonian_file: Path
    overlap_file: Path


def resolve_inputs(sid: str, folder: PathLike, hamiltonian: Optional[str] = None) -> StructureInputs:
    """The H and S files of one structure folder (module docstring for the order).

    Raises:
        FileNotFoundError: naming the structure folder and the file(s) expected.
    """
    folder = Path(folder)
    if hamiltonian is not None:
        names: Sequence[str] = (hamiltonian if hamiltonian.endswith(".h5") else f"{hamiltonian}.h5",)
    else:
        names = HAMILTONIAN_FILES
    h_file = next((folder / n for n in names if (folder / n).is_file()), None)
    if h_file is None:
        raise FileNotFoundError(f"structure folder {folder}: no Hamiltonian, expected {' or '.join(names)}")
    s_file = next((folder / n for n in OVERLAP_FILES if (folder / n).is_file()), None)
    if s_file is None:
        raise FileNotFoundError(f"structure folder {folder}: no overlap, expected {OVERLAP_FILES[0]} "
                                f"(or {OVERLAP_FILES[1]})")
    if s_file.name != OVERLAP_FILES[0]:
        logger.info("structure %s: no %s, using %s", sid, OVERLAP_FILES[0], s_file.name)
    return StructureInputs(sid, folder, h_file, s_file)


def _read(inputs: StructureInputs) -> Tuple[StructureFolder, BlockSet, BlockSet]:
    structure = load_structure(inputs.folder)
    h = read_block_h5(inputs.hamiltonian_file)
    structure.check_blocks(h, "hamiltonian", inputs.hamiltonian_file)
    s = read_block_h5(inputs.overlap_file)
    structure.check_blocks(s, "overlap", inputs.overlap_file)  # spinless even for spinful H
    return structure, h, s


@dataclass
class DbandReport:
    """What dband did: per-structure summaries (by id), the dtest-style comparisons, files written."""

    structures: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    molecules: List[Dict[str, Any]] = field(default_factory=list)
    crystals: List[Dict[str, Any]] = field(default_factory=list)
    physics_skipped: Dict[str, str] = field(default_factory=dict)
    written: List[str] = field(default_factory=list)

    def evaluation_report(self):
        """The comparisons as dtest's :class:`~deeph_tf.infer.evaluate.EvaluationReport` (for its printout)."""
        from deeph_tf.infer.evaluate import EvaluationReport

        return EvaluationReport(n_structures=len(self.structures), n_scored=len(self.molecules) + len(self.crystals),
                                molecules=self.molecules, crystals=self.crystals, physics_skipped=self.physics_skipped)


def _nan(value: Optional[float]) -> float:
    return float("nan") if value is None else float(value)


def write_bands_h5(path: PathLike, result: ElectronicStructure) -> Path:
    """Write ``result`` as bands.h5 (layout in the module docstring); plain, not atomic (staged by the caller)."""
    import h5py

    path = Path(path)
    with h5py.File(path, "w") as f:
        main = result.path if result.path is not None else result.grid
        f.create_dataset("k_frac", data=main.k_frac)
        f.create_dataset("energies", data=main.energies)
        f.create_dataset("first_band", data=main.first_band)
        if result.path is not None and result.path_points is not None:
            f.create_dataset("distance", data=result.path_points.distance)
            f.create_dataset("tick_distance", data=np.asarray(result.path_points.tick_distance, dtype=np.float64))
            f.create_dataset("tick_labels", data=np.array(result.path_points.tick_labels, dtype=object),
                             dtype=h5py.string_dtype())
        grid = f.create_group("grid")
        for key in ("k_frac", "energies", "first_band"):
            grid.create_dataset(key, data=getattr(result.grid, key))
        grid.attrs["k_grid"] = np.asarray(result.k_grid, dtype=np.int64)
        dos = f.create_group("dos")
        dos.create_dataset("energy_eV", data=result.dos_energy_eV)
        dos.create_dataset("dos", data=result.dos)
        dos.attrs["sigma_eV"] = result.sigma_eV
        dos.attrs["unit"] = "states / eV / cell (spin degeneracy included)"
        attrs = f.attrs
        attrs.update(name=result.name, kind=result.kind, solver=result.solver, n_orbitals=result.n_orbitals,
                     n_occupied=result.n_occupied, spin_degeneracy=result.spin_degeneracy,
                     fermi_energy_eV=result.fermi_energy_eV, fermi_method=result.fermi_method,
                     gap_eV=_nan(result.gap_eV), vbm_eV=_nan(result.vbm_eV), cbm_eV=_nan(result.cbm_eV),
                     k_path=result.k_path_source or "", k_grid=np.asarray(result.k_grid, dtype=np.int64),
                     energy_unit="eV", format=FORMAT)
    return path


def _reference_folders(reference_dir: PathLike, depth: Optional[int]) -> Dict[str, Path]:
    from deeph_tf.infer.selection import select_structures

    return dict(select_structures(reference_dir, depth))


def _match(sid: str, references: Dict[str, Path]) -> Optional[Path]:
    if sid in references:
        return references[sid]
    tail = sid.rsplit("/", 1)[-1]
    hits = [p for rid, p in references.items() if rid.rsplit("/", 1)[-1] == tail]
    return hits[0] if len(hits) == 1 else None


def _same_blocks(a: BlockSet, b: BlockSet, atol: float = 1e-8) -> bool:
    index = b.pair_index()
    if len(a) != len(b) or any(key not in index for key in a.keys()):
        return False
    return all(np.allclose(block, b.blocks[index[key]], rtol=0.0, atol=atol) for key, block in zip(a.keys(), a.blocks))


def _check_reference(sid: str, references: Dict[str, Path]) -> Optional[Path]:
    """The reference folder of ``sid`` (None, logged, if there is none); FileNotFoundError if it lacks H or S."""
    folder = _match(sid, references)
    if folder is None:
        return None
    for name in ("hamiltonian.h5", "overlap.h5"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"reference structure folder {folder}: no {name}")
    return folder


def _compare(report: DbandReport, result: ElectronicStructure, h: BlockSet, overlap: BlockSet,
             ref_folder: Path, options: DbandOptions) -> Dict[str, Any]:
    """dtest's comparison of this H against the reference folder's DFT H (on the reference's S)."""
    from deeph_tf.infer.electronic import crystal_bands, molecular_orbital_errors

    ref = load_structure(ref_folder)
    ref_h, ref_s = ref.read_blocks("hamiltonian"), ref.read_blocks("overlap")
    if not _same_blocks(overlap, ref_s):
        logger.warning("structure %s: the overlap differs from the reference's; the comparison uses the "
                       "reference's overlap.h5", result.name)
    if result.kind == "molecule":
        errors = molecular_orbital_errors(h, ref_h, ref_s, ref, name=result.name).to_dict()
        report.molecules.append(errors)
        return errors
    k_path: Any = result.k_path_segments
    bands = crystal_bands(h, ref_h, ref_s, ref, k_path=k_path, k_grid=result.k_grid,
                          window_eV=options.band_window_eV, name=result.name)
    errors = bands.to_dict()
    report.crystals.append(errors)
    return errors


def run_dband(structures: Sequence[Tuple[str, Path]], output_dir: PathLike, options: Optional[DbandOptions] = None,
              reference_dir: Optional[PathLike] = None, reference_depth: Optional[int] = None,
              progress: bool = True) -> DbandReport:
    """Solve every structure and write its files and ``summary.json`` (module docstring).

    Args:
        structures: (id, folder) pairs, e.g. from :func:`~deeph_tf.infer.selection.select_structures`.
        output_dir: created if needed; ``<sid>/`` folders are replaced.
        reference_dir / reference_depth: DFT folders to compare with (same ids) and their depth
            below dft/ (None: searched).

    Raises:
        FileNotFoundError: a structure lacks its H or S (before anything is solved).
        ValueError: bad data, no ``occupation``, a failed solve.
    """
    options = options or DbandOptions()
    inputs = [resolve_inputs(sid, folder, options.hamiltonian) for sid, folder in structures]
    ref_folders: Dict[str, Optional[Path]] = {}
    if reference_dir is not None:
        references = _reference_folders(reference_dir, reference_depth)
        ref_folders = {item.sid: _check_reference(item.sid, references) for item in inputs}
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / SUMMARY_NAME).unlink(missing_ok=True)
    report = DbandReport()
    for item in track(inputs, description="dband", enabled=progress):
        t0 = time.perf_counter()
        structure, h, s = _read(item)
        result = electronic_structure(h, s, structure, solver=options.solver, k_path=options.k_path,
                                      k_grid=options.k_grid, use_path=options.use_path, n_bands=options.n_bands,
                                      sigma_eV=options.sigma_eV, sparse_above=options.sparse_above,
                                      path_points=options.path_points, name=item.sid)
        entry = result.summary()
        entry.update(hamiltonian_file=str(item.hamiltonian_file), overlap_file=str(item.overlap_file))
        if reference_dir is not None:
            ref_folder = ref_folders[item.sid]
            if ref_folder is None:
                report.physics_skipped[item.sid] = f"no structure {item.sid} under {reference_dir}"
            elif result.solver != "dense":
                report.physics_skipped[item.sid] = "sparse solve: the reference comparison is dense (--solver dense)"
            else:
                entry["reference"] = _compare(report, result, h, s, ref_folder, options)
            if item.sid in report.physics_skipped:
                logger.warning("structure %s: no reference comparison (%s)", item.sid, report.physics_skipped[item.sid])
        with atomic_folder(out / item.sid) as stage:
            write_bands_h5(stage / "bands.h5", result)
            if options.plots:
                from deeph_tf.infer.electronic.spectrum_plot import plot_band_structure, plot_dos

                if result.path is not None:
                    plot_band_structure(result, stage / "bands.png")
                plot_dos(result, stage / "dos.png")
            written = sorted(p.name for p in stage.iterdir())
        report.written.extend(str(out / item.sid / name) for name in written)
        entry["time_s"] = time.perf_counter() - t0
        report.structures[item.sid] = entry
        logger.info("structure %s: %s, %d orbitals, E_F %.4f eV, gap %s eV, %.2f s", item.sid, result.solver,
                    result.n_orbitals, result.fermi_energy_eV,
                    "n/a" if result.gap_eV is None else f"{result.gap_eV:.4f}", entry["time_s"])
    summary: Dict[str, Any] = {"format": FORMAT, "options": asdict(options),
                               "reference_dir": None if reference_dir is None else str(reference_dir),
                               "structures": report.structures}
    if reference_dir is not None:
        summary["physics"] = report.evaluation_report().physics_summary()
        summary["physics_skipped"] = report.physics_skipped
    atomic_write_text(out / SUMMARY_NAME, json_text(summary))
    report.written.append(str(out / SUMMARY_NAME))
    return report
