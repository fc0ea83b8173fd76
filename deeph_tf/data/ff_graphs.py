"""Force-field graph sets (``model.target = "energy_force"``): radius graphs with energy/force labels.

The same folder layout, guarantees (:mod:`deeph_tf.data.shard_store`: content-addressed
TFRecord shards, index written last, split) and pipeline as the block graph sets of
:mod:`deeph_tf.data.shards`, with these differences:

- structures come from any labelled source :func:`deeph_tf.data.labeled.read_labeled_frames`
  reads: DeepH structure folders with ``force.h5``, or dpdata systems (deepmd/npy,
  deepmd/hdf5, VASP OUTCAR, ...), format guessed or given as ``fmt``;
- edges are every pair closer than the model's cutoff (periodic images included), so the
  energy is a smooth function of the positions (the radial envelope vanishes at the cutoff);
- records hold energy (eV), forces (eV/Angstrom) and the virial (eV) when known
  (:data:`deeph_tf.data.keys.ENERGY` ...), no blocks or masks; the index's ``operators``
  are ``["energy_force"]`` and its ``layout`` lists the elements with no orbitals;
- the index carries ``energy_statistics`` of the training subset: per-element reference
  energies (least squares, eV), force RMS (eV/Angstrom), neighbours per atom, longest edge.

Structure ids: a DeepH folder's id as usual (path below ``dft/``); a dpdata frame's id is
``<system path as given>/<frame>``, so ids stay unique across systems.
"""
from __future__ import annotations

import hashlib
import logging
from contextlib import contextmanager
from operator import add
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from deeph_tf._version import __version__
from deeph_tf.data import keys
from deeph_tf.data.errors import DataFormatError
from deeph_tf.data.layout import OrbitalLayout
from deeph_tf.data.records import encode_example
from deeph_tf.data.shard_store import (FF_FORMAT, BadStructures, GraphBuildOptions, GraphRecord, ShardKind,
                                       ShardPlan, built_shards, fingerprint, plan_shards, subset_counts,
                                       write_graph_set)
from deeph_tf.data.split import SUBSETS, make_split
from deeph_tf.elements import atomic_number

logger = logging.getLogger(__name__)

FORMAT = FF_FORMAT
OPERATORS = (keys.ENERGY_FORCE,)
#: Per-shard statistics: the longest edge (Angstrom); block entry counts stay 0.
FF_SHARDS = ShardKind(statistics={"max_edge_length": (0.0, max), "entries_total": (0, add),
                                  "entries_masked": (0, add)})
#: Default radius (Angstrom) of force-field graphs when model.cutoff is "auto".
DEFAULT_CUTOFF = 5.0


def elements_layout(elements: Sequence[str]) -> OrbitalLayout:
    """A layout naming the elements only (species index = position, sorted by atomic number)."""
    ordered = sorted(set(elements), key=atomic_number)
    return OrbitalLayout(element_shells=tuple((e, ()) for e in ordered), common_shells=())


