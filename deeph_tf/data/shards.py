"""Graph shards: TFRecord files of structure graphs plus a JSON index (DeepH's saved graphs).

Layout of a graph folder::

    <graph_dir>/index.json                 counts, orbital layout, dtype, fingerprints, split
    <graph_dir>/split.json                 the split used: {"train": [...], "validate": [...], "test": [...]}
    <graph_dir>/shards/<subset>-s<system>-<fingerprint>.tfrecord

Guarantees:
- Incremental: a shard's name is the fingerprint of what it was built from (structure ids,
  sizes and modification times of their files, the orbital layout, targets, dtype, tolerance,
  format version). An unchanged shard is reused, not rebuilt.
- Atomic: shards are written to temporary names and renamed; the index is written last. An
  interrupted or failed build leaves the previous index and every shard it names untouched,
  and a half-written file never carries a name the index could point to.
- Parallel: structures are turned into graphs in worker processes (no TensorFlow there).
- Bad structures: with ``bad_structures="fail"`` the first error stops the build (naming the
  structure and file); with ``"skip"`` they are left out, counted and listed in the index.
"""
from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from deeph_tf._version import __version__
from deeph_tf.atomic_io import atomic_path, atomic_write_text
from deeph_tf.data.discovery import System, discover_systems
from deeph_tf.data.errors import DataFormatError
from deeph_tf.data.graph import build_graph, graph_entry_counts, layout_from_structures
from deeph_tf.data.layout import OrbitalLayout
from deeph_tf.data.records import encode_example
from deeph_tf.data.split import SUBSETS, make_split, write_split
from deeph_tf.data.structure import load_structure

logger = logging.getLogger(__name__)

FORMAT = "deeph_tf.graphs/1"
#: Force-field graph sets (:mod:`deeph_tf.data.ff_graphs`) share the folder layout.
FF_FORMAT = "deeph_tf.ff_graphs/1"
INDEX_NAME = "index.json"
SHARD_FOLDER = "shards"


class GraphBuildError(ValueError):
    """A structure could not be turned into a graph and the policy is "fail"."""


@dataclass(frozen=True)
class GraphBuildOptions:
    """What a graph set is built from (``training.dataset`` of the input, see the schema)."""

    targets: Tuple[str, ...] = ("hamiltonian",)
    dtype: str = "float32"
    hermiticity_tolerance: float = 1e-4
    structures_per_shard: int = 256
    num_workers: int = 0
    bad_structures: str = "fail"
    common_orbital_types: Optional[object] = None
    elements: Optional[Tuple[str, ...]] = None
    data_dir_depth: Optional[int] = 0
    split: Optional[Mapping] = None

    @classmethod
    def from_config(cls, dataset: Mapping) -> "GraphBuildOptions":
        """From the normalized ``training.dataset`` section."""
        names = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in dataset.items() if k in names}
        if "targets" in values:
            values["targets"] = tuple(values["targets"])
        if values.get("elements") is not None:
            values["elements"] = tuple(values["elements"])
        return cls(**values)

    @property
    def operators(self) -> Tuple[str, ...]:
        """Stored operators: overlap first, then the targets."""
        return ("overlap",) + tuple(t for t in self.targets if t != "overlap")


def _file_stamps(folder: Path, operators: Sequence[str]) -> List[list]:
    names = ["info.json", "POSCAR"] + [f"{op}.h5" for op in operators]
    stamps = []
    for name in names:
        try:
            stat = (folder / name).stat()
            stamps.append([name, stat.st_size, stat.st_mtime_ns])
        except OSError:
            stamps.append([name, None, None])
    return stamps


