"""Graph shards: index contents, incremental rebuilds, atomicity, bad-structure policy, split."""
import json
import os

import h5py
import numpy as np
import pytest

from deeph_tf.data.shard_store import GraphBuildError, GraphBuildOptions, load_index
from deeph_tf.data.shards import build_graph_sets


def _snapshot(graph_dir):
    return {p.relative_to(graph_dir).as_posix(): p.read_bytes() for p in sorted(graph_dir.rglob("*")) if p.is_file()}


def test_index_counts_layout_and_split(water_dataset, tmp_path):
    graph_dir = tmp_path / "graphs"
    options = GraphBuildOptions(structures_per_shard=4, split={"train": 8, "validate": 3, "test": 1, "seed": 3})
    index = build_graph_sets(water_dataset.parent, graph_dir, options)
    assert index["layout"]["common_orbital_types_str"] == "s3p2d1"
    assert index["dtype"] == "float32" and index["operators"] == ["overlap", "hamiltonian"]
    counts = {name: sub["counts"]["structures"] for name, sub in index["subsets"].items()}
    assert counts == {"train": 8, "validate": 3, "test": 1}
    assert index["subsets"]["train"]["counts"]["entries_masked"] == 8 * 24 * 24
    split = json.loads((graph_dir / "split.json").read_text())
    assert sorted(split["train"] + split["validate"] + split["test"]) == [f"w{k:02d}" for k in range(12)]
    assert len(index["subsets"]["train"]["shards"]) == 2
    for shard in (s for sub in index["subsets"].values() for s in sub["shards"]):
        assert (graph_dir / "shards" / shard["file"]).stat().st_size == shard["bytes"]
    assert load_index(graph_dir) == index


def test_incremental_rebuild_touches_only_changed_shards(water_dataset, tmp_path, caplog):
    graph_dir = tmp_path / "graphs"
    options = GraphBuildOptions(structures_per_shard=4)
    first = build_graph_sets(water_dataset, graph_dir, options)
    files_before = {s["file"] for s in first["subsets"]["train"]["shards"]}
    mtimes = {p.name: p.stat().st_mtime_ns for p in (graph_dir / "shards").iterdir()}
    again = build_graph_sets(water_dataset, graph_dir, options)
    assert again["fingerprint"] == first["fingerprint"]
    assert {p.name: p.stat().st_mtime_ns for p in (graph_dir / "shards").iterdir()} == mtimes

    h5 = water_dataset / "w05" / "hamiltonian.h5"
    os.utime(h5, ns=(h5.stat().st_atime_ns, h5.stat().st_mtime_ns + 10**9))  # a new time alone changes nothing
    touched = build_graph_sets(water_dataset, graph_dir, options)
    assert touched["fingerprint"] == first["fingerprint"]
    assert {p.name: p.stat().st_mtime_ns for p in (graph_dir / "shards").iterdir()} == mtimes
    with h5py.File(h5, "r+") as f:  # new content does
        entries = f["entries"][()]
        entries[0] += 1e-6
        f["entries"][...] = entries
    third = build_graph_sets(water_dataset, graph_dir, options)
    files_after = {s["file"] for s in third["subsets"]["train"]["shards"]}
    assert len(files_before - files_after) == 1 and len(files_after - files_before) == 1
    assert {p.name for p in (graph_dir / "shards").iterdir()} == files_after  # stale shard removed


def test_failed_build_leaves_previous_shards_untouched(water_dataset, tmp_path):
    graph_dir = tmp_path / "graphs"
    options = GraphBuildOptions(structures_per_shard=4)
    build_graph_sets(water_dataset, graph_dir, options)
    before = _snapshot(graph_dir)
    bad = water_dataset / "w07" / "overlap.h5"
    with h5py.File(bad, "r+") as f:
        entries = f["entries"][()]
        entries[3] = np.nan
        f["entries"][...] = entries
    with pytest.raises(GraphBuildError, match=r"w07.*overlap\.h5.*(NaN|non-finite|finite)"):
        build_graph_sets(water_dataset, graph_dir, options)
    assert _snapshot(graph_dir) == before

    index = build_graph_sets(water_dataset, graph_dir, GraphBuildOptions(structures_per_shard=4, bad_structures="skip"))
    assert [s["structure"] for s in index["skipped"]] == ["w07"]
    assert index["subsets"]["train"]["counts"]["structures"] == 11