def force_field_graph(frame, layout: OrbitalLayout, cutoff: float, dtype=np.float32, structure_id: str = "") -> Dict[str, np.ndarray]:
    """One labelled frame -> graph dict (fields of a force-field record, see :mod:`deeph_tf.data.keys`).

    Raises:
        DataFormatError: an element the layout lacks, or missing energy/forces.
    """
    from deeph_tf.data.neighbors import radius_graph

    unknown = sorted(set(frame.species) - set(layout.elements))
    if unknown:
        raise DataFormatError(frame.name, f"elements {unknown} are not among the model's elements {list(layout.elements)}")
    src, dst, shifts = radius_graph(frame.positions, frame.lattice, cutoff, pbc=frame.pbc)
    lookup = {(int(i), int(j), *map(int, r)): k for k, (i, j, r) in enumerate(zip(src, dst, shifts))}
    reverse = np.array([lookup[(int(j), int(i), *(-int(x) for x in r))] for i, j, r in zip(src, dst, shifts)], np.int32)
    n = frame.n_atoms
    has_labels = frame.energy is not None and frame.forces is not None
    graph = {
        keys.STRUCTURE_ID: np.array(structure_id or frame.name),
        keys.ATOMIC_NUMBERS: np.array([atomic_number(e) for e in frame.species], np.int32),
        keys.SPECIES: np.array([layout.elements.index(e) for e in frame.species], np.int32),
        keys.POSITIONS: np.asarray(frame.positions, dtype),
        keys.LATTICE: np.asarray(frame.lattice, dtype),
        keys.EDGE_SRC: src.astype(np.int32),
        keys.EDGE_DST: dst.astype(np.int32),
        keys.EDGE_SHIFT: shifts.astype(np.int32).reshape(-1, 3),
        keys.EDGE_REVERSE: reverse.reshape(-1),
        keys.ENERGY: np.asarray(frame.energy if has_labels else 0.0, dtype),
        keys.FORCES: np.asarray(frame.forces if has_labels else np.zeros((n, 3)), dtype).reshape(n, 3),
        keys.VIRIAL: np.asarray(frame.virial if frame.virial is not None else np.zeros((3, 3)), dtype),
        keys.VIRIAL_VALID: np.asarray(frame.virial is not None, bool),
    }
    return graph


def _frame_digest(frame) -> str:
    h = hashlib.sha256()
    h.update(" ".join(frame.species).encode())
    for array in (frame.positions, frame.lattice, frame.forces, frame.virial):
        if array is not None:
            h.update(np.ascontiguousarray(array, np.float64).tobytes())
    h.update(repr((frame.energy, frame.pbc)).encode())
    return h.hexdigest()


def load_labeled_systems(systems, fmt: Optional[str] = None, data_dir_depth: Optional[int] = 0,
                         require_labels: bool = True) -> List[List[Tuple[str, object]]]:
    """One list of (structure id, LabeledFrame) per system of a ``systems`` entry.

    A list names one system per entry; a single path is one system, except a folder holding
    several dpdata systems (folders with type.raw), which are found recursively, as DeePMD does.
    """
    from deeph_tf.data.labeled import read_labeled_frames

    if isinstance(systems, (str, Path)):
        root = Path(systems)
        found = sorted(p.parent for p in root.rglob("type.raw")) if root.is_dir() and fmt in (None, "deepmd/npy", "deepmd/raw") else []
        paths = [str(p) for p in found] if found and not (root / "type.raw").is_file() else [str(systems)]
    else:
        paths = [str(p) for p in systems]
    out: List[List[Tuple[str, object]]] = []
    seen: Dict[str, str] = {}
    for path in paths:
        frames = read_labeled_frames(path, fmt=fmt, data_dir_depth=data_dir_depth, require_labels=require_labels)
        # DeepH folders keep their ids (as for Hamiltonians); dpdata frames get the system path.
        is_deeph = bool(frames) and (Path(frames[0][1].name) / "POSCAR").is_file()
        named = []
        for sid, frame in frames:
            full = sid if is_deeph else f"{Path(path).as_posix().rstrip('/')}/{sid}"
            if full in seen and seen[full] != path:
                raise ValueError(f"structure id {full!r} appears in {seen[full]} and {path}; ids must be unique across systems")
            seen[full] = path
            named.append((full, frame))
        out.append(named)
    return out


def energy_statistics(frames: Sequence, layout: OrbitalLayout, edge_counts: Sequence[int], edge_lengths_max: float) -> dict:
    """Per-element reference energies (least squares of E = sum_i e_{Z_i}, eV), the RMS of the
    force components (eV/Angstrom), the RMS per-atom energy residual (eV), edges per atom."""
    n_species = len(layout.elements)
    counts = np.zeros((len(frames), n_species))
    energies = np.zeros(len(frames))
    forces = []
    for k, frame in enumerate(frames):
        for element in frame.species:
            counts[k, layout.elements.index(element)] += 1
        energies[k] = frame.energy
        forces.append(np.asarray(frame.forces).reshape(-1))
    # Ridge-regularized least squares: elements that always occur together stay determined.
    gram = counts.T @ counts + 1e-8 * np.eye(n_species) * max(1.0, np.trace(counts.T @ counts) / n_species)
    atom_energies = np.linalg.solve(gram, counts.T @ energies)
    residual = (energies - counts @ atom_energies) / np.maximum(counts.sum(axis=1), 1)
    all_forces = np.concatenate(forces) if forces else np.zeros(1)
    n_atoms = counts.sum()
    return {
        "elements": list(layout.elements),
        "atom_energies": atom_energies.tolist(),
        "energy_residual_rms_per_atom": float(np.sqrt(np.mean(residual**2))) if len(frames) else 0.0,
        "force_rms": float(np.sqrt(np.mean(all_forces**2))),
        "avg_num_neighbors": float(sum(edge_counts) / max(n_atoms, 1)),
        "max_edge_length": float(edge_lengths_max),
        "structures": len(frames),
    }


