"""Block graph sets: DeepH structure folders -> TFRecord shards of graphs with blocks and masks.

The folder layout, reuse, atomicity and bad-structure guarantees are those of
:mod:`deeph_tf.data.shard_store`. A shard's fingerprint covers its structure ids, the content
(SHA-256) of their files (:mod:`deeph_tf.data.content_hash`: no paths, sizes or times, so a
copied folder is reused), the orbital layout, operators, dtype, Hermiticity tolerance and
format version. Without the raw data, a graph folder is trained from as it is
(:mod:`deeph_tf.data.graph_options`). Structures are turned into graphs in worker processes (no TensorFlow there).
:func:`build_from_config` builds either kind of graph set from a normalized input.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import os
from contextlib import contextmanager
from operator import add
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from deeph_tf._version import __version__
from deeph_tf.data import keys
from deeph_tf.data.content_hash import SourceHashes
from deeph_tf.data.discovery import System, discover_systems
from deeph_tf.data.errors import DataFormatError
from deeph_tf.data.ff_graphs import build_force_field_sets, cutoff_from_config
from deeph_tf.data.graph import build_graph, graph_entry_counts, layout_from_structures
from deeph_tf.data.graph_options import graphs_without_sources, recorded_options, sources_missing
from deeph_tf.data.layout import OrbitalLayout
from deeph_tf.data.records import encode_example
from deeph_tf.data.shard_store import (BLOCK_FORMAT, BadStructures, GraphBuildError, GraphBuildOptions,
                                       GraphRecord, ShardKind, ShardPlan, built_shards, fingerprint,
                                       plan_shards, subset_counts, write_graph_set)
from deeph_tf.data.split import SUBSETS, make_split
from deeph_tf.data.structure import load_structure

__all__ = ["GraphBuildError", "GraphBuildOptions", "build_from_config", "build_graph_sets"]

FORMAT = BLOCK_FORMAT
#: Per-shard statistics: DeepH entry counts (all real entries, and those the mask keeps).
BLOCK_SHARDS = ShardKind(statistics={"entries_total": (0, add), "entries_masked": (0, add)})


def _source_names(operators: Sequence[str]) -> List[str]:
    """The files of a structure folder a graph is made from."""
    return ["info.json", "POSCAR"] + [f"{op}.h5" for op in operators]


# --- worker side (no TensorFlow) ----------------------------------------------------------------
_WORKER: Dict[str, object] = {}


def _init_worker(layout_dict: dict, options: dict) -> None:
    _WORKER["layout"] = OrbitalLayout.from_dict(layout_dict)
    _WORKER["options"] = options


def _graph_record(task: Tuple[str, str]) -> GraphRecord:
    """(id, folder) -> the structure's record with its sizes and entry counts, or its error."""
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
        record = encode_example(graph, options["operators"], options["dtype"], options.get("spinful", False))
        return GraphRecord(sid, record, n_atoms=len(graph[keys.SPECIES]), n_edges=len(graph[keys.EDGE_SRC]),
                           statistics={"entries_total": total, "entries_masked": masked})
    except (DataFormatError, ValueError, OSError, KeyError) as error:
        return GraphRecord(sid, None, f"{folder}: {error}" if str(folder) not in str(error) else str(error))


# --- main side ----------------------------------------------------------------------------------
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
    if sources_missing(training_systems) and (validation_systems is None or sources_missing(validation_systems)) \
            and not train_only:
        return graphs_without_sources(graph_dir, options, training_systems)
    train = discover_systems(training_systems, options.data_dir_depth)
    validation = discover_systems(validation_systems, options.data_dir_depth) if validation_systems else []
    extra = [s for systems in train_only for s in discover_systems(systems, options.data_dir_depth)]
    n_train = len(train)
    extra = [System(index=n_train + k, root=s.root, structures=s.structures) for k, s in enumerate(extra)]
    train = train + extra
    extra_indices = {s.index for s in extra}

    # 1. Read every info.json/POSCAR (cheap), apply the bad-structure policy to what fails here.
    bad = BadStructures(options.bad_structures)
    loaded: Dict[Tuple[str, int], List[Tuple[str, Path, object]]] = {}
    for role, systems in (("train", train), ("validate", validation)):
        for system in systems:
            items = []
            for sid, folder in system.structures:
                try:
                    items.append((sid, folder, load_structure(folder)))
                except DataFormatError as error:
                    bad.reject(sid, str(error))
            loaded[(role, system.index)] = items
    spinful = dataset_spinful([(sid, s) for items in loaded.values() for sid, _, s in items], options.targets)
    layout = layout_from_structures(
        (s for items in loaded.values() for _, _, s in items),
        common_orbital_types=options.common_orbital_types,
        elements=options.elements,
        base=None if options.base_layout is None else OrbitalLayout.from_dict(options.base_layout),
    )

    # 2. Subsets and the split.
    subsets: Dict[str, Dict[int, List[Tuple[str, str]]]] = {name: {} for name in SUBSETS}
    train_ids = [sid for (role, k), items in loaded.items() if role == "train" and k not in extra_indices
                 for sid, _, _ in items]
    split = make_split(train_ids, options.split if not validation else None, base_dir=Path.cwd())
    membership = {sid: name for name, ids in split.items() for sid in ids}
    for (role, system_index), items in loaded.items():
        for sid, folder, _ in items:
            subset = "validate" if role == "validate" else ("train" if system_index in extra_indices else membership.get(sid))
            if subset is not None:
                subsets[subset].setdefault(system_index, []).append((sid, str(folder)))
    if validation:
        split["validate"] = sorted(sid for items in subsets["validate"].values() for sid, _ in items)
    if extra:
        split["train"] = sorted(sid for items in subsets["train"].values() for sid, _ in items)

    # 3. Shards named by their sources and options; build what is missing, index last.
    common = {
        "format": FORMAT,
        "layout": layout.to_dict(),
        "operators": list(options.operators),
        "dtype": options.dtype,
        "hermiticity_tolerance": options.hermiticity_tolerance,
    }
    if spinful:  # only then: spinless fingerprints stay those of earlier versions
        common["spinful"] = True

    hashes, names = SourceHashes(Path(graph_dir)), _source_names(options.operators)

    def shard_fingerprint(chunk: List[Tuple[str, str]]) -> str:
        return fingerprint(dict(common, structures=[[sid, hashes.structure(Path(f), names)] for sid, f in chunk]))

    plans = plan_shards(subsets, options.structures_per_shard, shard_fingerprint)

    def summarize(built: Sequence[ShardPlan]) -> Tuple[dict, dict]:
        return _make_index(built, layout, options, split, bad.listed(built), train + validation, spinful), split

    index = write_graph_set(graph_dir, plans, BLOCK_SHARDS,
                            lambda to_build: _graph_records(to_build, layout, options, spinful),
                            bad, summarize)
    hashes.save()  # after success only: a failed build changes nothing in the folder
    return index


