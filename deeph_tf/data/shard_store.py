"""The store both kinds of graph set share: folder layout, options, index, and the reuse-and-write driver.

Block graph sets (:mod:`deeph_tf.data.shards`, from DeepH folders) and force-field graph sets
(:mod:`deeph_tf.data.ff_graphs`, from labelled frames) differ only in what a record holds, what
a shard's fingerprint covers and what the index summarizes; this module does the rest.

Layout of a graph folder::

    <graph_dir>/index.json                 counts, layout, dtype, fingerprints, split sizes, skipped
    <graph_dir>/split.json                 the split used: {"train": [...], "validate": [...], "test": [...]}
    <graph_dir>/shards/<subset>-s<system>-<fingerprint>.tfrecord

Guarantees:
- Incremental: a shard's name is the fingerprint of what it was built from (the caller's
  description of its sources and options). An unchanged shard is reused, not rebuilt.
- Atomic: shards are written to temporary names and renamed; the index is written last. An
  interrupted or failed build leaves the previous index and every shard it names untouched,
  and removes the files it wrote; a half-written file never carries a name an index could
  point to.
- Bad structures: with ``bad_structures="fail"`` the first error stops the build (naming the
  structure and file); with ``"skip"`` they are left out, counted and listed in the index
  (also those of reused shards).
"""
from __future__ import annotations

import hashlib
import json
import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from deeph_tf.atomic_io import atomic_path, atomic_write_text
from deeph_tf.data import keys
from deeph_tf.data.split import SUBSETS, write_split
from deeph_tf.progress import progress_bar

logger = logging.getLogger(__name__)

#: ``format`` of a block graph set's index (DeepH folders -> blocks and masks).
BLOCK_FORMAT = "deeph_tf.graphs/1"
#: ``format`` of a force-field graph set's index (labelled frames -> radius graphs).
FF_FORMAT = "deeph_tf.ff_graphs/1"
INDEX_NAME = "index.json"
SPLIT_NAME = "split.json"
SHARD_FOLDER = "shards"


class GraphBuildError(ValueError):
    """A structure could not be turned into a graph and the policy is "fail"."""


@dataclass(frozen=True)
class GraphBuildOptions:
    """What a graph set is built from (``training.dataset`` of the input, see the schema)."""

    targets: Tuple[str, ...] = (keys.HAMILTONIAN,)
    dtype: str = "float32"
    hermiticity_tolerance: float = 1e-4
    structures_per_shard: int = 256
    num_workers: int = 0
    bad_structures: str = "fail"
    common_orbital_types: Optional[object] = None
    elements: Optional[Tuple[str, ...]] = None
    data_dir_depth: Optional[int] = 0
    split: Optional[Mapping] = None
    #: A starting model's layout (``OrbitalLayout.to_dict()``) the data's layout extends (not
    #: an input key: ``dtrain -i/-f/-r/--finetune`` sets it).
    base_layout: Optional[Mapping] = None

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
        """Stored operators of a block graph set: overlap first, then the targets."""
        return (keys.OVERLAP,) + tuple(t for t in self.targets if t != keys.OVERLAP)