def build_force_field_sets(
    training_systems,
    graph_dir,
    cutoff: float,
    *,
    options: Optional[GraphBuildOptions] = None,
    fmt: Optional[str] = None,
    validation_systems=None,
    validation_fmt: Optional[str] = None,
    train_only: Sequence[Tuple[object, Optional[str]]] = (),
) -> dict:
    """Build (or reuse) the force-field shards of the training and validation systems.

    Args:
        training_systems, validation_systems: ``systems`` of training_data / validation_data.
        graph_dir: output folder (index.json, split.json, shards/).
        cutoff: radius of the graphs, Angstrom (the model's cutoff).
        options: :class:`deeph_tf.data.shard_store.GraphBuildOptions` (dtype, split, elements,
            structures_per_shard, bad_structures, data_dir_depth; targets are ignored).
        fmt, validation_fmt: format of the systems (None: guessed).
        train_only: extra (systems, fmt) whose structures are training data only, never split
            into validation or test (a teacher's labels in distillation).
    Returns:
        The index (also written to ``graph_dir/index.json``).
    """
    options = options or GraphBuildOptions()
    depth = options.data_dir_depth
    sources = [("train", s) for s in load_labeled_systems(training_systems, fmt, depth)]
    sources += [("train_only", s) for systems, f in train_only for s in load_labeled_systems(systems, f, depth)]
    if validation_systems:
        sources += [("validate", s) for s in load_labeled_systems(validation_systems, validation_fmt, depth)]
    bad = BadStructures(options.bad_structures)
    all_elements = sorted({e for _, system in sources for _, frame in system for e in frame.species}, key=atomic_number)
    elements = list(options.elements) if options.elements else all_elements
    layout = elements_layout(elements)

    # 1. Labels and elements checked up front (the bad-structure policy); radius graphs are built
    #    later, only for the shards that are not up to date.
    frames: Dict[str, object] = {}
    roles: List[Tuple[str, int, List[str]]] = []
    for system_index, (role, system) in enumerate(sources):
        ids = []
        for sid, frame in system:
            unknown = sorted(set(frame.species) - set(layout.elements))
            if not frame.has_labels:
                bad.reject(sid, f"{frame.name}: no energy/force labels")
            elif unknown:
                bad.reject(sid, f"{frame.name}: elements {unknown} are not among the model's elements {list(layout.elements)}")
            else:
                frames[sid] = frame
                ids.append(sid)
        roles.append((role, system_index, ids))

    # 2. Split: the split applies to the "train" systems; train-only and validation are fixed.
    train_ids = [sid for role, _, ids in roles if role == "train" for sid in ids]
    split = make_split(train_ids, options.split if not validation_systems else None, base_dir=Path.cwd())
    membership = {sid: name for name, ids in split.items() for sid in ids}
    subsets: Dict[str, Dict[int, List[str]]] = {name: {} for name in SUBSETS}
    for role, system_index, ids in roles:
        for sid in ids:
            subset = {"train_only": "train", "validate": "validate"}.get(role) or membership.get(sid)
            if subset is not None:
                subsets[subset].setdefault(system_index, []).append(sid)

    # 3. Shards named by their frames and options; build what is missing, index last.
    common = {"format": FORMAT, "elements": list(layout.elements), "cutoff": float(cutoff), "dtype": options.dtype}
    plans = plan_shards(subsets, options.structures_per_shard,
                        lambda chunk: fingerprint(dict(common, structures=[[sid, _frame_digest(frames[sid])] for sid in chunk])))

    @contextmanager
    def records(to_build: Sequence[ShardPlan]) -> Iterator[Iterator[GraphRecord]]:
        yield (_force_field_record(sid, frames[sid], layout, cutoff, options.dtype)
               for plan in to_build for sid in plan.structures)

    def summarize(built: Sequence[ShardPlan]) -> Tuple[dict, dict]:
        return _make_index(built, frames, layout, cutoff, options, roles, bad.listed(built))

    index = write_graph_set(graph_dir, plans, FF_SHARDS, records, bad, summarize)
    logger.info("force-field graphs in %s: %s structures (train/validate/test), cutoff %.3g A", graph_dir,
                "/".join(str(index["split_sizes"][n]) for n in SUBSETS), cutoff)
    return index