def _fingerprint(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass
class _ShardPlan:
    subset: str
    system: int
    structures: List[Tuple[str, str]]  # (id, folder)
    fingerprint: str
    entry: Optional[dict] = None  # index entry once built or reused

    @property
    def file_name(self) -> str:
        return f"{self.subset}-s{self.system}-{self.fingerprint[:20]}.tfrecord"


# --- worker side (no TensorFlow) ----------------------------------------------------------------
_WORKER: Dict[str, object] = {}


def _init_worker(layout_dict: dict, options: dict) -> None:
    _WORKER["layout"] = OrbitalLayout.from_dict(layout_dict)
    _WORKER["options"] = options


def _graph_record(task: Tuple[str, str]):
    """(id, folder) -> (id, serialized record, n_atoms, n_edges, total, masked) or (id, None, error)."""
    sid, folder = task
    layout: OrbitalLayout = _WORKER["layout"]  # type: ignore[assignment]
    options: dict = _WORKER["options"]  # type: ignore[assignment]
    try:
        import numpy as np

        structure = load_structure(folder)
        graph = build_graph(
            structure,
            layout,
            targets=options["targets"],
            hermiticity_tolerance=options["hermiticity_tolerance"],
            dtype=np.dtype(options["dtype"]),
            structure_id=sid,
        )
        total, masked = graph_entry_counts(graph, layout)
        record = encode_example(graph, options["operators"], options["dtype"])
        return sid, record, len(graph["species"]), len(graph["edge_src"]), total, masked
    except (DataFormatError, ValueError, OSError, KeyError) as error:
        return sid, None, f"{folder}: {error}" if str(folder) not in str(error) else str(error)


# --- main side ----------------------------------------------------------------------------------
def load_index(graph_dir: Path) -> Optional[dict]:
    """The index of a graph folder, or None if there is none (or it is unreadable)."""
    path = Path(graph_dir) / INDEX_NAME
    try:
        index = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return index if index.get("format") in (FORMAT, FF_FORMAT) else None


def _progress(total: int, description: str):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc=description, unit="structure", disable=not sys.stderr.isatty(), leave=False)


