"""Force-field graph sets: the shard store's guarantees for radius graphs with energy/force labels."""
import shutil

import numpy as np
import pytest

from deeph_tf.data import ff_graphs
from deeph_tf.data.ff_graphs import build_force_field_sets
from deeph_tf.data.poscar import Poscar, read_poscar, write_poscar
from deeph_tf.data.shard_store import GraphBuildError, GraphBuildOptions, load_index

from conftest import REPO_ROOT

#: PySCF water molecules with force.h5 (energies, analytic forces).
WATER = REPO_ROOT / "examples" / "water" / "dft"
CUTOFF = 4.0


@pytest.fixture
def labelled(tmp_path):
    """A dft/ folder of 8 labelled water molecules m0..m7 (POSCAR, info.json, force.h5)."""
    dft = tmp_path / "inputs" / "dft"
    for k in range(8):
        shutil.copytree(WATER / f"{k:06d}", dft / f"m{k}",
                        ignore=shutil.ignore_patterns("*.h5", "*.txt", "!force.h5"))
        shutil.copy2(WATER / f"{k:06d}" / "force.h5", dft / f"m{k}" / "force.h5")
    return dft


@pytest.fixture
def graph_calls(monkeypatch):
    """Structure ids whose radius graph was built; ids in ``.fail`` raise instead."""
    real = ff_graphs.force_field_graph

    class Calls(list):
        fail = set()

    calls = Calls()

    def counting(frame, layout, cutoff, dtype=np.float32, structure_id=""):
        calls.append(structure_id)
        if structure_id in calls.fail:
            raise ValueError(f"{structure_id}: simulated failure")
        return real(frame, layout, cutoff, dtype, structure_id)

    monkeypatch.setattr(ff_graphs, "force_field_graph", counting)
    return calls


def _options(**kw):
    return GraphBuildOptions(structures_per_shard=3, split={"train": 6, "validate": 1, "test": 1, "seed": 0}, **kw)


def _move(folder):
    """Shift every atom of one structure by 0.01 Angstrom (its frame, so its shard, changes)."""
    poscar = read_poscar(folder / "POSCAR")
    write_poscar(folder / "POSCAR", Poscar(poscar.lattice, poscar.species, poscar.positions + 0.01))


def _snapshot(graph_dir):
    return {p.relative_to(graph_dir).as_posix(): p.read_bytes() for p in sorted(graph_dir.rglob("*")) if p.is_file()}


def test_radius_graphs_are_built_only_for_shards_written(labelled, tmp_path, graph_calls):
    graph_dir = tmp_path / "graphs"
    first = build_force_field_sets(labelled, graph_dir, CUTOFF, options=_options())
    assert sorted(graph_calls) == [f"m{k}" for k in range(8)]
    assert {n: s["counts"]["structures"] for n, s in first["subsets"].items()} == {"train": 6, "validate": 1, "test": 1}
    assert first["energy_statistics"]["structures"] == 6 and load_index(graph_dir) == first
    before = _snapshot(graph_dir)

    graph_calls.clear()
    assert build_force_field_sets(labelled, graph_dir, CUTOFF, options=_options()) == first
    assert graph_calls == [] and _snapshot(graph_dir) == before

    _move(labelled / "m0")
    third = build_force_field_sets(labelled, graph_dir, CUTOFF, options=_options())
    train = [s for s in first["subsets"]["train"]["shards"] if "m0" in s["structures"]]
    files = {s["file"] for sub in third["subsets"].values() for s in sub["shards"]}
    assert len(graph_calls) == len(train[0]["structures"]) and train[0]["file"] not in files
    assert {p.name for p in (graph_dir / "shards").iterdir()} == files  # the stale shard is removed


def test_failed_build_leaves_the_previous_set_untouched(labelled, tmp_path, graph_calls):
    graph_dir = tmp_path / "graphs"
    build_force_field_sets(labelled, graph_dir, CUTOFF, options=_options())
    before = _snapshot(graph_dir)
    _move(labelled / "m5")
    graph_calls.fail = {"m5"}
    with pytest.raises(GraphBuildError, match="m5.*simulated failure"):
        build_force_field_sets(labelled, graph_dir, CUTOFF, options=_options())
    assert _snapshot(graph_dir) == before


def test_skipped_frames_stay_listed_when_their_shard_is_reused(labelled, tmp_path, graph_calls):
    graph_dir = tmp_path / "graphs"
    graph_calls.fail = {"m3"}
    first = build_force_field_sets(labelled, graph_dir, CUTOFF, options=_options(bad_structures="skip"))
    assert [s["structure"] for s in first["skipped"]] == ["m3"]
    assert "m3" not in {sid for name in ("train", "validate", "test") for sid in first["subsets"][name]["shards"][0]["structures"]}
    graph_calls.clear()
    again = build_force_field_sets(labelled, graph_dir, CUTOFF, options=_options(bad_structures="skip"))
    assert graph_calls == [] and again["skipped"] == first["skipped"] and again == first


def test_a_build_without_training_structures_removes_its_shards(labelled, tmp_path, graph_calls):
    graph_dir = tmp_path / "graphs"
    graph_calls.fail = {f"m{k}" for k in range(8)}
    with pytest.raises(ValueError, match="no training structures"):
        build_force_field_sets(labelled, graph_dir, CUTOFF, options=_options(bad_structures="skip"))
    assert load_index(graph_dir) is None and not list((graph_dir / "shards").iterdir())