def _force_field_record(sid: str, frame, layout: OrbitalLayout, cutoff: float, dtype: str) -> GraphRecord:
    """One frame's radius graph as a record, with its sizes and longest edge (Angstrom), or its error."""
    try:
        graph = force_field_graph(frame, layout, cutoff, np.dtype(dtype), sid)
    except (DataFormatError, ValueError) as error:
        return GraphRecord(sid, None, str(error))
    positions = graph[keys.POSITIONS]
    vectors = (positions[graph[keys.EDGE_DST]] + graph[keys.EDGE_SHIFT] @ graph[keys.LATTICE]
               - positions[graph[keys.EDGE_SRC]])
    longest = float(np.linalg.norm(vectors, axis=1).max()) if len(vectors) else 0.0
    return GraphRecord(sid, encode_example(graph, OPERATORS, dtype), n_atoms=int(len(graph[keys.SPECIES])),
                       n_edges=int(len(graph[keys.EDGE_SRC])), statistics={"max_edge_length": longest})


def _make_index(plans: Sequence[ShardPlan], frames: Mapping[str, object], layout: OrbitalLayout, cutoff: float,
                options: GraphBuildOptions, roles: Sequence[Tuple[str, int, List[str]]], skipped: List[dict]
                ) -> Tuple[dict, dict]:
    """The index and the split of the built shards (structures that failed are in neither)."""
    entries = built_shards(plans)
    split = {name: sorted(sid for e in entries[name] for sid in e["structures"]) for name in SUBSETS}
    train_frames = [frames[sid] for sid in split["train"]]
    if not train_frames:
        raise ValueError("no training structures with energy/force labels (check training.training_data.systems "
                         "and training.dataset.split)")
    edge_counts = [n for e in entries["train"] for n in e["n_edges"]]
    longest = max((e["max_edge_length"] for e in entries["train"]), default=0.0)
    index = {
        "format": FORMAT,
        "deeph_tf_version": __version__,
        "dtype": options.dtype,
        "operators": list(OPERATORS),
        "targets": [keys.ENERGY_FORCE],
        "cutoff": float(cutoff),
        "layout": layout.to_dict(),
        "systems": [{"index": i, "role": role, "structures": len(ids)} for role, i, ids in roles],
        "fingerprint": fingerprint(sorted(e["fingerprint"] for sub in entries.values() for e in sub)),
        "split_sizes": {name: len(split[name]) for name in SUBSETS},
        "subsets": {
            name: {
                "shards": entries[name],
                "counts": dict(subset_counts(entries[name]), virials=int(
                    sum(frames[s].virial is not None for e in entries[name] for s in e["structures"]))),
            }
            for name in SUBSETS
        },
        "energy_statistics": energy_statistics(train_frames, layout, edge_counts, longest),
        "skipped": skipped,
    }
    return index, split


def cutoff_from_config(config: Mapping) -> float:
    """The radius of an energy_force model's graphs: model.cutoff, or 5.0 A for "auto"."""
    cutoff = config["model"].get("cutoff", "auto")
    return DEFAULT_CUTOFF if cutoff == "auto" else float(cutoff)
