"""tf.data batches: disjoint unions padded to buckets, equal to the per-structure graphs."""
import itertools

import numpy as np
import pytest
import tensorflow as tf

from conftest import requires_shared, shared_path
from deeph_tf.data import keys
from deeph_tf.data.graph import build_graph, layout_from_structures
from deeph_tf.data.buckets import (Bucket, _least_padding_thresholds, bucket_sizes, overall_padding,
                                   padding_fractions)
from deeph_tf.data.pipeline import GraphSet, resolve_batch_size, system_probabilities
from deeph_tf.data.shards import GraphBuildOptions, build_graph_sets
from deeph_tf.data.structure import load_structure


def _unbatch(batch):
    """Split a padded union batch back into per-structure pieces."""
    out = {}
    node_graph = batch["node_graph"].numpy()
    edge_src = batch[keys.EDGE_SRC].numpy()
    valid_edges = batch["edge_valid"].numpy()
    for g, sid in enumerate(batch[keys.STRUCTURE_ID].numpy()):
        if not batch["graph_valid"][g]:
            assert sid == b""
            continue
        nodes = np.nonzero(node_graph == g)[0]
        edges = np.nonzero(valid_edges & np.isin(edge_src, nodes))[0]
        out[sid.decode()] = (nodes, edges)
    return out


def _check_batches(graph_dir, dataset_folder, layout, batches):
    seen = set()
    for batch in batches:
        nodes_cap = batch[keys.SPECIES].shape[0]
        assert not batch["node_valid"].numpy()[-1], "a bucket always keeps a padding node"
        for sid, (nodes, edges) in _unbatch(batch).items():
            reference = build_graph(load_structure(dataset_folder / sid), layout, structure_id=sid)
            np.testing.assert_array_equal(batch[keys.SPECIES].numpy()[nodes], reference[keys.SPECIES])
            np.testing.assert_allclose(batch["node_hamiltonian"].numpy()[nodes], reference["node_hamiltonian"])
            np.testing.assert_allclose(batch["edge_hamiltonian"].numpy()[edges], reference["edge_hamiltonian"])
            np.testing.assert_array_equal(batch[keys.EDGE_SRC].numpy()[edges] - nodes[0], reference[keys.EDGE_SRC])
            np.testing.assert_array_equal(batch[keys.EDGE_MASK].numpy()[edges], reference[keys.EDGE_MASK])
            np.testing.assert_array_equal(batch[keys.EDGE_REVERSE].numpy()[edges] - edges[0], reference[keys.EDGE_REVERSE])
            positions = reference[keys.POSITIONS]
            expected_vectors = positions[reference[keys.EDGE_DST]] - positions[reference[keys.EDGE_SRC]]
            expected_vectors = expected_vectors + reference[keys.EDGE_SHIFT] @ reference[keys.LATTICE]
            np.testing.assert_allclose(batch["edge_vector"].numpy()[edges], expected_vectors, atol=1e-5)
            seen.add(sid)
        padding = ~batch["edge_valid"].numpy()
        assert not batch[keys.EDGE_MASK].numpy()[padding].any()
        assert np.all(batch[keys.EDGE_SRC].numpy()[padding] >= batch["node_valid"].numpy().sum())
        assert nodes_cap % 8 == 0
    return seen


def test_batches_are_padded_disjoint_unions(water_dataset, tmp_path):
    graph_dir = tmp_path / "g"
    build_graph_sets(water_dataset, graph_dir, GraphBuildOptions(structures_per_shard=5))
    graph_set = GraphSet(graph_dir)
    dataset, buckets = graph_set.dataset("train", batch_size=5, shuffle=True, seed=1)
    batches = list(dataset)
    assert [b[keys.STRUCTURE_ID].shape[0] for b in batches] == [5, 5, 5]
    assert len({b[keys.SPECIES].shape[0] for b in batches}) <= len(buckets[0])
    seen = _check_batches(graph_dir, water_dataset, graph_set.layout, batches)
    assert seen == {f"w{k:02d}" for k in range(12)}


