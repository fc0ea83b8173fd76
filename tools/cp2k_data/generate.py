"""Running a plan: CP2K per structure, conversion, resume, and the move of finished folders.

A structure whose folder is complete is skipped (after checking that its geometry and settings
match this run; a mismatch is an error, never a silent mix); an incomplete one is redone. Each
structure is computed and written in ``OUT/.partial/<sid>.<pid>`` (outside ``dft/``) and renamed
into ``OUT/dft/`` only when complete, so an interrupted run never leaves a folder that reads as
complete. ``--workers`` structures run at once, each CP2K with ``--mpi-procs`` MPI ranks and one
OpenMP thread per rank.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Dict, Sequence, Tuple

import numpy as np

from deeph_tf.conventions import HARTREE_TO_EV
from deeph_tf.progress import progress_bar

from .blocks import hamiltonian_scale, image_blocks, within_radius
from .cp2k_input import BANDS_FILE, PROJECT, cp2k_input
from .cp2k_output import basis_shells, cp2k_data_dir, read_run
from .folders import check_existing, is_complete, missing_files, write_folder
from .materials import band_path, is_molecule_name, k_mesh
from .plan import Settings, Task, structure_of
from .validate import band_errors, blocks_band_energies

logger = logging.getLogger("make_cp2k_dataset")

PARTIAL_DIRNAME = ".partial"
#: Where --keep-cp2k-files puts each structure's CP2K run (input, log, CSR and band files).
RUNS_DIRNAME = "cp2k_runs"
#: Random validation k-points per structure (besides the K_PATH samples).
N_RANDOM_K = 4
#: K_PATH points per segment written to the K_PATH file (for dtest's band plots).
K_PATH_FILE_POINTS = 40


def cp2k_command(settings: Settings) -> Sequence[str]:
    """``cp2k.psmp`` (one rank) or ``mpirun -np N cp2k.psmp``; ``$CP2K_EXE`` overrides the binary."""
    exe = os.environ.get("CP2K_EXE") or shutil.which("cp2k.psmp") or shutil.which("cp2k")
    if exe is None:
        raise FileNotFoundError("CP2K not found (apt-get install cp2k, or set CP2K_EXE)")
    if settings.mpi_procs <= 1:
        return [exe]
    return ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(settings.mpi_procs), exe]


def _validation_points(structure, seed: int) -> Tuple[list, list]:
    """(K_PATH corners, further k-points): a molecule has no path and one point, Gamma."""
    if not any(structure.pbc):
        return [], [np.zeros(3)]
    segments = band_path(structure)
    corners = [segments[0][1]] + [seg[3] for seg in segments]
    rng = np.random.default_rng(seed + 7919)
    random_k = rng.uniform(-0.5, 0.5, size=(N_RANDOM_K, 3)) * np.array([1.0 if p else 0.0 for p in structure.pbc])
    return corners, list(random_k)


def compute_structure(task: Task, settings: Settings) -> Tuple[str, float, str]:
    """Run CP2K for one structure and move its finished folder into OUT/dft.

    Returns:
        (name, wall seconds, "" on success or an error message).
    """
    t0 = time.perf_counter()
    partial = settings.out / PARTIAL_DIRNAME / f"{task.name}.{os.getpid()}.{task.index}"
    try:
        if partial.exists():
            shutil.rmtree(partial)
        run_dir = partial / "run"
        run_dir.mkdir(parents=True)
        structure = structure_of(task, settings)
        shells = basis_shells(sorted(set(structure.species)), settings.basis, cp2k_data_dir() / "BASIS_MOLOPT")
        sizes = [sum(2 * l + 1 for l in shells[el]) for el in structure.species]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        mesh = k_mesh(structure, settings.kspacing)
        corners, random_k = _validation_points(structure, settings.seed + task.index)
        text = cp2k_input(structure, settings, mesh, corners, random_k, added_mos=int(offsets[-1]))
        (run_dir / "cp2k.inp").write_text(text)
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        t_dft = time.perf_counter()
        proc = subprocess.run([*cp2k_command(settings), "-i", "cp2k.inp", "-o", "cp2k.log"], cwd=run_dir,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        dft_seconds = time.perf_counter() - t_dft
        if proc.returncode != 0:
            tail = (run_dir / "cp2k.log").read_text()[-2000:] if (run_dir / "cp2k.log").is_file() else proc.stdout[-2000:]
            raise RuntimeError(f"CP2K exited with {proc.returncode}: ...{tail}")
        run = read_run(run_dir, PROJECT, "cp2k.log", BANDS_FILE)
        if run.hamiltonian.shape[1] != offsets[-1]:
            raise ValueError(f"CP2K wrote {run.hamiltonian.shape[1]} orbitals, the basis file gives {offsets[-1]}")
        matrices = {"hamiltonian": run.hamiltonian, "overlap": run.overlap}
        full, full_range = image_blocks(run.cells, matrices, offsets, structure.positions, structure.lattice,
                                        0.0, hamiltonian_scale())
        blocks, kept_range = within_radius(full, structure.positions, structure.lattice, settings.block_radius)
        fermi = run.fermi_hartree * HARTREE_TO_EV
        n_occ = run.n_electrons // 2
        errors = {}
        for label, chosen in (("all_blocks", full), ("written_blocks", blocks)):
            e = blocks_band_energies(chosen["hamiltonian"], chosen["overlap"], offsets, run.band_k)
            errors[label] = band_errors(e, run.band_energies_eV, fermi, n_occ)
        cell = (f"box={structure.lattice[0, 0]:g}A" if is_molecule_name(settings.material)
                else f"supercell={'x'.join(map(str, settings.supercell))}")
        comment = (f"{settings.material} {cell} seed={settings.seed + task.index} sigma={settings.sigma} "
                   f"{settings.basis_label} (tools/make_cp2k_dataset.py)")
        generator = {"comment": comment, "settings": settings.provenance(), "k_mesh": list(mesh),
                     "cp2k_seconds": dft_seconds, "mpi_procs": settings.mpi_procs, "scf_steps": run.scf_steps,
                     "n_images": int(len(run.cells)), "n_blocks_cp2k": len(full["overlap"]),
                     "n_blocks_written": len(blocks["overlap"]), "max_pair_distance_cp2k_A": full_range,
                     "max_pair_distance_written_A": kept_range, "band_errors_eV": errors}
        info = {"atoms_quantity": len(structure.species), "orbits_quantity": int(offsets[-1]),
                "orthogonal_basis": False, "spinful": False, "fermi_energy_eV": fermi,
                "elements_orbital_map": {el: shells[el] for el in dict.fromkeys(structure.species)},
                "occupation": int(run.n_electrons), "basis": settings.basis_label}
        folder = partial / "folder"
        write_folder(folder, structure.species, structure.positions, structure.lattice, blocks, info,
                     band_path(structure), K_PATH_FILE_POINTS, (run.band_k, run.band_energies_eV, fermi),
                     text, generator)
        final = settings.out / "dft" / task.name
        if final.exists():  # an incomplete leftover (complete ones are skipped before)
            shutil.rmtree(final)
        os.rename(folder, final)
        if settings.keep_run:  # CP2K's own files, for debugging and the converter's test fixture
            kept = settings.out / RUNS_DIRNAME / task.name
            shutil.rmtree(kept, ignore_errors=True)
            kept.parent.mkdir(parents=True, exist_ok=True)
            os.rename(run_dir, kept)
        shutil.rmtree(partial, ignore_errors=True)
        logger.debug("%s: %d blocks written of %d, band error near E_F %.2e eV", task.name,
                     len(blocks["overlap"]), len(full["overlap"]), errors["written_blocks"]["window_max"])
        return task.name, time.perf_counter() - t0, ""
    except Exception as exc:  # reported by the caller; other structures go on
        with contextlib.suppress(OSError):
            shutil.rmtree(partial)
        return task.name, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"


def generate(tasks: Sequence[Task], settings: Settings, workers: int = 1) -> Dict[str, object]:
    """Compute every task whose folder is not complete yet.

    Returns:
        {"computed": [names], "skipped": [names], "failed": {name: message}, "seconds": {name: s}}.
    """
    dft_dir = settings.out / "dft"
    dft_dir.mkdir(parents=True, exist_ok=True)
    todo, skipped = [], []
    periodic = not is_molecule_name(settings.material)
    for task in tasks:
        folder = dft_dir / task.name
        if is_complete(folder, periodic):
            check_existing(folder, task, settings)
            skipped.append(task.name)
        else:
            if folder.exists():
                logger.info("%s: incomplete (missing %s), regenerating", task.name,
                            ", ".join(missing_files(folder, periodic)))
            todo.append(task)
    if skipped:
        logger.info("skipping %d complete structures", len(skipped))
    for task in todo:  # leftovers of an interrupted run
        for stale in (settings.out / PARTIAL_DIRNAME).glob(f"{task.name}.*"):
            shutil.rmtree(stale, ignore_errors=True)
    summary: Dict[str, object] = {"computed": [], "skipped": skipped, "failed": {}, "seconds": {}}
    if not todo:
        return summary
    bar = progress_bar(len(todo), description="structures", unit="structure")
    t0 = time.perf_counter()
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
            futures = [pool.submit(compute_structure, task, settings) for task in todo]
            try:
                for fut in concurrent.futures.as_completed(futures):
                    name, seconds, error = fut.result()
                    summary["seconds"][name] = seconds
                    if error:
                        summary["failed"][name] = error
                        logger.error("%s: FAILED after %.1f s: %s", name, seconds, error)
                    else:
                        summary["computed"].append(name)
                        logger.info("%s: done in %.1f s", name, seconds)
                    if bar is not None:
                        bar.update(1)
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
    finally:
        if bar is not None:
            bar.close()
        with contextlib.suppress(OSError):
            (settings.out / PARTIAL_DIRNAME).rmdir()
    logger.info("computed %d, skipped %d, failed %d structures in %.1f s -> %s", len(summary["computed"]),
                len(skipped), len(summary["failed"]), time.perf_counter() - t0, dft_dir)
    return summary