def build_graph_sets(
    training_systems,
    graph_dir,
    options: GraphBuildOptions = GraphBuildOptions(),
    validation_systems=None,
    train_only=(),
) -> dict:
    """Build (or reuse) the graph shards of the training and validation systems.

    Args:
        training_systems: ``training_data.systems`` (a path or a list of paths).
        graph_dir: output folder (index.json, split.json, shards/).
        options: build options.
        validation_systems: ``validation_data.systems``; when given, it is the "validate"
            subset and ``options.split`` is ignored for it.
        train_only: more ``systems`` entries whose structures are training data only, never
            split into validation or test (a teacher's labels in distillation).
    Returns:
        The index (also written to ``graph_dir/index.json``).
    Raises:
        GraphBuildError: a bad structure under the "fail" policy (nothing on disk changes).
    """
    graph_dir = Path(graph_dir)
    train = discover_systems(training_systems, options.data_dir_depth)
    validation = discover_systems(validation_systems, options.data_dir_depth) if validation_systems else []
    extra = [s for systems in train_only for s in discover_systems(systems, options.data_dir_depth)]
    n_train = len(train)
    extra = [System(index=n_train + k, root=s.root, structures=s.structures) for k, s in enumerate(extra)]
    train = train + extra
    extra_indices = {s.index for s in extra}

    # 1. Read every info.json/POSCAR (cheap), apply the bad-structure policy to what fails here.
    skipped: List[dict] = []
    loaded: Dict[Tuple[str, int], List[Tuple[str, Path, object]]] = {}
    for role, systems in (("train", train), ("validate", validation)):
        for system in systems:
            items = []
            for sid, folder in system.structures:
                try:
                    items.append((sid, folder, load_structure(folder)))
                except DataFormatError as error:
                    _reject(options, skipped, sid, str(error))
            loaded[(role, system.index)] = items
    layout = layout_from_structures(
        (s for items in loaded.values() for _, _, s in items),
        common_orbital_types=options.common_orbital_types,
        elements=options.elements,
    )

    # 2. Subsets and the split.
    subsets: Dict[str, Dict[int, List[Tuple[str, Path]]]] = {name: {} for name in SUBSETS}
    train_ids = [sid for (role, k), items in loaded.items() if role == "train" and k not in extra_indices
                 for sid, _, _ in items]
    split = make_split(train_ids, options.split if not validation else None, base_dir=Path.cwd())
    membership = {sid: name for name, ids in split.items() for sid in ids}
    for (role, system_index), items in loaded.items():
        for sid, folder, _ in items:
            subset = "validate" if role == "validate" else ("train" if system_index in extra_indices else membership.get(sid))
            if subset is not None:
                subsets[subset].setdefault(system_index, []).append((sid, folder))
    if validation:
        split["validate"] = sorted(sid for items in subsets["validate"].values() for sid, _ in items)
    if extra:
        split["train"] = sorted(sid for items in subsets["train"].values() for sid, _ in items)

    # 3. Plan shards and find what can be reused.
    common = {
        "format": FORMAT,
        "layout": layout.to_dict(),
        "operators": list(options.operators),
        "dtype": options.dtype,
        "hermiticity_tolerance": options.hermiticity_tolerance,
    }
    plans: List[_ShardPlan] = []
    for subset, by_system in subsets.items():
        for system_index, members in sorted(by_system.items()):
            members = sorted(members)
            for start in range(0, len(members), options.structures_per_shard):
                chunk = [(sid, str(folder)) for sid, folder in members[start : start + options.structures_per_shard]]
                payload = dict(common, structures=[[sid, _file_stamps(Path(f), options.operators)] for sid, f in chunk])
                plans.append(_ShardPlan(subset, system_index, chunk, _fingerprint(payload)))
    old = load_index(graph_dir) or {}
    old_entries = {s["fingerprint"]: s for sub in old.get("subsets", {}).values() for s in sub.get("shards", [])}
    shard_dir = graph_dir / SHARD_FOLDER
    to_build = []
    for plan in plans:
        previous = old_entries.get(plan.fingerprint)
        path = shard_dir / plan.file_name
        if previous and path.is_file() and path.stat().st_size == previous.get("bytes"):
            plan.entry = previous
        else:
            to_build.append(plan)
    logger.info(
        "graph shards in %s: %d planned, %d up to date, %d to build", graph_dir, len(plans), len(plans) - len(to_build), len(to_build)
    )

    # 4. Build what is missing; on failure remove only this build's new files.
    shard_dir.mkdir(parents=True, exist_ok=True)
    written: List[Path] = []
    try:
        _build_shards(to_build, layout, options, shard_dir, skipped, written)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise

    # 5. Index last, then clean files no index names.
    index = _make_index(plans, layout, options, split, skipped, train + validation)
    write_split(split, graph_dir / "split.json")
    atomic_write_text(graph_dir / INDEX_NAME, json.dumps(index, indent=1) + "\n")
    keep = {plan.file_name for plan in plans if plan.entry is not None}
    for path in shard_dir.iterdir():
        if path.name not in keep and (path.suffix in (".tfrecord", ".tmp") or path.name.endswith(".tmp")):
            path.unlink(missing_ok=True)
    if skipped:
        logger.warning(
            "skipped %d bad structure(s) (listed in %s): %s",
            len(skipped), graph_dir / INDEX_NAME, "; ".join(s["error"] for s in skipped[:3]),
        )
    return index


def _reject(options: GraphBuildOptions, skipped: List[dict], sid: str, message: str) -> None:
    if options.bad_structures == "fail":
        raise GraphBuildError(f"bad structure {sid}: {message} (set training.dataset.bad_structures to 'skip' to leave such structures out)")
    skipped.append({"structure": sid, "error": message})


