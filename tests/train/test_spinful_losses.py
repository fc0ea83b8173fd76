"""Losses and metrics of spinful targets: the (A, B) entries give the MAE over the real and
imaginary parts of the complex blocks, the gauge shift acts on A only, loss_totals count 4 per
entry. Real GKS+SOC data (tests/fixtures/spinful_model) and a tiny spinful model's prediction."""
import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO_ROOT
from deeph_tf.data import keys
from deeph_tf.data.pipeline import GraphSet
from deeph_tf.data.shards import GraphBuildOptions, build_graph_sets
from deeph_tf.model.network import HamiltonianModel, model_inputs
from deeph_tf.so3.spin_blocks import merge_spinful
from deeph_tf.train.losses import loss_totals, masked_loss, masked_mae
from deeph_tf.train.objectives import BlockObjective

SPINFUL = REPO_ROOT / "tests" / "fixtures" / "spinful_model"


@pytest.fixture(scope="module")
def prediction_and_batch(tmp_path_factory):
    graph_dir = tmp_path_factory.mktemp("graphs")
    build_graph_sets(str(SPINFUL), graph_dir, GraphBuildOptions(dtype="float64", split={"train": 6, "validate": 0,
                                                                                         "test": 0, "seed": 0}))
    graph_set = GraphSet(graph_dir)
    batch = next(iter(graph_set.dataset("train", batch_size=3)[0]))
    model = HamiltonianModel(graph_set.layout.elements, graph_set.layout.common_shells, irreps_hidden="4x0e+2x1o+2x2e",
                             num_blocks=1, lmax_sh=2, num_radial_basis=4, radial_hidden=[4], cutoff=5.0,
                             spinful=True, dtype="float64")
    return model(model_inputs(batch)), batch


def _complex(prediction, batch, part):
    """Predicted and reference complex blocks and the mask repeated over the 2x2 spin blocks."""
    valid = batch[f"{part}_valid"].numpy()
    op = "hamiltonian"
    key, spin_key = (keys.node_key(op), keys.node_spin_key(op)) if part == "node" else (keys.edge_key(op), keys.edge_spin_key(op))
    pred = merge_spinful(prediction[part].numpy()[valid], prediction[f"{part}_spin"].numpy()[valid])
    ref = merge_spinful(batch[key].numpy()[valid], batch[spin_key].numpy()[valid])
    mask = np.tile(batch[keys.NODE_MASK if part == "node" else keys.EDGE_MASK].numpy()[valid], (1, 2, 2))
    return pred, ref, mask


def test_spinful_mae_is_the_mean_over_real_and_imaginary_parts(prediction_and_batch):
    prediction, batch = prediction_and_batch
    total, count = 0.0, 0
    for part in ("node", "edge"):
        pred, ref, mask = _complex(prediction, batch, part)
        d = (pred - ref)[mask]
        total += np.abs(d.real).sum() + np.abs(d.imag).sum()
        count += 2 * d.size
    abs_sum, n = masked_mae(prediction, batch)
    assert float(abs_sum / n) == pytest.approx(total / count, rel=1e-12)
    assert float(masked_loss(prediction, batch, "mae")) == pytest.approx(total / count, rel=1e-12)
    assert float(loss_totals(batch, dtype=tf.float64)["count"]) == pytest.approx(count / 2)
    # spin=True: the B entries alone, spin=False: the A entries alone
    scalar, n_scalar = masked_mae(prediction, batch, spin=False)
    vector, n_vector = masked_mae(prediction, batch, spin=True)
    assert float(n_vector) == pytest.approx(3 * float(n_scalar))
    assert float(scalar + vector) == pytest.approx(float(abs_sum), rel=1e-12)


def test_spinful_gauge_acts_on_the_scalar_part_only(prediction_and_batch):
    prediction, batch = prediction_and_batch
    shifted = dict(prediction)
    shifted["node"] = prediction["node"] + 0.3 * tf.cast(batch[keys.node_key("overlap")], tf.float64)
    shifted["edge"] = prediction["edge"] + 0.3 * tf.cast(batch[keys.edge_key("overlap")], tf.float64)
    gauge, _ = masked_mae(shifted, batch, gauge=True)
    plain, _ = masked_mae(prediction, batch, gauge=True)
    # one structure per mu in the batch: a common +0.3 S in all three is removed exactly
    assert float(gauge) == pytest.approx(float(plain), rel=1e-9)


def test_objective_reports_mae_spin(prediction_and_batch):
    prediction, batch = prediction_and_batch
    objective = BlockObjective("mae", "hamiltonian", spinful=True)
    assert objective.metric_names == ["loss", "mae", "mae_gauge", "mae_spin"]
    sums = {k: float(v) for k, v in objective.metric_sums(prediction, batch).items()}
    sums.update(loss=0.0, batches=1.0)
    out = objective.finish(sums)
    vector, n_vector = masked_mae(prediction, batch, spin=True)
    assert out["mae_spin"] == pytest.approx(float(vector / n_vector))
