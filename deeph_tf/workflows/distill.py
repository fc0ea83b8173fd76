"""Teacher-student distillation: label structures with a frozen teacher, train the student on them.

Input section ``distillation`` (see the schema)::

    "distillation": {"teacher": "teacher_model", "systems": "unlabeled/", "cache_dir": "teacher_labels",
                     "dft_weight": 0.5}

1. :func:`label_with_teacher` runs the teacher (any frozen model of this project) on every
   structure of ``systems`` and caches its predictions as ordinary data in ``cache_dir``:
   - a Hamiltonian-type teacher: unified-format folders ``cache_dir/teacher/<id>/`` (POSCAR,
     info.json, overlap.h5 copied; ``<target>.h5`` = the teacher's blocks, Hermitian); their
     structure ids are ``teacher/<id>``, distinct from the DFT structures' ids;
   - a force-field teacher: a deepmd/npy system ``cache_dir/deepmd`` (energies, forces, virials).
   ``cache_dir/labels.json`` records the teacher and the structures (sizes, modification
   times); an unchanged cache is reused, a changed one rebuilt. The cache is written under a
   temporary name and renamed, so an interrupted labelling never leaves a cache that reads as
   complete.
2. ``dtrain`` (:mod:`deeph_tf.workflows.dtrain`) trains on those labels (training subset only: never validated or tested on),
   mixed with the DFT-labelled ``training_data`` systems; ``dft_weight`` is the share of batches
   drawn from the DFT systems (DeePMD's ``sys_probs``).
3. At the end, :func:`distillation_comparisons` scores the student against the teacher and
   against DFT (and the teacher against DFT) on the validation structures, for the report.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from deeph_tf.artifacts.frozen import is_frozen_model, read_frozen_metadata
from deeph_tf.atomic_io import atomic_folder
from deeph_tf.data.discovery import discover_systems
from deeph_tf.data.ff_graphs import load_labeled_systems
from deeph_tf.data.labeled import LabeledFrame, write_deepmd_npy
from deeph_tf.data.structure import load_structure, write_structure_folder
from deeph_tf.infer.force_field_eval import EnergyResults
from deeph_tf.infer.metrics import DatasetErrors, structure_errors
from deeph_tf.infer.predict import Predictor
from deeph_tf.progress import track

logger = logging.getLogger(__name__)

LABELS_NAME = "labels.json"
FORMAT = "deeph_tf.teacher_labels/1"


def _teacher_target(teacher_path) -> str:
    if not is_frozen_model(teacher_path):
        raise ValueError(f"distillation.teacher: {teacher_path} is not a frozen model (no saved_model.pb); make one with dfreeze")
    return read_frozen_metadata(teacher_path).get("input", {}).get("model", {}).get("target", "hamiltonian")


def _stamp(paths) -> List[list]:
    out = []
    for path in sorted(str(p) for p in paths):
        try:
            stat = os.stat(path)
            out.append([path, stat.st_size, stat.st_mtime_ns])
        except OSError:
            out.append([path, None, None])
    return out


def _fingerprint(config: Mapping, sources: List[str]) -> str:
    section = config["distillation"]
    teacher = Path(section["teacher"])
    payload = {
        "format": FORMAT,
        "teacher": _stamp([teacher / "saved_model.pb", teacher / "metadata.json"]
                          + sorted(str(p) for p in (teacher / "variables").glob("*"))),
        "sources": _stamp(sources),
        "fmt": section.get("fmt"),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def cached_labels(config: Mapping) -> Tuple[str, Optional[str]]:
    """(systems, fmt) of the cached teacher labels (as ``training_data`` would name them)."""
    section = config["distillation"]
    cache = Path(section["cache_dir"])
    if _teacher_target(section["teacher"]) == "energy_force":
        return str(cache / "deepmd"), "deepmd/npy"
    return str(cache), "deeph"


def _source_files(config: Mapping, energy: bool) -> List[str]:
    section = config["distillation"]
    depth = config["training"]["dataset"]["data_dir_depth"]
    if not energy:
        return [str(folder / name) for system in discover_systems(section["systems"], depth)
                for _, folder in system.structures for name in ("POSCAR", "info.json", "overlap.h5")]
    paths = section["systems"] if isinstance(section["systems"], list) else [section["systems"]]
    files = []
    for path in map(Path, paths):
        files += [str(p) for p in path.rglob("*") if p.is_file()] if path.is_dir() else [str(path)]
    return files


def label_with_teacher(config: Mapping) -> Tuple[str, Optional[str]]:
    """Label ``distillation.systems`` with the teacher (or reuse the cache); returns (systems, fmt).

    Raises:
        ValueError: the teacher is not a frozen model, or its target differs from model.target.
    """
    section = config["distillation"]
    target = config["model"]["target"]
    teacher_target = _teacher_target(section["teacher"])
    if teacher_target != target:
        raise ValueError(f"distillation.teacher {section['teacher']} predicts {teacher_target!r} but model.target is {target!r}")
    energy = target == "energy_force"
    cache = Path(section["cache_dir"])
    systems, fmt = cached_labels(config)
    fingerprint = _fingerprint(config, _source_files(config, energy))
    labels_file = cache / LABELS_NAME
    try:
        previous = json.loads(labels_file.read_text())
    except (OSError, json.JSONDecodeError):
        previous = {}
    if previous.get("fingerprint") == fingerprint and (cache / ("deepmd" if energy else "teacher")).exists():
        logger.info("distillation: reusing the teacher's labels of %d structures in %s", previous.get("structures", 0), cache)
        return systems, fmt

    teacher = Predictor.load(section["teacher"])
    with atomic_folder(cache) as staging:
        if energy:
            n = _label_frames(config, teacher, staging / "deepmd")
        else:
            n = _label_folders(config, teacher, staging / "teacher")
        (staging / LABELS_NAME).write_text(json.dumps({
            "format": FORMAT, "fingerprint": fingerprint, "teacher": str(section["teacher"]),
            "target": target, "structures": n, "systems": section["systems"],
        }, indent=1) + "\n")
    logger.info("distillation: the teacher %s labelled %d structures into %s", section["teacher"], n, cache)
    return systems, fmt


def _label_folders(config: Mapping, teacher, out_dir: Path) -> int:
    """Unified-format copies of the structure folders with the teacher's blocks as the target."""
    target = config["model"]["target"]
    depth = config["training"]["dataset"]["data_dir_depth"]
    items = [(sid, folder) for system in discover_systems(config["distillation"]["systems"], depth) for sid, folder in system.structures]
    for sid, folder in track(items, description="teacher labels"):
        structure = load_structure(folder)
        if not structure.has_blocks("overlap"):
            raise ValueError(f"{folder}: no overlap.h5; a Hamiltonian teacher needs the overlap's atom pairs")
        _, predicted = teacher.predict_structure(structure, score=False)
        blocks = {"overlap": structure.read_blocks("overlap"), target: predicted}
        info = dict(structure.info)
        info["labels"] = f"teacher {config['distillation']['teacher']}"
        write_structure_folder(out_dir / sid, structure.poscar, info, blocks)
    return len(items)


