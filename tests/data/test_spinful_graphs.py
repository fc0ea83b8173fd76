"""Spinful (spin-orbit) data in graphs, shards and batches: A and B parts, an exact round trip
back to the complex blocks, refusal of mixed and of time-reversal-odd data. Real PySCF
GKS+SOC data (tests/fixtures/spinful_model)."""
import shutil

import numpy as np
import pytest

from conftest import REPO_ROOT, WATER
from deeph_tf.data import keys
from deeph_tf.data.block_h5 import read_block_h5, write_block_h5
from deeph_tf.data.errors import DataFormatError
from deeph_tf.data.graph import build_graph, layout_from_structures, spinful_graph_blocks
from deeph_tf.data.pipeline import GraphSet
from deeph_tf.data.shards import GraphBuildError, GraphBuildOptions, build_graph_sets
from deeph_tf.data.structure import load_structure
from deeph_tf.so3.spin_blocks import PAULI

SPINFUL = REPO_ROOT / "tests" / "fixtures" / "spinful_model"


def _folders():
    return sorted(p for p in SPINFUL.iterdir() if (p / "info.json").is_file())


def test_graph_holds_scalar_and_spin_parts_and_round_trips():
    structures = [load_structure(p) for p in _folders()]
    layout = layout_from_structures(structures)
    structure = structures[0]
    graph = build_graph(structure, layout, dtype=np.float64)
    n_c = layout.n_common
    assert graph[keys.node_key("hamiltonian")].shape == (2, n_c, n_c)
    assert graph[keys.node_spin_key("hamiltonian")].shape == (2, 3, n_c, n_c)
    assert graph[keys.edge_spin_key("hamiltonian")].shape == (len(graph[keys.EDGE_SRC]), 3, n_c, n_c)
    assert keys.node_spin_key("overlap") not in graph  # the overlap stays spinless
    blocks = spinful_graph_blocks(graph, layout, "hamiltonian")
    reference = structure.read_blocks("hamiltonian")
    assert blocks.is_complex
    index = reference.pair_index()
    for pair, block in zip(blocks.keys(), blocks.blocks):
        np.testing.assert_allclose(block, reference.blocks[index[pair]], atol=1e-13)
    # spin-orbit coupling is there: the on-site p-p spin part of the halogen is large
    assert np.abs(graph[keys.node_spin_key("hamiltonian")]).max() > 0.1


def test_shards_and_batches_of_spinful_data(tmp_path):
    index = build_graph_sets(str(SPINFUL), tmp_path / "graphs",
                             GraphBuildOptions(dtype="float32", split={"train": 4, "validate": 1, "test": 1, "seed": 0}))
    assert index["spinful"] is True
    graph_set = GraphSet(tmp_path / "graphs")
    assert graph_set.spinful
    dataset, _ = graph_set.dataset("train", batch_size=2)
    batch = next(iter(dataset))
    n_c = graph_set.layout.n_common
    assert batch[keys.node_spin_key("hamiltonian")].shape[1:] == (3, n_c, n_c)
    assert batch[keys.edge_spin_key("hamiltonian")].shape[0] == batch[keys.EDGE_SRC].shape[0]
    spinless = build_graph_sets(str(WATER), tmp_path / "water", GraphBuildOptions())
    assert spinless["spinful"] is False and not GraphSet(tmp_path / "water").spinful


def test_mixed_spinful_and_spinless_dataset_is_refused(tmp_path):
    dft = tmp_path / "dft"
    shutil.copytree(_folders()[0], dft / "soc")
    shutil.copytree(WATER / "0", dft / "water", ignore=shutil.ignore_patterns("euler_angle"))
    with pytest.raises(GraphBuildError, match="mixes spinful and spinless") as error:
        build_graph_sets(str(dft), tmp_path / "graphs", GraphBuildOptions())
    assert "soc/info.json" in str(error.value) and "water/info.json" in str(error.value)


def test_time_reversal_odd_blocks_are_refused(tmp_path):
    folder = tmp_path / "magnetic"
    shutil.copytree(_folders()[0], folder)
    blocks = read_block_h5(folder / "hamiltonian.h5")
    n = blocks.blocks[0].shape[0] // 2
    zeeman = [b + (np.kron(PAULI[2], 0.01 * np.eye(n)) if tuple(p) == (0, 0, 0, 0, 0) else 0)
              for p, b in zip(blocks.atom_pairs, blocks.blocks)]  # a magnetic field on atom 0
    write_block_h5(folder / "hamiltonian.h5", type(blocks)(blocks.atom_pairs, zeeman))
    structure = load_structure(folder)
    with pytest.raises(DataFormatError, match="not time-reversal symmetric"):
        build_graph(structure, layout_from_structures([structure]))