def _build_shards(to_build, layout, options, shard_dir, skipped, written) -> None:
    if not to_build:
        return
    import tensorflow as tf  # TFRecordWriter (crc32c framing) lives in the main process only

    worker_options = {
        "targets": list(options.targets),
        "operators": list(options.operators),
        "dtype": options.dtype,
        "hermiticity_tolerance": options.hermiticity_tolerance,
    }
    tasks = [task for plan in to_build for task in plan.structures]
    workers = options.num_workers or os.cpu_count() or 1
    workers = min(workers, max(1, len(tasks) // 32))
    if workers > 1:
        pool = multiprocessing.get_context("spawn").Pool(
            workers, initializer=_init_worker, initargs=(layout.to_dict(), worker_options)
        )
        results = pool.imap(_graph_record, tasks, chunksize=16)
    else:
        pool = None
        _init_worker(layout.to_dict(), worker_options)
        results = map(_graph_record, tasks)
    progress = _progress(len(tasks), "building graphs")
    try:
        for plan in to_build:
            entry = {
                "file": plan.file_name, "subset": plan.subset, "system": plan.system,
                "fingerprint": plan.fingerprint, "structures": [], "n_atoms": [], "n_edges": [],
                "entries_total": 0, "entries_masked": 0, "skipped": [],
            }
            final = shard_dir / plan.file_name
            with atomic_path(final) as tmp:
                with tf.io.TFRecordWriter(str(tmp)) as writer:
                    for _ in plan.structures:
                        result = next(results)
                        if progress is not None:
                            progress.update(1)
                        if result[1] is None:
                            _reject(options, skipped, result[0], result[2])
                            entry["skipped"].append(skipped[-1])
                            continue
                        sid, record, n_atoms, n_edges, total, masked = result
                        writer.write(record)
                        entry["structures"].append(sid)
                        entry["n_atoms"].append(n_atoms)
                        entry["n_edges"].append(n_edges)
                        entry["entries_total"] += total
                        entry["entries_masked"] += masked
            written.append(final)
            entry["bytes"] = final.stat().st_size
            plan.entry = entry
    finally:
        if progress is not None:
            progress.close()
        if pool is not None:
            pool.terminate()
            pool.join()


def _make_index(plans, layout, options, split, skipped, systems: Sequence[System]) -> dict:
    subsets = {}
    for name in SUBSETS:
        shards = [plan.entry for plan in plans if plan.subset == name and plan.entry is not None]
        shards = [s for s in shards if s["structures"]]
        n_atoms = [n for s in shards for n in s["n_atoms"]]
        n_edges = [n for s in shards for n in s["n_edges"]]
        subsets[name] = {
            "shards": shards,
            "counts": {
                "structures": len(n_atoms),
                "atoms": int(sum(n_atoms)),
                "edges": int(sum(n_edges)),
                "entries_total": int(sum(s["entries_total"] for s in shards)),
                "entries_masked": int(sum(s["entries_masked"] for s in shards)),
            },
        }
    all_skipped = list({s["structure"]: s for s in skipped + [k for p in plans if p.entry for k in p.entry.get("skipped", [])]}.values())
    return {
        "format": FORMAT,
        "deeph_tf_version": __version__,
        "dtype": options.dtype,
        "operators": list(options.operators),
        "targets": list(options.targets),
        "hermiticity_tolerance": options.hermiticity_tolerance,
        "layout": layout.to_dict(),
        "output_irreps": str(layout.output_irreps),
        "systems": [{"index": s.index, "root": str(s.root), "structures": len(s.structures)} for s in systems],
        "fingerprint": _fingerprint(sorted(plan.fingerprint for plan in plans)),
        "split_sizes": {name: len(split.get(name, [])) for name in SUBSETS},
        "subsets": subsets,
        "skipped": all_skipped,
    }


def build_from_config(config: dict, graph_dir: Optional[str] = None, workers: Optional[int] = None,
                      train_only: Sequence[Tuple[object, Optional[str]]] = ()) -> dict:
    """Build the shards of a normalized input (``dgraph``, ``dtrain``); returns the index.

    ``train_only``: extra (systems, fmt) used for training only (distillation labels).
    Force-field inputs (model.target "energy_force") get :mod:`deeph_tf.data.ff_graphs` sets.
    """
    training = config["training"]
    dataset = dict(training["dataset"])
    if workers is not None:
        dataset["num_workers"] = workers
    validation = training.get("validation_data")
    if config["model"]["target"] == "energy_force":
        from deeph_tf.data.ff_graphs import build_force_field_sets, cutoff_from_config

        return build_force_field_sets(
            training["training_data"]["systems"],
            graph_dir or dataset["graph_dir"],
            cutoff_from_config(config),
            options=GraphBuildOptions.from_config(dataset),
            fmt=training["training_data"].get("fmt"),
            validation_systems=validation["systems"] if validation else None,
            validation_fmt=validation.get("fmt") if validation else None,
            train_only=train_only,
        )
    return build_graph_sets(
        training["training_data"]["systems"],
        graph_dir or dataset["graph_dir"],
        GraphBuildOptions.from_config(dataset),
        validation_systems=validation["systems"] if validation else None,
        train_only=[systems for systems, _ in train_only],
    )
