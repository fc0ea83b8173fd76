"""DeePMD's ener loss: prefactors following the learning rate, the loss and metrics by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from deeph_tf.data import keys
from deeph_tf.train.objectives import EnergyForceObjective, build_objective

LOSS = {"start_pref_e": 0.02, "limit_pref_e": 1.0, "start_pref_f": 1000.0, "limit_pref_f": 1.0,
        "start_pref_v": 0.5, "limit_pref_v": 2.0}


def test_prefactors_follow_the_learning_rate():
    objective = EnergyForceObjective(LOSS, start_lr=1e-3, has_virial=True)
    assert objective.prefactors_at(1e-3) == pytest.approx([0.02, 1000.0, 0.5])
    # DeePMD: pref = limit + (start - limit) * lr / start_lr
    assert objective.prefactors_at(1e-5) == pytest.approx([1.0 + (0.02 - 1.0) * 0.01, 1.0 + 999.0 * 0.01, 2.0 - 1.5 * 0.01])
    objective.update(1e-4)
    np.testing.assert_allclose(objective.prefactors.numpy(), objective.prefactors_at(1e-4))
    assert objective.metric_names == ["loss", "rmse_e", "rmse_f", "rmse_v", "mae_e", "mae_f"]
    assert EnergyForceObjective(LOSS, 1e-3, has_virial=False).metric_names == ["loss", "rmse_e", "rmse_f", "mae_e", "mae_f"]


def _batch():
    """Two structures (2 and 1 atoms) and a padding node; structure 0 has a virial."""
    f64 = lambda x: tf.constant(np.asarray(x, np.float64))  # noqa: E731
    batch = {
        "graph_valid": tf.constant([True, True]), "node_valid": tf.constant([True, True, True, False]),
        "node_graph": tf.constant([0, 0, 1, 2]),
        keys.ENERGY: f64([-10.0, -4.0]),
        keys.FORCES: f64([[1.0, 0, 0], [0, 2.0, 0], [0, 0, 3.0], [0, 0, 0]]),
        keys.VIRIAL: f64([np.eye(3), np.zeros((3, 3))]), keys.VIRIAL_VALID: tf.constant([True, False]),
    }
    prediction = {
        "energy": f64([-10.2, -3.9]),
        "forces": f64([[1.1, 0, 0], [0, 2.0, -0.2], [0, 0, 3.0], [9.0, 9.0, 9.0]]),
        "virial": f64([np.eye(3) * 1.3, np.ones((3, 3))]),
    }
    return batch, prediction


def test_loss_and_metrics_by_hand():
    batch, prediction = _batch()
    objective = EnergyForceObjective(LOSS, start_lr=1e-3, has_virial=True)
    objective.update(1e-3)
    de = np.array([-0.2 / 2, 0.1 / 1])  # per atom
    df = np.array([0.1, 0, 0, 0, 0, -0.2, 0, 0, 0])  # padding node excluded
    dv = (np.eye(3) * 0.3 / 2).reshape(-1)  # structure 0 only
    l2_e, l2_f, l2_v = np.mean(de**2), np.mean(df**2), np.mean(dv**2)
    expected = 0.02 * l2_e + 1000.0 * l2_f + 0.5 * l2_v
    loss, count = objective.loss(prediction, batch), objective.loss_totals(batch, tf.float64)["n_e"]
    assert float(loss) == pytest.approx(expected, rel=1e-12) and float(count) == 2.0
    sums = {k: float(v) for k, v in objective.metric_sums(prediction, batch).items()}
    metrics = objective.finish(dict(sums, loss=float(loss), batches=1.0))
    assert metrics["rmse_e"] == pytest.approx(math.sqrt(l2_e))
    assert metrics["rmse_f"] == pytest.approx(math.sqrt(l2_f))
    assert metrics["rmse_v"] == pytest.approx(math.sqrt(l2_v))
    assert metrics["mae_e"] == pytest.approx(np.mean(np.abs(de)))
    assert metrics["mae_f"] == pytest.approx(np.mean(np.abs(df)))
    # No virial labels in these batches: rmse_v is NaN (not a misleading 0).
    assert math.isnan(objective.finish(dict(sums, n_v=0.0, sq_v=0.0, loss=1.0, batches=1.0))["rmse_v"])


def test_build_objective_picks_by_target():
    from deeph_tf.config import normalize

    config = normalize({"model": {"target": "energy_force"}, "training": {"training_data": {"systems": "d"}}})
    assert isinstance(build_objective(config, 1e-3), EnergyForceObjective)
    config = normalize({"training": {"training_data": {"systems": "d"}}})
    assert build_objective(config, 1e-3).metric_names == ["loss", "mae", "mae_gauge"]


def _structure(batch, prediction, k):
    """Structure k of :func:`_batch` alone, as one data-parallel worker's batch (atoms 0-1 or 2)."""
    atoms = [[0, 1], [2]][k]
    part = {"graph_valid": batch["graph_valid"][k:k + 1], "node_valid": tf.gather(batch["node_valid"], atoms),
            "node_graph": tf.zeros(len(atoms), tf.int32), keys.ENERGY: batch[keys.ENERGY][k:k + 1],
            keys.FORCES: tf.gather(batch[keys.FORCES], atoms), keys.VIRIAL: batch[keys.VIRIAL][k:k + 1],
            keys.VIRIAL_VALID: batch[keys.VIRIAL_VALID][k:k + 1]}
    return part, {"energy": prediction["energy"][k:k + 1], "forces": tf.gather(prediction["forces"], atoms),
                  "virial": prediction["virial"][k:k + 1]}


def test_worker_shares_add_up_to_the_union_loss():
    """Two workers (2 and 1 atoms, one virial label): with the loss totals summed over both, the
    shares add up to the ener loss of the union batch; each worker's own mean would not."""
    batch, prediction = _batch()
    objective = EnergyForceObjective(LOSS, start_lr=1e-3, has_virial=True)
    parts = [_structure(batch, prediction, k) for k in (0, 1)]
    totals = {name: sum(objective.loss_totals(part, tf.float64)[name] for part, _ in parts) for name in ("n_e", "n_f", "n_v")}
    union = float(objective.loss(prediction, batch))
    shares = sum(float(objective.loss(p, part, totals=totals)) for part, p in parts)
    assert shares == pytest.approx(union, rel=1e-12)
    own_means = [float(objective.loss(p, part)) for part, p in parts]
    assert sum(own_means) / 2 != pytest.approx(union, rel=1e-3)  # the reason for the totals
