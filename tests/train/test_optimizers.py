"""build_optimizer: Keras 3 optimizers from the optimizer section; the learning rate is assignable."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from deeph_tf.config import normalize
from deeph_tf.train.optimizers import build_optimizer


def section(**optimizer):
    return normalize({"optimizer": optimizer, "training": {"training_data": {"systems": "s"}}})["optimizer"]


def test_adam_defaults_from_the_schema():
    opt = build_optimizer(section(), learning_rate=1e-3)
    assert type(opt) is keras.optimizers.Adam
    assert (opt.beta_1, opt.beta_2, opt.epsilon) == (0.9, 0.999, 1e-8)
    assert opt.weight_decay is None
    assert opt.clipnorm is None and opt.global_clipnorm is None  # clipping is the step's job
    assert float(opt.learning_rate.numpy()) == pytest.approx(1e-3)
    assert type(build_optimizer({}, 1e-3)) is keras.optimizers.Adam


def test_adamw_weight_decay_and_betas_passed():
    opt = build_optimizer(section(type="adamw", weight_decay=0.05, beta1=0.8, beta2=0.99, epsilon=1e-6), 2e-3)
    assert type(opt) is keras.optimizers.AdamW
    assert opt.weight_decay == 0.05
    assert (opt.beta_1, opt.beta_2, opt.epsilon) == (0.8, 0.99, 1e-6)


def test_adamw_weight_decay_acts():
    # zero gradients: Adam's update is 0, only the decoupled decay w -= lr * wd * w acts
    opt = build_optimizer(section(type="adamw", weight_decay=0.1), learning_rate=0.5)
    w = keras.Variable(np.ones(3, np.float32))
    opt.apply_gradients([(tf.zeros(3), w)])
    np.testing.assert_allclose(w.numpy(), 1.0 - 0.5 * 0.1, rtol=1e-6)


def test_sgd_momentum_and_clip_norm_ignored():
    opt = build_optimizer(section(type="sgd", momentum=0.9, clip_norm=1.0), learning_rate=0.1)
    assert type(opt) is keras.optimizers.SGD
    assert opt.momentum == 0.9
    assert opt.clipnorm is None and opt.global_clipnorm is None


@pytest.mark.parametrize("kind", ["adam", "adamw", "sgd"])
def test_learning_rate_assign_does_not_retrace(kind):
    opt = build_optimizer(section(type=kind), learning_rate=0.1)
    w = keras.Variable(np.zeros(2, np.float32))
    opt.build([w])  # slots created before tracing (else the first call traces twice)
    traces = []

    @tf.function(jit_compile=True)
    def step(g):
        traces.append(1)
        opt.apply_gradients([(g, w)])
        return opt.learning_rate + 0.0

    g = tf.constant([1.0, -1.0])
    step(g)
    for lr in (0.05, 1e-4, 0.3):
        opt.learning_rate.assign(lr)
        seen = step(g)
        assert float(seen) == pytest.approx(lr)
    assert len(traces) == 1
    if kind == "sgd":  # plain SGD: every step moved w by lr * g
        np.testing.assert_allclose(w.numpy(), -np.array([1, -1]) * (0.1 + 0.05 + 1e-4 + 0.3), rtol=1e-6)


def test_bad_configs():
    with pytest.raises(ValueError, match="one of"):
        build_optimizer({"type": "rmsprop"}, 1e-3)
    with pytest.raises(ValueError, match="weight_decay"):
        build_optimizer({"type": "adam", "weight_decay": 0.1}, 1e-3)
    with pytest.raises(ValueError, match="momentum"):
        build_optimizer({"type": "adamw", "momentum": 0.9}, 1e-3)
    with pytest.raises(ValueError, match="unknown optimizer keys"):
        build_optimizer({"type": "adam", "beta_1": 0.9}, 1e-3)