@contextmanager
def _graph_records(to_build: Sequence[ShardPlan], layout: OrbitalLayout, options: GraphBuildOptions,
                   spinful: bool = False) -> Iterator[Iterator[GraphRecord]]:
    """The records of ``to_build``'s structures in order, from worker processes when there are many."""
    worker_options = {
        "spinful": spinful,
        "targets": list(options.targets),
        "operators": list(options.operators),
        "dtype": options.dtype,
        "hermiticity_tolerance": options.hermiticity_tolerance,
    }
    tasks = [task for plan in to_build for task in plan.structures]
    workers = options.num_workers or os.cpu_count() or 1
    workers = min(workers, max(1, len(tasks) // 32))
    if workers <= 1:
        _init_worker(layout.to_dict(), worker_options)
        yield map(_graph_record, tasks)
        return
    pool = multiprocessing.get_context("spawn").Pool(
        workers, initializer=_init_worker, initargs=(layout.to_dict(), worker_options)
    )
    try:
        yield pool.imap(_graph_record, tasks, chunksize=16)
    finally:
        pool.terminate()
        pool.join()


def dataset_spinful(structures: Sequence[Tuple[str, object]], targets: Sequence[str]) -> bool:
    """Whether a dataset's targets are spinful (info.json ``spinful`` of every structure).

    Raises:
        GraphBuildError: some structures are spinful and others not (for a spinful target);
            the message names one of each and the counts.
    """
    if not any(t in keys.SPIN_OPERATORS for t in targets):
        return False
    spinful = [sid for sid, s in structures if s.spinful]
    if spinful and len(spinful) < len(structures):
        spinless = [sid for sid, s in structures if not s.spinful]
        first = next(s for sid, s in structures if sid == spinless[0])
        other = next(s for sid, s in structures if sid == spinful[0])
        raise GraphBuildError(
            f"the dataset mixes spinful and spinless structures: {len(spinful)} have \"spinful\": true in info.json "
            f"(e.g. {other.path / 'info.json'}), {len(spinless)} have false (e.g. {first.path / 'info.json'}); "
            "a model predicts either spin-orbit (complex 2n x 2n) or spinless blocks, so train on one kind "
            "(split the systems into two datasets)")
    return bool(spinful)


def _make_index(plans: Sequence[ShardPlan], layout: OrbitalLayout, options: GraphBuildOptions,
                split: Dict[str, List[str]], skipped: List[dict], systems: Sequence[System],
                spinful: bool = False) -> dict:
    shards = built_shards(plans)
    return {
        "format": FORMAT,
        "spinful": spinful,
        "deeph_tf_version": __version__,
        "dtype": options.dtype,
        "operators": list(options.operators),
        "targets": list(options.targets),
        "hermiticity_tolerance": options.hermiticity_tolerance,
        "build_options": recorded_options(options),
        "layout": layout.to_dict(),
        "output_irreps": str(layout.output_irreps),
        "systems": [{"index": s.index, "root": str(s.root), "structures": len(s.structures)} for s in systems],
        "fingerprint": fingerprint(sorted(plan.fingerprint for plan in plans)),
        "split_sizes": {name: len(split.get(name, [])) for name in SUBSETS},
        "subsets": {name: {"shards": shards[name], "counts": subset_counts(shards[name])} for name in SUBSETS},
        "skipped": skipped,
    }


def build_from_config(config: dict, graph_dir: Optional[str] = None, workers: Optional[int] = None,
                      train_only: Sequence[Tuple[object, Optional[str]]] = (),
                      base_layout: Optional[Mapping] = None) -> dict:
    """Build the shards of a normalized input (``dgraph``, ``dtrain``); returns the index.

    ``train_only``: extra (systems, fmt) used for training only (distillation labels).
    ``base_layout``: a starting model's layout dict, which the data's layout extends.
    Force-field inputs (model.target "energy_force") get :mod:`deeph_tf.data.ff_graphs` sets.
    """
    training = config["training"]
    dataset = dict(training["dataset"])
    if workers is not None:
        dataset["num_workers"] = workers
    validation = training.get("validation_data")
    if config["model"]["target"] == keys.ENERGY_FORCE:
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
    options = GraphBuildOptions.from_config(dataset)
    if base_layout is not None:
        options = dataclasses.replace(options, base_layout=dict(base_layout))
    return build_graph_sets(
        training["training_data"]["systems"],
        graph_dir or dataset["graph_dir"],
        options,
        validation_systems=validation["systems"] if validation else None,
        train_only=[systems for systems, _ in train_only],
    )