@requires_shared
def test_mixed_molecules_in_memory_and_on_disk(tmp_path):
    folder = shared_path("molecules13")
    graph_dir = tmp_path / "g"
    build_graph_sets(folder, graph_dir, GraphBuildOptions(structures_per_shard=3))
    graph_set = GraphSet(graph_dir)
    layout = layout_from_structures(load_structure(p) for p in folder.iterdir() if p.is_dir())
    for storage in ("memory", "disk"):
        dataset, buckets = graph_set.dataset("train", batch_size=4, shuffle=True, seed=0, storage=storage, num_buckets=3)
        batches = list(dataset)
        assert len(buckets[0]) <= 3
        assert _check_batches(graph_dir, folder, layout, batches) == {p.name for p in folder.iterdir() if p.is_dir()}
    masked = sum(int(tf.reduce_sum(tf.cast(b[keys.NODE_MASK], tf.int32)) + tf.reduce_sum(tf.cast(b[keys.EDGE_MASK], tf.int32))) for b in batches)
    assert masked == graph_set.index["subsets"]["train"]["counts"]["entries_masked"]


def test_workers_get_disjoint_complete_shares(water_dataset, tmp_path):
    build_graph_sets(water_dataset, tmp_path / "g", GraphBuildOptions(structures_per_shard=3))
    graph_set = GraphSet(tmp_path / "g")
    shares = []
    for worker in range(2):
        dataset, _ = graph_set.dataset("train", batch_size=2, worker_index=worker, num_workers=2)
        shares.append({sid for b in dataset for sid in b[keys.STRUCTURE_ID].numpy() if sid})
    assert not shares[0] & shares[1]
    assert len(shares[0] | shares[1]) == 12


def test_repeat_and_reshuffle_is_seeded(water_dataset, tmp_path):
    build_graph_sets(water_dataset, tmp_path / "g", GraphBuildOptions())
    graph_set = GraphSet(tmp_path / "g")

    def order(seed):
        dataset, _ = graph_set.dataset("train", batch_size=4, shuffle=True, repeat=True, seed=seed)
        return [tuple(b[keys.STRUCTURE_ID].numpy()) for b in dataset.take(6)]

    assert order(3) == order(3)
    assert order(3) != order(4)


def test_bucket_sizes_cover_the_worst_batch():
    rng = np.random.default_rng(0)
    atoms = rng.integers(3, 40, size=200)
    edges = atoms * rng.integers(4, 12, size=200)
    buckets = bucket_sizes(atoms, edges, batch_size=8, num_buckets=4)
    assert 1 <= len(buckets) <= 4
    assert buckets[-1].n_nodes > np.sort(atoms)[-8:].sum()
    assert buckets[-1].n_edges >= np.sort(edges)[-8:].sum()
    assert all(b.n_nodes % 8 == 0 and b.n_edges % 8 == 0 for b in buckets)


def test_least_padding_thresholds_are_optimal():
    """Against brute force over every choice of at most k sizes, on small random sets."""
    rng = np.random.default_rng(3)
    for _ in range(60):
        totals = rng.integers(1, 50, size=int(rng.integers(1, 12)))
        k = int(rng.integers(1, 5))
        sizes = _least_padding_thresholds(totals, k)

        def padding(chosen):
            return sum(min(c for c in chosen if c >= t) - t for t in totals)

        values = sorted(set(totals.tolist()))
        best = min(padding(list(c) + [values[-1]]) for r in range(k)
                   for c in itertools.combinations(values[:-1], r))
        assert len(sizes) <= k and sizes[-1] == values[-1] and padding(sizes) == best


def test_buckets_of_a_mixed_molecule_and_crystal_set_pad_little():
    """Small molecules with a few large crystal cells (the universal set's shape): quantile
    buckets padded about 2/3 of the edge slots there; the least-padding buckets keep it lower."""
    rng = np.random.default_rng(0)
    atoms = np.concatenate([rng.integers(2, 11, size=190), np.full(30, 8)])
    edges = np.concatenate([atoms[:190] * (atoms[:190] - 1), rng.integers(200, 1070, size=30)])
    buckets = bucket_sizes(atoms, edges, batch_size=4, num_buckets=4)
    report = padding_fractions(atoms, edges, 4, buckets)
    assert len(buckets) <= 4 and overall_padding(report)["padded_edge_fraction"] < 0.45


