"""The Backbone layer: argument checks, a real build(), an exact get_config round trip, and the
weight order the models (and so checkpoints, which store ``model.weights`` as a list) rely on."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from deeph_tf.model.backbone import Backbone
from deeph_tf.model.energy import FRAME_ROTATION, EnergyForceModel
from deeph_tf.model.network import HamiltonianModel

OPTIONS = dict(irreps_hidden="8x0e+4x1o+2x2e", num_blocks=2, lmax_sh=2, cutoff=4.0, num_radial_basis=4, radial_hidden=[8],
               avg_num_neighbors=2.0)


def _inputs():
    """Three atoms of two species, four edges (float32 Angstrom)."""
    return (
        tf.constant([[0.0, 0.0, 0.0], [0.9, 0.2, -0.1], [-0.3, 1.0, 0.4]]),
        tf.zeros([4, 3]),
        tf.constant([0, 1, 1]),
        tf.constant([0, 1, 0, 2]),
        tf.constant([1, 0, 2, 0]),
    )


@pytest.mark.parametrize("extra", [
    {},
    {"irreps_required": "2x3o", "last_edges": False, "frame_rotation": FRAME_ROTATION.tolist(), "convolution": "cg"},
    {"parity": False, "dtype": "mixed_bfloat16"},
])
def test_config_round_trip_is_exact(extra):
    layer = Backbone(["H", "O"], **OPTIONS, **extra)
    config = layer.get_config()
    clone = Backbone.from_config(config)
    assert clone.get_config() == config
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer)).get_config() == config


def test_build_creates_every_weight_before_a_call():
    layer = Backbone(["H", "O"], **OPTIONS, dtype="float32")
    layer.build()
    built = [w.path for w in layer.weights]
    node, edge = layer(*_inputs())
    assert built and [w.path for w in layer.weights] == built
    assert node.shape == (3, layer.irreps_out.dim) and edge.shape == (4, layer.irreps_out.dim)


def test_outputs_and_options():
    layer = Backbone(["H", "O"], **OPTIONS, irreps_required="2x3o+1x1e", parity=True, dtype="float64")
    assert str(layer.irreps_out) == "8x0e+1x1e+4x1o+2x2e+2x3o"  # the missing 1e and 3o, sorted by (l, p)
    even = Backbone(["H", "O"], **OPTIONS, parity=False)
    assert str(even.irreps_hidden) == "8x0e+4x1e+2x2e"
    assert layer.precise_dtype == "float64" and Backbone(["H"], **OPTIONS, dtype="mixed_bfloat16").precise_dtype == "float32"


@pytest.mark.parametrize("bad,message", [
    ({"num_blocks": 0}, "num_blocks"),
    ({"convolution": "fft"}, "convolution"),
    ({"frame_rotation": np.diag([1.0, 1.0, -1.0]).tolist()}, "frame_rotation"),
    ({"frame_rotation": [[1.0, 0.0], [0.0, 1.0]]}, "frame_rotation"),
])
def test_invalid_arguments(bad, message):
    with pytest.raises(ValueError, match=message):
        Backbone(["H", "O"], **{**OPTIONS, **bad})
    with pytest.raises(ValueError, match="elements"):
        Backbone([], **OPTIONS)


def test_frame_rotation_leaves_the_features_invariant_up_to_rounding():
    """D(R) = D(Q0)^T D(Q0 R) is the same rotation: node features agree to float64 rounding."""
    plain = Backbone(["H", "O"], **OPTIONS, dtype="float64")
    rotated = Backbone.from_config({**plain.get_config(), "frame_rotation": FRAME_ROTATION.tolist()})
    inputs = [tf.cast(x, tf.float64) if x.dtype.is_floating else x for x in _inputs()]
    reference = plain(*inputs)
    rotated(*inputs)
    rotated.set_weights(plain.get_weights())
    for a, b in zip(rotated(*inputs), reference):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-12)


def test_model_weights_are_backbone_then_heads():
    """Checkpoints assign ``model.weights`` in order: backbone first (its forward order), then heads."""
    model = HamiltonianModel(["H", "O"], [0, 0, 1], **OPTIONS)
    model.build()
    expected = model.backbone.weights + model.node_head.weights + model.edge_head.weights
    assert [id(w) for w in model.weights] == [id(w) for w in expected]
    backbone = model.backbone
    forward = backbone.node_embedding.weights + backbone.edge_embedding.weights + sum((b.weights for b in backbone.blocks), [])
    assert [id(w) for w in backbone.weights] == [id(w) for w in forward]
    energy = EnergyForceModel(["H", "O"], **OPTIONS, energy_hidden=[8])
    energy.build()
    head = sum((layer.weights for layer in energy.energy_mlp), []) + energy.energy_out.weights
    assert [id(w) for w in energy.weights] == [id(w) for w in energy.backbone.weights + head]