def fingerprint(payload) -> str:
    """SHA-256 (hex) of a JSON-serializable description (keys sorted)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def load_index(graph_dir: Path) -> Optional[dict]:
    """The index of a graph folder (either kind), or None if there is none (or it is unreadable)."""
    path = Path(graph_dir) / INDEX_NAME
    try:
        index = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return index if index.get("format") in (BLOCK_FORMAT, FF_FORMAT) else None


class BadStructures:
    """The ``bad_structures`` policy of one build and the structures it left out."""

    def __init__(self, policy: str) -> None:
        self.policy = policy
        #: [{"structure": id, "error": message}], in the order found.
        self.skipped: List[dict] = []

    def reject(self, structure_id: str, message: str) -> dict:
        """Record a bad structure ("skip") and return its entry, or raise GraphBuildError ("fail")."""
        if self.policy == "fail":
            raise GraphBuildError(f"bad structure {structure_id}: {message} (set training.dataset.bad_structures "
                                  "to 'skip' to leave such structures out)")
        self.skipped.append({"structure": structure_id, "error": message})
        return self.skipped[-1]

    def listed(self, plans: Sequence["ShardPlan"]) -> List[dict]:
        """Every structure left out: found in this build or recorded by a (reused) shard, once each."""
        recorded = [s for plan in plans if plan.entry for s in plan.entry.get("skipped", [])]
        return list({s["structure"]: s for s in self.skipped + recorded}.values())


@dataclass
class ShardPlan:
    """One shard: its structures (whatever the kind's record source needs), and its index entry."""

    subset: str
    system: int
    structures: list
    fingerprint: str
    entry: Optional[dict] = None  # set once built or reused

    @property
    def file_name(self) -> str:
        return f"{self.subset}-s{self.system}-{self.fingerprint[:20]}.tfrecord"


def plan_shards(subsets: Mapping[str, Mapping[int, Sequence]], structures_per_shard: int,
                fingerprint_of: Callable[[list], str]) -> List[ShardPlan]:
    """Cut each (subset, system)'s sorted members into shards of ``structures_per_shard``.

    ``fingerprint_of(chunk)`` names a shard by what it is built from.
    """
    plans = []
    for subset, by_system in subsets.items():
        for system, members in sorted(by_system.items()):
            members = sorted(members)
            for start in range(0, len(members), structures_per_shard):
                chunk = list(members[start : start + structures_per_shard])
                plans.append(ShardPlan(subset, system, chunk, fingerprint_of(chunk)))
    return plans


@dataclass
class GraphRecord:
    """One structure turned into a record (``record``), or the reason it could not be (``error``)."""

    structure_id: str
    record: Optional[bytes]
    error: str = ""
    n_atoms: int = 0
    n_edges: int = 0
    #: Per-structure values folded into the shard's statistics (see :class:`ShardKind`).
    statistics: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ShardKind:
    """The per-shard statistics of one kind of graph set.

    ``statistics`` maps an entry field to (its value for an empty shard, how a structure's
    value is folded in, e.g. ``operator.add`` or ``max``). A previous shard is reused only if
    its entry has every field.
    """

    statistics: Mapping[str, Tuple[float, Callable[[float, float], float]]]

    def reusable(self, entry: Optional[dict]) -> bool:
        return entry is not None and all(name in entry for name in self.statistics)


#: The records of the shards to build, in plan order: a context (it may own worker processes).
RecordSource = Callable[[Sequence[ShardPlan]], "AbstractContextManager[Iterator[GraphRecord]]"]


def write_graph_set(graph_dir, plans: List[ShardPlan], kind: ShardKind, records: RecordSource,
                    bad: BadStructures, summarize: Callable[[Sequence[ShardPlan]], Tuple[dict, dict]]) -> dict:
    """Reuse what is up to date, write the missing shards, then split.json and index.json.

    Args:
        graph_dir: the graph folder.
        plans: every shard of the set (:func:`plan_shards`).
        kind: per-shard statistics of this kind of set.
        records: opens the records of the shards to build (called only if there are some).
        bad: the bad-structure policy; failed records are rejected through it.
        summarize: plans (all with entries) -> (index, split), written in that folder.
    Returns:
        The index. On any error (or interrupt) the files this build wrote are removed and
        the previous index, split and shards are left as they were.
    """
    graph_dir = Path(graph_dir)
    shard_dir = graph_dir / SHARD_FOLDER
    old = load_index(graph_dir) or {}
    # By file name (subset, system, fingerprint): the same structures may form shards of two subsets.
    old_entries = {s["file"]: s for sub in old.get("subsets", {}).values() for s in sub.get("shards", [])}
    to_build = []
    for plan in plans:
        previous = old_entries.get(plan.file_name)
        path = shard_dir / plan.file_name
        if (kind.reusable(previous) and previous["fingerprint"] == plan.fingerprint and path.is_file()
                and path.stat().st_size == previous.get("bytes")):
            plan.entry = previous
        else:
            to_build.append(plan)
    logger.info("graph shards in %s: %d planned, %d up to date, %d to build",
                graph_dir, len(plans), len(plans) - len(to_build), len(to_build))

    shard_dir.mkdir(parents=True, exist_ok=True)
    written: List[Path] = []
    try:
        if to_build:
            with records(to_build) as results:
                _write_shards(to_build, results, kind, bad, shard_dir, written)
        index, split = summarize(plans)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise

    write_split(split, graph_dir / SPLIT_NAME)
    atomic_write_text(graph_dir / INDEX_NAME, json.dumps(index, indent=1) + "\n")
    named = {s["file"] for sub in index["subsets"].values() for s in sub["shards"]}
    for path in shard_dir.iterdir():
        if path.name not in named and (path.suffix == ".tfrecord" or path.name.endswith(".tmp")):
            path.unlink(missing_ok=True)
    if index["skipped"]:
        logger.warning("skipped %d bad structure(s) (listed in %s): %s", len(index["skipped"]),
                       graph_dir / INDEX_NAME, "; ".join(s["error"] for s in index["skipped"][:3]))
    return index


def _write_shards(to_build: Sequence[ShardPlan], results: Iterator[GraphRecord], kind: ShardKind,
                  bad: BadStructures, shard_dir: Path, written: List[Path]) -> None:
    import tensorflow as tf  # TFRecordWriter (crc32c framing) lives in the main process only

    progress = progress_bar(sum(len(plan.structures) for plan in to_build), description="building graphs")
    try:
        for plan in to_build:
            entry = {"file": plan.file_name, "subset": plan.subset, "system": plan.system,
                     "fingerprint": plan.fingerprint, "structures": [], "n_atoms": [], "n_edges": [],
                     **{name: initial for name, (initial, _) in kind.statistics.items()}, "skipped": []}
            final = shard_dir / plan.file_name
            with atomic_path(final) as tmp:
                with tf.io.TFRecordWriter(str(tmp)) as writer:
                    for _ in plan.structures:
                        result = next(results)
                        if progress is not None:
                            progress.update(1)
                        if result.record is None:
                            entry["skipped"].append(bad.reject(result.structure_id, result.error))
                            continue
                        writer.write(result.record)
                        entry["structures"].append(result.structure_id)
                        entry["n_atoms"].append(result.n_atoms)
                        entry["n_edges"].append(result.n_edges)
                        for name, value in result.statistics.items():
                            entry[name] = kind.statistics[name][1](entry[name], value)
            written.append(final)
            entry["bytes"] = final.stat().st_size
            plan.entry = entry
    finally:
        if progress is not None:
            progress.close()


def subset_counts(shards: Sequence[dict]) -> Dict[str, int]:
    """Totals of one subset's shard entries: structures, atoms, edges, block entries (total, masked)."""
    return {
        "structures": sum(len(s["n_atoms"]) for s in shards),
        "atoms": int(sum(sum(s["n_atoms"]) for s in shards)),
        "edges": int(sum(sum(s["n_edges"]) for s in shards)),
        "entries_total": int(sum(s["entries_total"] for s in shards)),
        "entries_masked": int(sum(s["entries_masked"] for s in shards)),
    }


def built_shards(plans: Sequence[ShardPlan]) -> Dict[str, List[dict]]:
    """Subset -> entries of its shards that hold structures, in plan order."""
    return {name: [p.entry for p in plans if p.subset == name and p.entry and p.entry["structures"]]
            for name in SUBSETS}