def _label_frames(config: Mapping, teacher, out_dir: Path) -> int:
    """A deepmd/npy system of the frames with the teacher's energies, forces (and virials if periodic)."""
    section = config["distillation"]
    depth = config["training"]["dataset"]["data_dir_depth"]
    frames = [frame for system in load_labeled_systems(section["systems"], section.get("fmt"), depth, require_labels=False)
              for _, frame in system]
    labelled = []
    for frame in track(frames, description="teacher labels"):
        out = teacher.predict_frame(frame)
        labelled.append(LabeledFrame(name=frame.name, species=frame.species, positions=frame.positions, lattice=frame.lattice,
                                     pbc=frame.pbc, energy=float(out["energy"]), forces=out["forces"],
                                     virial=out["virial"] if all(frame.pbc) else None))
    write_deepmd_npy(labelled, out_dir)
    return len(labelled)


# --- comparisons for the report -----------------------------------------------------------------

def _validation_sources(config: Mapping, graph_set, subset: str) -> Dict[str, object]:
    """id -> structure folder (operators) or LabeledFrame (force field) of the subset's structures."""
    ids = {sid for shard in graph_set.shards(subset) for sid in shard["structures"]}
    training = config["training"]
    depth = training["dataset"]["data_dir_depth"]
    sections = [training["training_data"]] + ([training["validation_data"]] if training.get("validation_data") else [])
    found: Dict[str, object] = {}
    for data in sections:
        if config["model"]["target"] == "energy_force":
            for system in load_labeled_systems(data["systems"], data.get("fmt"), depth):
                found.update({sid: frame for sid, frame in system if sid in ids})
        else:
            for system in discover_systems(data["systems"], depth):
                found.update({sid: folder for sid, folder in system.structures if sid in ids})
    return found


