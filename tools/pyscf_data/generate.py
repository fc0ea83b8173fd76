"""Running a plan: one process or a spawn-started pool, resume, and the move of finished folders.

A structure whose folder exists with every file is skipped (after checking that its species,
geometry and ``basis`` match this run's settings; a mismatch is an error, never a silent mix); an
incomplete folder is regenerated. Each structure is written in ``OUT/.partial/<sid>.<pid>``
(outside ``dft/``) and renamed into ``OUT/dft/`` only when complete, so an interrupted run never
leaves a half-written folder that looks complete. ``workers > 1`` runs a spawn-started process pool
with one OpenMP/BLAS thread per worker; ``workers = 1`` runs in this process with PySCF's threads.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import time
from typing import Callable, Dict, Iterator, Sequence, Tuple

from deeph_tf.progress import progress_bar

from .folders import check_existing, is_complete, missing_files, write_structure
from .plan import Settings, Task, structure_geometry
from .gks import run_gks_soc
from .scf import run_dft, scf_energy_forces

logger = logging.getLogger("make_pyscf_dataset")

#: Where structures are assembled before they are renamed into OUT/dft (outside dft/ on purpose).
PARTIAL_DIRNAME = ".partial"
#: Environment variables that cap the threads of one worker.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def compute_structure(task: Task, settings: Settings) -> Tuple[str, float, str]:
    """Run DFT for one structure and move its finished folder into OUT/dft.

    Returns:
        (name, wall seconds, "" on success or an error message).
    """
    t0 = time.perf_counter()
    partial = settings.out / PARTIAL_DIRNAME / f"{task.name}.{os.getpid()}"
    try:
        species, pos, euler = structure_geometry(task.molecule, task.index, settings)
        if settings.spinful:
            result = run_gks_soc(species, pos, settings.xc, settings.basis, settings.ecp, settings.grid_level,
                                 settings.conv_tol)
        else:
            result = run_dft(species, pos, settings.xc, settings.basis, settings.grid_level, q_frame=None,
                             conv_tol=settings.conv_tol)
        if settings.forces:
            result["energy_eV"], result["forces_eV_per_A"] = scf_energy_forces(
                species, pos, settings.xc, settings.basis, settings.grid_level, settings.conv_tol,
                dm0_deeph=result["density_matrix"])
        if partial.exists():
            shutil.rmtree(partial)
        rot = "" if euler is None else " euler_zyz=" + ",".join(f"{a:.6f}" for a in euler)
        forces = " forces=true" if settings.forces else ""
        forces += " spinful=true" if settings.spinful else ""
        comment = (f"{task.molecule} {settings.basis_label} seed={settings.seed + task.index} "
                   f"sigma={settings.sigma}{rot}{forces} (tools/make_pyscf_dataset.py)")
        write_structure(partial, species, pos, result, settings, comment)
        final = settings.out / "dft" / task.name
        if final.exists():  # an incomplete leftover (complete ones are skipped before)
            shutil.rmtree(final)
        os.rename(partial, final)
        logger.debug("%s: %d orbitals, |eig(F[D]) - mo_energy| = %.1e eV", task.name,
                     int(result["offsets"][-1]), result["scf_mo_energy_shift"])
        return task.name, time.perf_counter() - t0, ""
    except Exception as exc:  # reported by the caller; other structures go on
        with contextlib.suppress(OSError):
            shutil.rmtree(partial)
        return task.name, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"


def _init_worker() -> None:
    """Pool initializer: one OpenMP/BLAS thread per worker process; Ctrl-C is left to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for var in THREAD_ENV_VARS:
        os.environ[var] = "1"
    from pyscf import lib

    lib.num_threads(1)


