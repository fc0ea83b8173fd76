"""deeph_tf.infer.evaluate (dtest of block models) without TensorFlow: predictions written in the input's pair order."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from conftest import REPO_ROOT
from deeph_tf.data.block_h5 import BlockSet, read_block_h5
from deeph_tf.data.graph import build_graph, graph_blocks, layout_from_structures
from deeph_tf.data.structure import load_structure
from deeph_tf.infer.evaluate import evaluate, in_pair_order

MOLECULES = REPO_ROOT / "tests" / "fixtures" / "mixed_molecules" / "dft"
SIDS = ("ammonia-000001", "methane-000000")


@pytest.fixture(scope="session", autouse=True)
def quiet_capped_tensorflow():
    """Overrides tests/conftest.py's fixture of the same name: these tests never import TensorFlow."""
    yield


class GraphOrderPredictor:
    """Stands in for :class:`deeph_tf.infer.predict.Predictor`: the reference blocks plus a
    per-pair offset, in the graph's pair order (on-site pairs first), as the real one returns them."""

    target = "hamiltonian"

    def __init__(self, structures):
        self.layout = layout_from_structures(structures)

    def predict_structure(self, structure):
        graph = build_graph(structure, self.layout, targets=(self.target,), dtype=np.float64)
        blocks = graph_blocks(graph, self.layout, self.target)
        shifted = [b + 1e-3 * (k + 1) for k, b in enumerate(blocks.blocks)]
        return graph, BlockSet(blocks.atom_pairs, shifted)


def _datasets(path):
    with h5py.File(path, "r") as f:
        return {name: np.asarray(f[name]) for name in ("atom_pairs", "chunk_shapes", "chunk_boundaries")}


def test_predictions_have_the_input_files_pairs_shapes_and_boundaries(tmp_path):
    structures = [load_structure(MOLECULES / sid) for sid in SIDS]
    predictor = GraphOrderPredictor(structures)
    report, _ = evaluate(predictor, [(sid, MOLECULES / sid) for sid in SIDS], output_dir=tmp_path,
                         physics=False, progress=False)
    assert report.n_scored == len(SIDS)
    for sid, structure in zip(SIDS, structures):
        _, predicted = predictor.predict_structure(structure)
        # the graph's order differs from the file's, so the check below can fail
        assert not np.array_equal(predicted.atom_pairs, structure.read_blocks("hamiltonian").atom_pairs)
        written = tmp_path / "dft" / sid / "hamiltonian_pred.h5"
        expected = _datasets(MOLECULES / sid / "hamiltonian.h5")
        found = _datasets(written)
        for name in expected:
            np.testing.assert_array_equal(found[name], expected[name], err_msg=f"{sid}: {name}")
        blocks = read_block_h5(written)
        for key, block in zip(blocks.keys(), blocks.blocks):
            np.testing.assert_array_equal(block, predicted.block(key))
        # the overlap written next to it is the input's, in its own order
        np.testing.assert_array_equal(_datasets(tmp_path / "dft" / sid / "overlap.h5")["atom_pairs"],
                                      _datasets(MOLECULES / sid / "overlap.h5")["atom_pairs"])


def test_in_pair_order_needs_every_pair_of_the_file():
    template = BlockSet(np.array([[0, 0, 0, 0, 0], [0, 0, 0, 0, 1]]), [np.ones((1, 1)), np.ones((1, 2))])
    same = BlockSet(template.atom_pairs[::-1].copy(), [np.zeros((1, 2)), np.zeros((1, 1))])
    assert in_pair_order(same, template).atom_pairs.tolist() == template.atom_pairs.tolist()
    other = BlockSet(np.array([[0, 0, 0, 0, 0], [0, 0, 0, 1, 0]]), [np.ones((1, 1)), np.ones((2, 1))])
    with pytest.raises(ValueError, match=r"structure toy: the prediction lacks 1 of the reference's 2 atom pairs, "
                                         r"e\.g\. \[R1,R2,R3,i,j\] = \[0, 0, 0, 0, 1\]"):
        in_pair_order(other, template, "toy")
