#!/usr/bin/env python
"""A multi-element pretraining set (molecules and crystals, CP2K) for a small "universal" DeepH model.

Command (from the repository root; resumable: finished folders are skipped, so rerunning the
same command continues an interrupted run)::

    python tools/make_universal_dataset.py --out DIR [--molecule-structures N] [--crystal-structures M]
        [--quick] [--mpi-procs 1] [--workers 1] [--only pretrain|heldout] [--dry-run]

writes ``DIR/pretrain/dft/<name>-<k:06d>/``, ``DIR/heldout/dft/<name>-<k:06d>/`` (DeepH unified
format, made by ``tools/cp2k_data`` exactly as ``tools/make_cp2k_dataset.py`` makes them) and
``DIR/manifest.json`` (every molecule and crystal with its split, seed, structure count, and the
excluded molecules with the reason). Check a finished part with
``python tools/make_cp2k_dataset.py --validate DIR/pretrain`` (or any structure folder).

**Settings** are those of the shipped graphene example (``examples/graphene``): CP2K PBE, GTH-PBE
pseudopotentials, SZV-MOLOPT-SR-GTH, 300 Ry density cutoff (REL_CUTOFF 50), Fermi-Dirac 300 K,
Monkhorst-Pack spacing 0.4 1/A, blocks of atom pairs within 7 A, Gaussian displacements of
sigma = 0.05 A per Cartesian coordinate. One model pretrained here therefore sees the same basis,
functional and graph range as the graphene data it is later fine-tuned on.

**Composition** (elements H, B, C, N, O, F, Si, P, S, Cl only):

- *Molecules*: every closed-shell molecule of ASE's G2 set (even electron count, zero magnetic
  moments; single atoms left out) made only of these elements with at most 10 atoms (CP2K cost),
  each in a cubic box with no atom within 8 A (block radius + 1 A) of a periodic image, so all
  its blocks are intra-molecule blocks with R = 0 (computed at Gamma).
  ``--molecule-structures`` displaced structures each (default 3).
- *Crystals* (pretraining): hBN (monolayer, 2x2x1 supercell, 8 atoms), Si (diamond, 2x2x1 of the
  fcc primitive cell, 8 atoms), cubic SiC (2x1x1, 4 atoms), cubic BN (2x1x1, 4 atoms) and BP
  (2x2x1, 8 atoms), zincblende (:data:`PRETRAIN_CRYSTALS`: the largest cells whose structure
  takes <= ~40 s of CP2K on one core), ``--crystal-structures`` displaced structures each
  (default 6). No pure-carbon crystal (no diamond, no graphene):
  graphene is the held-out target, so C-C blocks come only from molecules, and the periodic
  sp2 environment from hBN (the isoelectronic, isostructural B-N analogue).
- *Held out* (``DIR/heldout``): the molecules of :data:`HELDOUT_MOLECULES` (3 structures each),
  chosen to cover Cl, F, S, N + O and Si, with formulas that no pretraining molecule has (their
  isomers are removed from pretraining too, so a held-out formula is never seen), and
  graphene 2x2x1 with the settings of ``examples/graphene`` but seeds 5000.. (the example uses
  0..39), 4 structures: the fine-tuning target.

**The 7 A block radius and the bulk crystals.** The radius is the graphene example's (and so the
fine-tuned model's graph range); CP2K's own blocks reach 12-13 A. For graphene, hBN and the
molecules the written blocks reproduce CP2K's bands to < 1 meV (molecules: images >= 8 A
away), but in the 3D crystals with the diffuse Si and P orbitals the dropped 7-13 A blocks
matter: bands of the written blocks are off CP2K's by 0.1-0.3 eV within E_F +- 2 eV (Si
2x2x1 0.32 eV, BP 0.12 eV; SiC and cBN have no band within the window, occupied 22 and 5 meV).
The blocks themselves are exact CP2K matrix elements (all blocks reproduce CP2K's bands to
1e-6 eV: ``band_errors_eV.all_blocks`` in each generator.json), so they are valid training
targets, but ``--validate`` of DIR/pretrain needs ``--max-window-error 0.5``; DIR/heldout
validates with the default 5 meV.

``--workers W`` computes W structures at once (threads driving CP2K subprocesses), for machines
with many cores. On the 2-core VM of this project it gains nothing: two structures at once ran
2-3x slower each, and one structure on 2 MPI ranks was no faster than on one (CP2K's grids
here are memory-bound), so the set was made with the defaults. Progress is logged as
structures finish, so with W > 1 the log lines may come out of order.

Cost (1 MPI rank, 2 cores shared): molecules 20-125 s (the box, 10-14 A, sets the grid cost),
crystals 27-38 s per structure.

Why: the molecules give many chemical environments of every element pair at little cost
(minimal basis, Gamma only); the crystals give periodic images and bulk bonding of B, N, Si, P, C;
leaving every pure-carbon crystal out makes graphene a real transfer test.

**Seeds**: every molecule or crystal has its own base seed, 1000 * (SHA-256 of its name mod 10^6)
+ 10^6 (:func:`base_seed`; graphene: 5000), and structure k uses base + k, so a structure does not
depend on the order of the work, on N or M, or on ``--quick``. Folder names: the G2 name (or the
crystal's name) and k, unique over the whole set (checked), which makes the structure ids in
``DIR/pretrain/dft`` unique.

**Order**: the held-out set first, then structure 0 of every pretraining molecule and crystal,
then structure 1 of each, and so on, so a partial run is already a usable (smaller) set.
``--quick``: a tiny subset (4 pretraining molecules and 2 crystals, 1 structure each, and 2
held-out molecules, 1 structure each) for tests. Progress (structure i of n, seconds each, an
estimate of the time left) is logged.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cp2k_data.generate import generate  # noqa: E402
from cp2k_data.materials import (MOLECULE_PREFIX, closed_shell_problem, displaced_structure,  # noqa: E402
                                 folder_stem)
from cp2k_data.plan import Settings, plan  # noqa: E402

logger = logging.getLogger("make_universal_dataset")

#: The elements of the set.
ELEMENTS: Tuple[str, ...] = ("H", "B", "C", "N", "O", "F", "Si", "P", "S", "Cl")
#: Largest molecule (atoms).
MAX_MOLECULE_ATOMS = 10
#: Held-out G2 molecules: Cl, F, S, N + O, Si; each formula (and its isomers) absent from pretraining.
HELDOUT_MOLECULES: Tuple[str, ...] = ("CH3CH2Cl", "H2CF2", "CH3SH", "CH3CONH2", "CH3SiH3")
#: Pretraining crystals: name -> supercell (each structure <= ~60 s of CP2K on one core).
#: Measured (1 rank, shared machine): hBN 2x2x1 28 s, Si 2x2x1 29 s, SiC 2x1x1 27 s (2x2x1: 84 s),
#: cBN 2x1x1 38 s (2x2x2: 163 s), BP 2x2x1 36 s.
PRETRAIN_CRYSTALS: Dict[str, Tuple[int, int, int]] = {
    "hBN": (2, 2, 1), "Si": (2, 2, 1), "SiC": (2, 1, 1), "cBN": (2, 1, 1), "BP": (2, 2, 1)}
#: The held-out crystal: graphene as examples/graphene (2x2x1), seeds HELDOUT_GRAPHENE_SEED + k.
HELDOUT_CRYSTAL = "graphene"
HELDOUT_CRYSTAL_SUPERCELL = (2, 2, 1)
HELDOUT_GRAPHENE_SEED = 5000
HELDOUT_GRAPHENE_STRUCTURES = 4
HELDOUT_MOLECULE_STRUCTURES = 3
#: The settings of examples/graphene (tools/make_cp2k_dataset.py --block-radius 7.0 --kspacing 0.4).
COMMON = dict(sigma=0.05, basis="SZV-MOLOPT-SR-GTH", potential="GTH-PBE", xc="PBE", cutoff=300.0,
              rel_cutoff=50.0, kspacing=0.4, eps_default=1e-12, temperature=300.0, block_radius=7.0, band_points=8)
#: --quick: the smallest pretraining molecules, the cheapest crystals, two held-out molecules.
QUICK_MOLECULES, QUICK_CRYSTALS, QUICK_HELDOUT = 4, ("Si", "SiC"), 2
QUICK_CRYSTAL_SUPERCELL = (1, 1, 1)
#: Retries of a failed CP2K run (CP2K 2023.1 once aborted with SIGABRT on a structure that then ran
#: fine twice: transient, probably memory pressure from other work on the machine).
RETRIES = 2


@dataclass(frozen=True)
class Entry:
    """One molecule or crystal of the set: its ``--material``, supercell, split, base seed and count."""

    material: str
    supercell: Tuple[int, int, int]
    split: str  # "pretrain" or "heldout"
    seed: int
    n_structures: int

    @property
    def is_molecule(self) -> bool:
        return self.material.startswith(MOLECULE_PREFIX)

    @property
    def stem(self) -> str:
        return folder_stem(self.material)


@dataclass(frozen=True)
class Job:
    entry: Entry
    index: int


def base_seed(name: str) -> int:
    """The base seed of a molecule or crystal: 1000 * (SHA-256 of ``name`` mod 10^6) + 10^6."""
    return 1000 * (int(hashlib.sha256(name.encode()).hexdigest(), 16) % 1_000_000) + 1_000_000


def _formula(g2_name: str) -> str:
    from ase.build import molecule

    return molecule(g2_name).get_chemical_formula()


def eligible_molecules() -> Tuple[List[str], Dict[str, str]]:
    """(closed-shell G2 molecules of :data:`ELEMENTS` with 2..MAX_MOLECULE_ATOMS atoms, in G2 order;
    every other G2 entry -> why it is left out)."""
    from ase.build import molecule
    from ase.collections import g2

    keep, excluded = [], {}
    for name in g2.names:
        atoms = molecule(name)
        extra = sorted(set(atoms.get_chemical_symbols()) - set(ELEMENTS))
        problem = closed_shell_problem(name)
        if extra:
            excluded[name] = f"elements {' '.join(extra)} not in the set"
        elif len(atoms) > MAX_MOLECULE_ATOMS:
            excluded[name] = f"{len(atoms)} atoms > {MAX_MOLECULE_ATOMS}"
        elif problem:
            excluded[name] = problem
        else:
            keep.append(name)
    return keep, excluded


def composition() -> Dict[str, object]:
    """The molecules and crystals of each split (no counts): ``pretrain_molecules``,
    ``heldout_molecules``, ``isomers_excluded`` (name -> the held-out molecule of that formula),
    ``excluded`` (name -> reason), ``pretrain_crystals``, ``heldout_crystals``."""
    eligible, excluded = eligible_molecules()
    missing = [m for m in HELDOUT_MOLECULES if m not in eligible]
    if missing:
        raise ValueError(f"held-out molecules not eligible: {missing}")
    heldout_formula = {_formula(m): m for m in HELDOUT_MOLECULES}
    pretrain, isomers = [], {}
    for name in eligible:
        if name in HELDOUT_MOLECULES:
            continue
        if _formula(name) in heldout_formula:
            isomers[name] = heldout_formula[_formula(name)]
        else:
            pretrain.append(name)
    return {"pretrain_molecules": pretrain, "heldout_molecules": list(HELDOUT_MOLECULES),
            "isomers_excluded": isomers, "excluded": excluded,
            "pretrain_crystals": dict(PRETRAIN_CRYSTALS), "heldout_crystals": {HELDOUT_CRYSTAL: HELDOUT_CRYSTAL_SUPERCELL}}


def entries(molecule_structures: int = 3, crystal_structures: int = 6, quick: bool = False,
            only: Optional[str] = None) -> List[Entry]:
    """Every molecule and crystal of the set (held-out first), with its seed and structure count."""
    comp = composition()
    pre_mol: List[str] = comp["pretrain_molecules"]
    held_mol: List[str] = comp["heldout_molecules"]
    crystals = dict(PRETRAIN_CRYSTALS)
    n_mol, n_cry, n_held = molecule_structures, crystal_structures, HELDOUT_MOLECULE_STRUCTURES
    if quick:
        from ase.build import molecule

        pre_mol = sorted(pre_mol, key=lambda m: (len(molecule(m)), m))[:QUICK_MOLECULES]
        held_mol = held_mol[:QUICK_HELDOUT]
        crystals = {name: QUICK_CRYSTAL_SUPERCELL for name in QUICK_CRYSTALS}
        n_mol = n_cry = n_held = 1
    out: List[Entry] = []
    if only in (None, "heldout"):
        out += [Entry(MOLECULE_PREFIX + m, (1, 1, 1), "heldout", base_seed(m), n_held) for m in held_mol]
        if not quick:
            out.append(Entry(HELDOUT_CRYSTAL, HELDOUT_CRYSTAL_SUPERCELL, "heldout", HELDOUT_GRAPHENE_SEED,
                             HELDOUT_GRAPHENE_STRUCTURES))
    if only in (None, "pretrain"):
        out += [Entry(MOLECULE_PREFIX + m, (1, 1, 1), "pretrain", base_seed(m), n_mol) for m in pre_mol]
        out += [Entry(name, cell, "pretrain", base_seed(name), n_cry) for name, cell in crystals.items()]
    check_entries(out)
    return out


def check_entries(items: Sequence[Entry]) -> None:
    """Unique folder stems and seeds over the whole set, no pure-carbon crystal in pretraining,
    no held-out formula among the pretraining molecules (ValueError otherwise)."""
    stems = Counter(e.stem for e in items)
    seeds = Counter(e.seed for e in items)
    if max(stems.values(), default=1) > 1:
        raise ValueError(f"folder names collide: {[s for s, n in stems.items() if n > 1]}")
    if max(seeds.values(), default=1) > 1:
        raise ValueError(f"seeds collide: {[s for s, n in seeds.items() if n > 1]}")
    for e in items:
        if e.split == "pretrain" and not e.is_molecule:
            species = set(displaced_structure(e.material, (1, 1, 1), 0.0, 0).species)
            if species == {"C"}:
                raise ValueError(f"{e.material}: no pure-carbon crystal in pretraining (graphene is held out)")
    held = {_formula(e.material[len(MOLECULE_PREFIX):]) for e in items if e.split == "heldout" and e.is_molecule}
    clash = [e.material for e in items if e.split == "pretrain" and e.is_molecule
             and _formula(e.material[len(MOLECULE_PREFIX):]) in held]
    if clash:
        raise ValueError(f"pretraining molecules with a held-out formula: {clash}")


def jobs(items: Sequence[Entry]) -> List[Job]:
    """The held-out structures first, then round k = 0, 1, ... over every pretraining entry."""
    held = [Job(e, k) for e in items if e.split == "heldout" for k in range(e.n_structures)]
    pre = [e for e in items if e.split == "pretrain"]
    rounds = [Job(e, k) for k in range(max((e.n_structures for e in pre), default=0))
              for e in pre if k < e.n_structures]
    return held + rounds


def settings_of(entry: Entry, out: Path, mpi_procs: int) -> Settings:
    return Settings(out=out / entry.split, material=entry.material, supercell=tuple(entry.supercell),
                    seed=entry.seed, mpi_procs=mpi_procs, **COMMON)


def manifest(items: Sequence[Entry], args: argparse.Namespace) -> Dict[str, object]:
    comp = composition()

    def describe(e: Entry) -> Dict[str, object]:
        d: Dict[str, object] = {"material": e.material, "folders": f"{e.split}/dft/{e.stem}-000000.."
                                f"{e.stem}-{e.n_structures - 1:06d}", "seed": e.seed,
                                "seeds": f"{e.seed}..{e.seed + e.n_structures - 1}", "n_structures": e.n_structures}
        if e.is_molecule:
            s = displaced_structure(e.material, (1, 1, 1), COMMON["sigma"], e.seed, COMMON["block_radius"])
            d.update(g2_name=e.material[len(MOLECULE_PREFIX):], formula=_formula(e.material[len(MOLECULE_PREFIX):]),
                     n_atoms=len(s.species), box_A=float(s.lattice[0, 0]))
        else:
            d.update(supercell=list(e.supercell),
                     n_atoms=len(displaced_structure(e.material, e.supercell, 0.0, 0).species))
        return d

    return {
        "command": "python tools/make_universal_dataset.py " + " ".join(args.argv),
        "elements": list(ELEMENTS),
        "settings": COMMON | {"note": "as examples/graphene (tools/make_cp2k_dataset.py --block-radius 7.0 "
                                      "--kspacing 0.4); structure k of an entry uses seed + k"},
        "quick": bool(args.quick),
        "pretrain": {"molecules": [describe(e) for e in items if e.split == "pretrain" and e.is_molecule],
                     "crystals": [describe(e) for e in items if e.split == "pretrain" and not e.is_molecule]},
        "heldout": {"molecules": [describe(e) for e in items if e.split == "heldout" and e.is_molecule],
                    "crystals": [describe(e) for e in items if e.split == "heldout" and not e.is_molecule]},
        "heldout_names": list(HELDOUT_MOLECULES) + [HELDOUT_CRYSTAL],
        "isomers_excluded_from_pretraining": comp["isomers_excluded"],
        "g2_excluded": comp["excluded"],
    }


def run_job(n: int, total: int, job: Job, out: Path, mpi_procs: int) -> Tuple[str, Dict[str, object]]:
    """Compute (or skip) one structure, retrying a failed CP2K run up to ``RETRIES`` times.

    Returns:
        ("<split>/<folder name>", the summary of :func:`cp2k_data.generate.generate`).
    """
    settings = settings_of(job.entry, out, mpi_procs)
    task = plan(settings, 1, job.index)[0]
    where = f"{job.entry.split}/{task.name}"
    for attempt in range(1 + RETRIES):
        try:
            summary = generate([task], settings)
        except ValueError as exc:  # e.g. an existing folder made with other settings: no retry
            return where, {"failed": {task.name: str(exc)}, "seconds": {}, "skipped": [], "computed": []}
        if not summary["failed"] or attempt == RETRIES:
            break
        logger.warning("[%d/%d] %s failed (attempt %d of %d), retrying", n, total, where, attempt + 1, 1 + RETRIES)
    return where, summary


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Generate the multi-element (H B C N O F Si P S Cl) molecule + "
                                            "crystal CP2K pretraining set and its held-out set (resumable).")
    p.add_argument("--out", type=Path, required=True, help="writes OUT/pretrain/dft, OUT/heldout/dft, OUT/manifest.json")
    p.add_argument("--molecule-structures", type=int, default=3, metavar="N",
                   help="displaced structures per pretraining molecule (default 3)")
    p.add_argument("--crystal-structures", type=int, default=6, metavar="M",
                   help="displaced structures per pretraining crystal (default 6)")
    p.add_argument("--quick", action="store_true", help="a tiny subset (tests)")
    p.add_argument("--mpi-procs", type=int, default=1, help="MPI ranks per CP2K run (default 1)")
    p.add_argument("--workers", type=int, default=1,
                   help="structures computed at once, each CP2K with --mpi-procs ranks (default 1)")
    p.add_argument("--only", choices=("pretrain", "heldout"), help="generate one split only")
    p.add_argument("--dry-run", action="store_true", help="write manifest.json and list the work; run no CP2K")
    p.add_argument("-v", "--log-level", default="INFO", help="logging level (default INFO)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logger.setLevel(args.log_level.upper())
    if args.molecule_structures < 0 or args.crystal_structures < 0 or args.workers < 1:
        logger.error("error: structure counts must be >= 0 and --workers >= 1")
        return 2
    items = entries(args.molecule_structures, args.crystal_structures, args.quick, args.only)
    todo = jobs(items)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "manifest.json").write_text(json.dumps(manifest(items, args), indent=1) + "\n")
    n_mol = sum(e.is_molecule for e in items)
    logger.info("%d molecules and %d crystals, %d structures (held out: %s) -> %s", n_mol, len(items) - n_mol,
                len(todo), ", ".join(e.material for e in items if e.split == "heldout"), args.out)
    if args.dry_run:
        for n, job in enumerate(todo, 1):
            logger.info("[%d/%d] %s/%s-%06d (%s, seed %d)", n, len(todo), job.entry.split, job.entry.stem,
                        job.index, job.entry.material, job.entry.seed + job.index)
        return 0
    failed: List[str] = []
    computed_seconds: List[float] = []
    t0 = time.perf_counter()
    workers = max(1, min(int(args.workers), len(todo) or 1))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:  # CP2K runs as a subprocess
        futures = [pool.submit(run_job, n, len(todo), job, args.out, args.mpi_procs) for n, job in enumerate(todo, 1)]
        try:
            for done, fut in enumerate(concurrent.futures.as_completed(futures), 1):
                where, summary = fut.result()
                name = next(iter(summary["failed"]), None)
                if summary["failed"]:
                    failed.append(where)
                    logger.error("[%d/%d] %s FAILED: %s", done, len(todo), where, summary["failed"][name])
                elif summary["skipped"]:
                    logger.info("[%d/%d] %s: already complete, skipped", done, len(todo), where)
                else:
                    seconds = next(iter(summary["seconds"].values()))
                    computed_seconds.append(seconds)
                    left = (len(todo) - done) * sum(computed_seconds) / len(computed_seconds) / workers
                    logger.info("[%d/%d] %s: %.1f s (left: about %.1f h at %.0f s per structure, %d at once)",
                                done, len(todo), where, seconds, left / 3600,
                                sum(computed_seconds) / len(computed_seconds), workers)
        except BaseException:  # Ctrl-C: run no queued structure (the running CP2K ones finish)
            for fut in futures:
                fut.cancel()
            raise
    logger.info("done: %d structures, %d computed in %.1f s, %d failed%s", len(todo), len(computed_seconds),
                time.perf_counter() - t0, len(failed), (": " + ", ".join(failed)) if failed else "")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