def test_truncated_and_missing_files_are_reported(water_dataset, tmp_path):
    (water_dataset / "w02" / "hamiltonian.h5").write_bytes((water_dataset / "w02" / "hamiltonian.h5").read_bytes()[:500])
    (water_dataset / "w03" / "overlap.h5").unlink()
    with pytest.raises(GraphBuildError, match="w02"):
        build_graph_sets(water_dataset, tmp_path / "g", GraphBuildOptions())
    index = build_graph_sets(water_dataset, tmp_path / "g", GraphBuildOptions(bad_structures="skip"))
    reasons = {s["structure"]: s["error"] for s in index["skipped"]}
    assert set(reasons) == {"w02", "w03"}
    assert "hamiltonian.h5" in reasons["w02"] and "overlap.h5" in reasons["w03"]


def test_interrupted_write_never_leaves_a_valid_looking_shard(water_dataset, tmp_path, monkeypatch):
    import tensorflow as tf

    graph_dir = tmp_path / "graphs"
    real_writer = tf.io.TFRecordWriter

    class Crashing(real_writer):
        calls = 0

        def write(self, record):
            Crashing.calls += 1
            if Crashing.calls == 6:
                raise KeyboardInterrupt("simulated kill")
            super().write(record)

    monkeypatch.setattr(tf.io, "TFRecordWriter", Crashing)
    with pytest.raises(KeyboardInterrupt):
        build_graph_sets(water_dataset, graph_dir, GraphBuildOptions(structures_per_shard=4))
    assert load_index(graph_dir) is None
    assert not list((graph_dir / "shards").iterdir())


def test_parallel_build_equals_serial_build(water_dataset, tmp_path):
    serial = build_graph_sets(water_dataset, tmp_path / "a", GraphBuildOptions(structures_per_shard=5, num_workers=1))
    parallel = build_graph_sets(water_dataset, tmp_path / "b", GraphBuildOptions(structures_per_shard=5, num_workers=2))
    assert serial["fingerprint"] == parallel["fingerprint"]
    for shard in serial["subsets"]["train"]["shards"]:
        assert (tmp_path / "a" / "shards" / shard["file"]).read_bytes() == (tmp_path / "b" / "shards" / shard["file"]).read_bytes()


def test_validation_systems_and_split_file(water_dataset, tmp_path):
    split_file = tmp_path / "split.json"
    split_file.write_text(json.dumps({"train": ["w00", "w01"], "validate": ["w02"], "test": ["w03"]}))
    index = build_graph_sets(water_dataset, tmp_path / "g", GraphBuildOptions(split={"file": str(split_file)}))
    assert {k: v["counts"]["structures"] for k, v in index["subsets"].items()} == {"train": 2, "validate": 1, "test": 1}
    split_file.write_text(json.dumps({"train": ["nope"]}))
    with pytest.raises(ValueError, match="nope"):
        build_graph_sets(water_dataset, tmp_path / "g2", GraphBuildOptions(split={"file": str(split_file)}))
    index = build_graph_sets(
        [water_dataset / "w00", water_dataset / "w01"], tmp_path / "g3", GraphBuildOptions(),
        validation_systems=[water_dataset / "w02"],
    )
    assert index["subsets"]["validate"]["counts"]["structures"] == 1
    assert [s["system"] for s in index["subsets"]["train"]["shards"]] == [0, 1]


def test_rebuild_keeps_shards_of_structures_in_two_subsets(water_dataset, tmp_path):
    # The same structures as training and validation data: their train and validate shards have
    # the same fingerprint, and a rebuild must reuse each under its own subset.
    graph_dir = tmp_path / "graphs"
    options = GraphBuildOptions(structures_per_shard=4)
    first = build_graph_sets([water_dataset], graph_dir, options, validation_systems=[water_dataset])
    assert {s["subset"] for s in first["subsets"]["validate"]["shards"]} == {"validate"}
    before = _snapshot(graph_dir)
    again = build_graph_sets([water_dataset], graph_dir, options, validation_systems=[water_dataset])
    assert again == first
    assert _snapshot(graph_dir) == before
