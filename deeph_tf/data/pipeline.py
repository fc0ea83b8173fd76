"""tf.data pipeline over graph shards: shuffle, batch as disjoint unions, pad to buckets, prefetch.

A batch is one big graph: the nodes and edges of up to ``batch_size`` structures side by side,
edge indices shifted accordingly. Batches are padded to one of a few bucket sizes (like DeepH's
``multi_way_jit_num``), so an XLA-compiled step sees only that many shapes. Padding nodes
belong to a dummy graph (index ``batch_size``), padding edges join the first padding node to
itself with a zero vector; every mask is False there.

Batch fields (n_nodes, n_edges: the bucket sizes; n_graphs = batch_size):

    species, atomic_numbers      [n_nodes] int32
    positions                    [n_nodes, 3] float, Angstrom
    node_graph                   [n_nodes] int32, graph of each node (n_graphs for padding)
    node_valid                   [n_nodes] bool
    edge_src, edge_dst           [n_edges] int32 (batch node indices)
    edge_reverse                 [n_edges] int32, Hermitian partner edge (-R, j, i)
    edge_shift_vector            [n_edges, 3] float, R @ lattice, Angstrom
    edge_vector                  [n_edges, 3] float, r_j + R @ lattice - r_i, Angstrom
    edge_valid                   [n_edges] bool
    node_mask / edge_mask        [n_nodes|n_edges, n_c, n_c] bool (DeepH entry masks)
    node_<op> / edge_<op>        [n_nodes|n_edges, n_c, n_c] float (op: overlap, targets)
    node_<op>_spin / edge_<op>_spin  [n_nodes|n_edges, 3, n_c, n_c] float, spinful sets only
                                 (axial part B of H = I (x) A + i sum_k sigma_k (x) B_k)
    lattice                      [n_graphs, 3, 3] float
    graph_valid                  [n_graphs] bool
    structure_id                 [n_graphs] string ("" for padding)

Field names are the constants of :mod:`deeph_tf.data.keys`. Force-field sets (operators
``(keys.ENERGY_FORCE,)``) have no masks or blocks; instead

    forces                       [n_nodes, 3] float, eV/Angstrom
    energy                       [n_graphs] float, eV (total)
    virial                       [n_graphs, 3, 3] float, eV; virial_valid [n_graphs] bool
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from deeph_tf.data import keys
from deeph_tf.data.buckets import Bucket, bucket_sizes
from deeph_tf.data.layout import OrbitalLayout
from deeph_tf.data.shard_store import INDEX_NAME, SHARD_FOLDER, load_index

logger = logging.getLogger(__name__)

_NODE_FIELDS = (keys.ATOMIC_NUMBERS, keys.SPECIES, keys.POSITIONS, keys.NODE_MASK)
_EDGE_FIELDS = (keys.EDGE_SHIFT, keys.EDGE_MASK)
#: Force-field sets: per-node and per-structure label fields (no blocks, no masks).
_FF_NODE_FIELDS = (keys.ATOMIC_NUMBERS, keys.SPECIES, keys.POSITIONS, keys.FORCES)
_FF_EDGE_FIELDS = (keys.EDGE_SHIFT,)
_FF_GRAPH_FIELDS = (keys.ENERGY, keys.VIRIAL, keys.VIRIAL_VALID)


def system_probabilities(auto_prob: str, n_batches: Sequence[int], sys_probs: Optional[Sequence[float]] = None) -> np.ndarray:
    """DeePMD's system weights: ``sys_probs``, or ``auto_prob`` ("prob_uniform", "prob_sys_size",
    or "prob_sys_size; 0:2:0.6; 2:3:0.4": systems [0,2) share 0.6 by size, [2,3) share 0.4)."""
    n = len(n_batches)
    if sys_probs is not None:
        if len(sys_probs) != n:
            raise ValueError(f"sys_probs has {len(sys_probs)} entries for {n} systems")
        p = np.asarray(sys_probs, dtype=np.float64)
        return p / p.sum()
    style = auto_prob.strip()
    sizes = np.maximum(np.asarray(n_batches, dtype=np.float64), 1.0)
    if style == "prob_uniform":
        return np.full(n, 1.0 / n)
    if style == "prob_sys_size":
        return sizes / sizes.sum()
    if style.startswith("prob_sys_size;"):
        p = np.zeros(n)
        for block in style.split(";")[1:]:
            start, stop, weight = block.strip().split(":")
            start, stop, weight = int(start), int(stop), float(weight)
            if not 0 <= start < stop <= n:
                raise ValueError(f"auto_prob block {block.strip()!r} does not fit {n} systems")
            p[start:stop] = weight * sizes[start:stop] / sizes[start:stop].sum()
        return p / p.sum()
    raise ValueError(f"unknown auto_prob {auto_prob!r}")


def resolve_batch_size(batch_size, system_atoms: Sequence[Sequence[int]]) -> List[int]:
    """Per-system batch sizes from DeePMD's int | list | "auto" | "auto:N".

    "auto:N": the smallest b with b * natoms >= N, natoms being the system's median atom
    count (structures of one system may differ); "auto" means "auto:32".
    """
    n = len(system_atoms)
    if isinstance(batch_size, int):
        return [batch_size] * n
    if isinstance(batch_size, list):
        if len(batch_size) != n:
            raise ValueError(f"batch_size lists {len(batch_size)} values for {n} systems")
        return [int(b) for b in batch_size]
    if isinstance(batch_size, str) and batch_size.startswith("auto"):
        target = int(batch_size.split(":")[1]) if ":" in batch_size else 32
        return [max(1, int(-(-target // max(1, int(np.median(atoms)))))) for atoms in system_atoms]
    raise ValueError(f"invalid batch_size {batch_size!r}")


class GraphSet:
    """An index of graph shards (``graph_dir/index.json``) and datasets over one subset."""

    def __init__(self, graph_dir):
        self.graph_dir = Path(graph_dir)
        index = load_index(self.graph_dir)
        if index is None:
            raise FileNotFoundError(f"{self.graph_dir / INDEX_NAME}: no graph index (build it with dgraph)")
        self.index = index
        self.layout = OrbitalLayout.from_dict(index["layout"])
        self.operators: Tuple[str, ...] = tuple(index["operators"])
        self.dtype: str = index["dtype"]
        #: Spinful (spin-orbit) targets: batches carry the spin parts ``node_<op>_spin``.
        self.spinful: bool = bool(index.get("spinful", False))

    def shards(self, subset: str) -> List[dict]:
        return self.index["subsets"][subset]["shards"]

    def systems(self, subset: str) -> List[int]:
        return sorted({s["system"] for s in self.shards(subset)})

    def dataset(
        self,
        subset: str,
        batch_size=1,
        *,
        shuffle: bool = False,
        repeat: bool = False,
        seed: int = 0,
        num_buckets: int = 4,
        storage: str = "memory",
        shuffle_buffer: int = 1024,
        worker_index: int = 0,
        num_workers: int = 1,
        auto_prob: str = "prob_sys_size",
        sys_probs: Optional[Sequence[float]] = None,
        prefetch: bool = True,
    ):
        """A ``tf.data.Dataset`` of padded disjoint-union batches of one subset.

        Args:
            subset: "train", "validate" or "test".
            batch_size: structures per batch: int, per-system list, "auto" or "auto:N".
            shuffle, repeat, seed: training-style iteration (reshuffled every epoch).
            num_buckets: distinct padded sizes per system.
            storage: "memory" caches parsed graphs in RAM; "disk" streams from the shards.
            worker_index, num_workers: this worker's disjoint share (whole shard files when
                there are at least ``num_workers`` of them, else every num_workers-th record).
            auto_prob, sys_probs: how systems are mixed (DeePMD semantics).
        Returns:
            (dataset, buckets): buckets maps system -> list of :class:`Bucket`.
        """
        import tensorflow as tf

        from deeph_tf.data.records import make_parser

        if storage not in ("memory", "disk"):
            raise ValueError(f"storage must be 'memory' or 'disk', got {storage!r}")
        systems = self.systems(subset)
        if not systems:
            raise ValueError(f"{self.graph_dir}: subset {subset!r} has no structures")
        per_system_atoms = [[n for s in self.shards(subset) if s["system"] == k for n in s["n_atoms"]] for k in systems]
        batch_sizes = resolve_batch_size(batch_size, per_system_atoms)
        max_graphs = max(batch_sizes)
        parse = make_parser(self.operators, self.dtype, self.layout.n_common, self.spinful)
        datasets, buckets, n_batches = [], {}, []
        for position, system in enumerate(systems):
            shards = [s for s in self.shards(subset) if s["system"] == system]
            files = [str(self.graph_dir / SHARD_FOLDER / s["file"]) for s in shards]
            record_shard = False
            if num_workers > 1:
                if len(files) >= num_workers:
                    files = files[worker_index::num_workers]
                    shards = shards[worker_index::num_workers]
                else:
                    record_shard = True
                    logger.warning(
                        "subset %s system %d has %d shard file(s) for %d workers: every worker reads all "
                        "files and keeps every %d-th record (use a smaller structures_per_shard)",
                        subset, system, len(files), num_workers, num_workers,
                    )
            n_atoms = [n for s in shards for n in s["n_atoms"]]
            n_edges = [n for s in shards for n in s["n_edges"]]
            b = batch_sizes[position]
            system_buckets = bucket_sizes(n_atoms, n_edges, b, num_buckets, seed)
            buckets[system] = system_buckets
            n_batches.append(max(1, len(n_atoms) // b))
            files_ds = tf.data.Dataset.from_tensor_slices(files)
            if shuffle and storage == "disk":
                files_ds = files_ds.shuffle(len(files), seed=seed + system, reshuffle_each_iteration=True)
            ds = files_ds.interleave(
                tf.data.TFRecordDataset,
                cycle_length=min(4, len(files)),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=not shuffle,
            )
            if record_shard:
                ds = ds.shard(num_workers, worker_index)
            ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            if storage == "memory":
                ds = ds.cache()
            if shuffle:
                buffer = len(n_atoms) if storage == "memory" else min(shuffle_buffer, len(n_atoms))
                ds = ds.shuffle(max(buffer, 1), seed=seed + 1000 * system, reshuffle_each_iteration=True)
            # Batch within an epoch, then repeat: a batch never holds a structure twice (an epoch's
            # last batch may be smaller), so the worst-case bucket (the b largest) always fits.
            ds = ds.ragged_batch(b, drop_remainder=False)
            if repeat:
                ds = ds.repeat()
            ds = ds.map(
                _union_and_pad_fn(self.operators, system_buckets, max_graphs, self.layout.n_common, self.spinful),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            )
            datasets.append(ds)
        if len(datasets) == 1:
            dataset = datasets[0]
        else:
            weights = system_probabilities(auto_prob, n_batches, sys_probs)
            if repeat:
                dataset = tf.data.Dataset.sample_from_datasets(datasets, weights=weights.tolist(), seed=seed)
            else:
                dataset = datasets[0]
                for other in datasets[1:]:
                    dataset = dataset.concatenate(other)
        if prefetch:
            dataset = dataset.prefetch(tf.data.AUTOTUNE)
        return dataset, buckets


def _union_and_pad_fn(operators: Sequence[str], buckets: Sequence[Bucket], max_graphs: int, n_common: int,
                      spinful: bool = False):
    """The map function: ragged batch of graphs -> one padded disjoint-union graph."""
    import tensorflow as tf

    bucket_nodes = tf.constant([b.n_nodes for b in buckets], tf.int32)
    bucket_edges = tf.constant([b.n_edges for b in buckets], tf.int32)
    if keys.is_energy_force(operators):
        node_fields, edge_fields, graph_fields = _FF_NODE_FIELDS, _FF_EDGE_FIELDS, _FF_GRAPH_FIELDS
    else:
        spin_ops = keys.spin_operators(operators, spinful)
        node_fields = _NODE_FIELDS + tuple(keys.node_key(op) for op in operators) + tuple(map(keys.node_spin_key, spin_ops))
        edge_fields = _EDGE_FIELDS + tuple(keys.edge_key(op) for op in operators) + tuple(map(keys.edge_spin_key, spin_ops))
        graph_fields = ()

    def pad_to(value, size, fill=0):
        extra = size - tf.shape(value)[0]
        paddings = [[0, extra]] + [[0, 0]] * (len(value.shape) - 1)
        return tf.pad(value, paddings, constant_values=tf.cast(fill, value.dtype))

    def union_and_pad(batch):
        species = batch[keys.SPECIES]
        edge_src_ragged = batch[keys.EDGE_SRC]
        n_graphs = tf.cast(species.nrows(), tf.int32)
        node_offsets = tf.cast(species.row_starts(), tf.int32)
        edge_offsets = tf.cast(edge_src_ragged.row_starts(), tf.int32)
        node_graph = tf.cast(species.value_rowids(), tf.int32)
        edge_graph = tf.cast(edge_src_ragged.value_rowids(), tf.int32)
        n_nodes = tf.shape(node_graph)[0]
        n_edges = tf.shape(edge_graph)[0]
        fits = tf.logical_and(bucket_nodes > n_nodes, bucket_edges >= n_edges)
        choice = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)
        tf.debugging.assert_equal(tf.reduce_any(fits), True, message="batch larger than every bucket")
        nodes_cap, edges_cap = bucket_nodes[choice], bucket_edges[choice]

        out = {}
        for name in node_fields:
            out[name] = pad_to(batch[name].flat_values, nodes_cap)
        for name in edge_fields:
            out[name] = pad_to(batch[name].flat_values, edges_cap)
        for name in graph_fields:  # one value per structure: [max_graphs, ...]
            out[name] = pad_to(batch[name], max_graphs)
        shift_edge_offsets = tf.gather(node_offsets, edge_graph)
        padding_node = n_nodes  # first padding node (buckets always leave one)
        out[keys.EDGE_SRC] = pad_to(edge_src_ragged.flat_values + shift_edge_offsets, edges_cap, padding_node)
        out[keys.EDGE_DST] = pad_to(batch[keys.EDGE_DST].flat_values + shift_edge_offsets, edges_cap, padding_node)
        reverse = batch[keys.EDGE_REVERSE].flat_values + tf.gather(edge_offsets, edge_graph)
        out[keys.EDGE_REVERSE] = tf.concat([reverse, tf.range(n_edges, edges_cap)], axis=0)
        out[keys.NODE_GRAPH] = pad_to(node_graph, nodes_cap, max_graphs)
        out[keys.NODE_VALID] = tf.range(nodes_cap) < n_nodes
        out[keys.EDGE_VALID] = tf.range(edges_cap) < n_edges

        lattice = batch[keys.LATTICE]  # [g, 3, 3]
        shift = tf.cast(batch[keys.EDGE_SHIFT].flat_values, lattice.dtype)
        shift_vector = tf.einsum("ea,eab->eb", shift, tf.gather(lattice, edge_graph))
        positions = batch[keys.POSITIONS].flat_values
        src = edge_src_ragged.flat_values + shift_edge_offsets
        dst = batch[keys.EDGE_DST].flat_values + shift_edge_offsets
        vector = tf.gather(positions, dst) + shift_vector - tf.gather(positions, src)
        out[keys.EDGE_SHIFT_VECTOR] = pad_to(shift_vector, edges_cap)
        out[keys.EDGE_VECTOR] = pad_to(vector, edges_cap)
        out[keys.LATTICE] = pad_to(lattice, max_graphs)
        out[keys.GRAPH_VALID] = tf.range(max_graphs) < n_graphs
        ids = batch[keys.STRUCTURE_ID]
        out[keys.STRUCTURE_ID] = tf.concat([ids, tf.fill([max_graphs - n_graphs], "")], axis=0)
        return out

    return union_and_pad