def _terminate_pool(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Cancel queued structures and stop the running ones (their .partial folders are cleaned next run)."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.terminate()
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.join(timeout=10)


@contextlib.contextmanager
def _single_thread_env() -> Iterator[None]:
    """Set the thread variables to 1 while worker processes are started (they read them at import)."""
    saved = {v: os.environ.get(v) for v in THREAD_ENV_VARS}
    os.environ.update({v: "1" for v in THREAD_ENV_VARS})
    try:
        yield
    finally:
        for v, old in saved.items():
            if old is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = old


def generate(tasks: Sequence[Task], settings: Settings, workers: int = 1) -> Dict[str, object]:
    """Compute every task whose folder is not complete yet.

    Returns:
        {"computed": [names], "skipped": [names], "failed": {name: message}, "seconds": {name: s}}.

    Raises:
        ValueError: if a complete folder of this plan was made with other settings.
    """
    dft_dir = settings.out / "dft"
    dft_dir.mkdir(parents=True, exist_ok=True)
    todo, skipped = [], []
    for task in tasks:
        folder = dft_dir / task.name
        if is_complete(folder, settings.forces, settings.spinful):
            check_existing(folder, task, settings)
            skipped.append(task.name)
        else:
            if folder.exists():
                logger.info("%s: incomplete (missing %s), regenerating", task.name,
                            ", ".join(missing_files(folder, settings.forces, settings.spinful)))
            todo.append(task)
    if skipped:
        logger.info("skipping %d complete structures", len(skipped))
    for task in todo:  # leftovers of an interrupted run
        for stale in (settings.out / PARTIAL_DIRNAME).glob(f"{task.name}.*"):
            shutil.rmtree(stale, ignore_errors=True)
    return run_tasks(compute_structure, todo, skipped, settings, workers)


def run_tasks(compute: Callable, todo: Sequence, skipped: Sequence[str], settings, workers: int = 1) -> Dict[str, object]:
    """Run ``compute(task, settings) -> (name, seconds, error)`` for every task of ``todo``.

    One process (``workers = 1``, PySCF's threads) or a spawn-started pool with one thread per
    worker; ``compute`` must be a module-level function (pickled into the workers). A failed
    structure is logged and recorded, the others go on; Ctrl-C stops the pool at once.
    ``settings.out / .partial`` is removed afterwards if empty. Shared by the periodic
    spin-orbit generator (``tools/soc_crystal_data``).

    Returns:
        {"computed": [names], "skipped": list(skipped), "failed": {name: message}, "seconds": {name: s}}.
    """
    summary: Dict[str, object] = {"computed": [], "skipped": list(skipped), "failed": {}, "seconds": {}}
    if not todo:
        return summary
    bar = progress_bar(len(todo), description="structures", unit="structure")

    def record(name: str, seconds: float, error: str) -> None:
        summary["seconds"][name] = seconds
        if error:
            summary["failed"][name] = error
            logger.error("%s: FAILED after %.1f s: %s", name, seconds, error)
        else:
            summary["computed"].append(name)
            logger.info("%s: done in %.1f s", name, seconds)
        if bar is not None:
            bar.update(1)

    workers = max(1, min(int(workers), len(todo)))
    t0 = time.perf_counter()
    try:
        if workers == 1:
            for task in todo:
                record(*compute(task, settings))
        else:
            ctx = multiprocessing.get_context("spawn")  # no fork after OpenMP was used in this process
            with _single_thread_env():
                pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                                              initializer=_init_worker)
                try:
                    futures = [pool.submit(compute, task, settings) for task in todo]
                    for fut in concurrent.futures.as_completed(futures):
                        record(*fut.result())
                except BaseException:  # Ctrl-C or a broken pool: stop now, do not finish the queue
                    _terminate_pool(pool)
                    raise
                pool.shutdown(wait=True)
    finally:
        if bar is not None:
            bar.close()
        with contextlib.suppress(OSError):
            (settings.out / PARTIAL_DIRNAME).rmdir()  # only if empty
    logger.info("computed %d, skipped %d, failed %d structures in %.1f s (%d workers) -> %s",
                len(summary["computed"]), len(skipped), len(summary["failed"]),
                time.perf_counter() - t0, workers, settings.out / "dft")
    return summary