def _energy_errors(predicted: List[dict], reference: List[dict], frames) -> Dict[str, float]:
    """mae/rmse of energy per atom (eV/atom) and force components (eV/A), dtest's statistics."""
    results = EnergyResults(
        names=[f.name for f in frames], natoms=[f.n_atoms for f in frames],
        energy_ref=[float(r["energy"]) for r in reference], energy_pred=[float(p["energy"]) for p in predicted],
        forces_ref=[np.asarray(r["forces"]) for r in reference], forces_pred=[np.asarray(p["forces"]) for p in predicted],
        virial_ref=[None] * len(frames), virial_pred=[None] * len(frames),
    )
    s = results.summary()
    return {"mae_e": s["energy_mae_per_atom"], "rmse_e": s["energy_rmse_per_atom"],
            "mae_f": s["force_mae"], "rmse_f": s["force_rmse"]}


def distillation_comparisons(config: Mapping, model, graph_set, subset: str) -> List[dict]:
    """Student vs teacher, student vs DFT and teacher vs DFT on the ``subset`` structures."""
    target = config["model"]["target"]
    teacher = Predictor.load(config["distillation"]["teacher"])
    student = Predictor.from_model(model, {"input": config, "model_config": model.get_config(),
                                           "layout": graph_set.index["layout"]}, "student")
    sources = _validation_sources(config, graph_set, subset)
    if not sources:
        return []
    names = ("student vs teacher", "student vs DFT", "teacher vs DFT")
    if target == "energy_force":
        frames = list(sources.values())
        dft = [{"energy": f.energy, "forces": f.forces} for f in frames]
        s_out = [student.predict_frame(f) for f in frames]
        t_out = [teacher.predict_frame(f) for f in frames]
        pairs = ((s_out, t_out), (s_out, dft), (t_out, dft))
        units = {"mae_e": "eV/atom", "rmse_e": "eV/atom", "mae_f": "eV/A", "rmse_f": "eV/A"}
        return [{"name": name, "subset": subset, "structures": len(frames), "metrics": _energy_errors(p, r, frames), "units": units}
                for name, (p, r) in zip(names, pairs)]

    gauge = target == "hamiltonian"
    errors = [DatasetErrors() for _ in names]
    for sid, folder in sorted(sources.items()):
        structure = load_structure(folder)
        overlap = structure.read_blocks("overlap")
        reference = structure.read_blocks(target)
        _, s_pred = student.predict_structure(structure, score=False)
        _, t_pred = teacher.predict_structure(structure, score=False)
        for sums, (pred, ref) in zip(errors, ((s_pred, t_pred), (s_pred, reference), (t_pred, reference))):
            sums.add(structure_errors(pred, ref, overlap, structure, name=sid, operator=target, gauge=gauge))
    out = []
    unit = "eV" if gauge else "1"
    for name, sums in zip(names, errors):
        summary = sums.summary()
        metrics = {"mae": summary["mae_raw_meV"] / 1000.0}
        if gauge:
            metrics["mae_gauge"] = summary["mae_gauge_meV"] / 1000.0
        out.append({"name": name, "subset": subset, "structures": summary["n_structures"], "metrics": metrics,
                    "units": {k: unit for k in metrics}})
    return out
