"""Masked losses and the gauge correction, checked against hand computations."""
import numpy as np
import pytest
import tensorflow as tf

from conftest import WATER
from deeph_tf.data.pipeline import GraphSet
from deeph_tf.data.shards import GraphBuildOptions, build_graph_sets
from deeph_tf.model.network import model_inputs
from deeph_tf.train.losses import masked_loss, masked_mae


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    graph_dir = tmp_path_factory.mktemp("g")
    build_graph_sets(WATER, graph_dir, GraphBuildOptions(dtype="float64"))
    dataset, _ = GraphSet(graph_dir).dataset("train", batch_size=3)
    return model_inputs(next(iter(dataset)))


def _prediction(batch, node, edge):
    return {"node": tf.constant(node), "edge": tf.constant(edge)}


def test_mae_counts_only_masked_entries(batch):
    node = batch["node_hamiltonian"].numpy() + 0.5
    edge = batch["edge_hamiltonian"].numpy() - 0.25
    prediction = _prediction(batch, node, edge)
    n_node = batch["node_mask"].numpy().sum()
    n_edge = batch["edge_mask"].numpy().sum()
    expected = (0.5 * n_node + 0.25 * n_edge) / (n_node + n_edge)
    assert float(masked_loss(prediction, batch, "mae")) == pytest.approx(expected, rel=1e-12)
    assert float(masked_loss(prediction, batch, "mse")) == pytest.approx((0.25 * n_node + 0.0625 * n_edge) / (n_node + n_edge))
    total, count = masked_mae(prediction, batch)
    assert float(count) == n_node + n_edge == 3 * 24 * 24


def test_gauge_correction_removes_a_per_structure_shift(batch):
    """H_pred = H + mu_g S, a different mu per structure: gauge-corrected error 0, raw error not."""
    mu = np.array([0.3, -1.2, 0.05, 0.0])  # 3 structures + padding graph
    node_graph = batch["node_graph"].numpy()
    edge_graph = node_graph[batch["edge_src"].numpy()]
    node = batch["node_hamiltonian"].numpy() + mu[node_graph][:, None, None] * batch["node_overlap"].numpy()
    edge = batch["edge_hamiltonian"].numpy() + mu[edge_graph][:, None, None] * batch["edge_overlap"].numpy()
    prediction = _prediction(batch, node, edge)
    assert float(masked_loss(prediction, batch, "mae")) > 0.01
    assert float(masked_loss(prediction, batch, "mae", gauge=True)) < 1e-12
    total, count = masked_mae(prediction, batch, gauge=True)
    assert float(total) < 1e-9


def test_unknown_loss_is_rejected(batch):
    with pytest.raises(ValueError, match="loss must be one of"):
        masked_loss({"node": batch["node_hamiltonian"], "edge": batch["edge_hamiltonian"]}, batch, "l3")


def test_wmae_by_hand_and_with_totals_of_all_workers(batch):
    """wmae = mean |d| (1 + |t| / scale), scale = mean |t|. A constant error 0.1 eV gives
    0.1 * (1 + 1) with the batch's own scale; with totals of all workers (here: this batch and
    an identical one) the value is this batch's share, half of it; a doubled scale gives 0.15."""
    from deeph_tf.train.losses import loss_totals

    prediction = _prediction(batch, batch["node_hamiltonian"].numpy() + 0.1, batch["edge_hamiltonian"].numpy() - 0.1)
    own = loss_totals(batch, "wmae", dtype=tf.float64)
    assert float(own["count"]) == 3 * 24 * 24
    assert float(masked_loss(prediction, batch, "wmae")) == pytest.approx(0.2, rel=1e-12)
    assert float(masked_loss(prediction, batch, "wmae", totals=own)) == pytest.approx(0.2, rel=1e-12)
    two_workers = {name: 2 * value for name, value in own.items()}
    assert float(masked_loss(prediction, batch, "wmae", totals=two_workers)) == pytest.approx(0.1, rel=1e-12)
    doubled_scale = dict(own, abs_target=2 * own["abs_target"])
    assert float(masked_loss(prediction, batch, "wmae", totals=doubled_scale)) == pytest.approx(0.15, rel=1e-12)
    assert set(loss_totals(batch, "mae")) == {"count"}