def test_padding_fractions_by_hand_and_on_random_sets():
    # 3 structures of 2 atoms / 6 edges, batches of 2: every epoch one full batch (4 nodes, 12 edges)
    # and one single (2 nodes, 6 edges); buckets (8, 12) and (16, 24): the full batch takes the first.
    report = padding_fractions([2, 2, 2], [6, 6, 6], 2, [Bucket(8, 12), Bucket(16, 24)], epochs=3)
    assert [r["batch_share"] for r in report] == [1.0, 0.0]
    assert report[0]["padded_edge_fraction"] == pytest.approx((0.0 + 0.5) / 2)
    assert report[0]["padded_node_fraction"] == pytest.approx((0.5 + 0.75) / 2)
    assert np.isnan(report[1]["padded_edge_fraction"])
    pooled = overall_padding(report)  # only the first bucket is used: its figures
    assert pooled["padded_edge_fraction"] == pytest.approx(0.25) and pooled["edge_slots_per_batch"] == 12
    assert pooled["padded_node_fraction"] == pytest.approx(0.625) and pooled["node_slots_per_batch"] == 8
    # two used buckets pool by share x size: 1/2 of batches at 10 slots, 10% padded; 1/2 at 30 slots, 50%
    two = [{"n_nodes": 4, "n_edges": 10, "batch_share": 0.5, "padded_node_fraction": 0.0, "padded_edge_fraction": 0.1},
           {"n_nodes": 4, "n_edges": 30, "batch_share": 0.5, "padded_node_fraction": 0.5, "padded_edge_fraction": 0.5}]
    assert overall_padding(two)["padded_edge_fraction"] == pytest.approx((0.5 * 1 + 0.5 * 15) / 20)
    assert overall_padding(two)["padded_node_fraction"] == pytest.approx(0.25)
    rng = np.random.default_rng(1)
    atoms = rng.integers(3, 40, size=120)
    edges = atoms * rng.integers(4, 12, size=120)
    buckets = bucket_sizes(atoms, edges, batch_size=8, num_buckets=4)
    report = padding_fractions(atoms, edges, 8, buckets)
    assert sum(r["batch_share"] for r in report) == pytest.approx(1.0)
    assert all(0.0 <= r["padded_edge_fraction"] < 1.0 for r in report if r["batch_share"] > 0)
    with pytest.raises(ValueError, match="fits no bucket"):
        padding_fractions(atoms, edges, 8, buckets[:1] if len(buckets) > 1 else [Bucket(8, 8)])


def test_deepmd_batch_size_and_system_probabilities():
    assert resolve_batch_size(4, [[3], [9]]) == [4, 4]
    assert resolve_batch_size([1, 2], [[3], [9]]) == [1, 2]
    assert resolve_batch_size("auto:32", [[3, 3], [9]]) == [11, 4]
    assert resolve_batch_size("auto", [[32]]) == [1]
    np.testing.assert_allclose(system_probabilities("prob_uniform", [1, 5]), [0.5, 0.5])
    np.testing.assert_allclose(system_probabilities("prob_sys_size", [1, 3]), [0.25, 0.75])
    np.testing.assert_allclose(system_probabilities("prob_sys_size; 0:2:0.6; 2:3:0.4", [1, 3, 7]), [0.15, 0.45, 0.4])
    np.testing.assert_allclose(system_probabilities("prob_uniform", [1, 3], sys_probs=[1, 3]), [0.25, 0.75])
    with pytest.raises(ValueError, match="does not fit"):
        system_probabilities("prob_sys_size; 0:4:1.0", [1, 2])


def test_repeated_batches_never_hold_a_structure_twice(tmp_path):
    """Regression: repeating before batching let a batch wrap into the next epoch and hold the
    largest structure twice, overflowing the worst-case bucket mid-training."""
    from conftest import REPO_ROOT

    fixture = REPO_ROOT / "tests" / "fixtures" / "mixed_molecules" / "dft"
    ids = ["water-000002", "methanol-000005", "ammonia-000001"]  # 3, 6 and 4 atoms
    (tmp_path / "split.json").write_text(__import__("json").dumps({"train": ids, "validate": [], "test": []}))
    build_graph_sets(fixture, tmp_path / "g", GraphBuildOptions(split={"file": str(tmp_path / "split.json")}))
    graph_set = GraphSet(tmp_path / "g")
    for batch_size in (2, 5):  # 5 > the 3 structures
        dataset, _ = graph_set.dataset("train", batch_size=batch_size, shuffle=True, repeat=True, seed=1, num_buckets=1)
        for batch in dataset.take(12):
            sids = [s for s in batch[keys.STRUCTURE_ID].numpy() if s]
            assert len(sids) == len(set(sids))
