"""The one loader: checkpoint (file, prefix, folder) or frozen model -> built model + metadata."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import WATER
from deeph_tf.artifacts.checkpoint import Checkpoint, CheckpointError, CheckpointManager, variable_values
from deeph_tf.artifacts.loader import CHECKPOINT, FROZEN, freeze_checkpoint, load_model
from deeph_tf.config import normalize
from deeph_tf.data.pipeline import GraphSet
from deeph_tf.data.shards import GraphBuildOptions, build_graph_sets
from deeph_tf.model.builder import build_model
from deeph_tf.model.network import model_inputs
from deeph_tf.model.statistics import compute_statistics

TINY = {"irreps_hidden": "4x0e+2x1o+2x2e", "num_blocks": 1, "lmax_sh": 2, "num_radial_basis": 4, "radial_hidden": [4]}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny water model saved as step 7 by the checkpoint manager, and the model itself."""
    folder = tmp_path_factory.mktemp("loader")
    build_graph_sets(WATER, folder / "graphs", GraphBuildOptions())
    graph_set = GraphSet(folder / "graphs")
    config = normalize({"model": TINY, "training": {"training_data": {"systems": "x"}}})
    model = build_model(config["model"], graph_set.layout, compute_statistics(graph_set))
    dataset, _ = graph_set.dataset("train", batch_size=2)
    model(model_inputs(next(iter(dataset))))
    ckpt = Checkpoint(step=7, model_config=model.get_config(), layout=graph_set.layout.to_dict(),
                      model_weights=variable_values(model.weights), input=config)
    CheckpointManager(folder / "run" / "model.ckpt").save(ckpt)
    return folder, model, ckpt


def assert_same_weights(model, reference) -> None:
    assert len(model.weights) == len(reference.weights)
    for a, b in zip(variable_values(model.weights), variable_values(reference.weights)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("spec", ["run", "run/model.ckpt", "run/model.ckpt-7", "run/model.ckpt-7.h5"])
def test_checkpoint_file_prefix_or_folder(saved, spec):
    folder, model, ckpt = saved
    loaded, metadata = load_model(folder / spec)
    assert_same_weights(loaded, model)
    assert metadata["kind"] == CHECKPOINT and metadata["step"] == 7
    assert metadata["source"].endswith("model.ckpt-7.h5")
    assert metadata["layout"] == ckpt.layout and metadata["input"] == ckpt.input
    assert metadata["model_config"] == ckpt.model_config and metadata["version"] == ckpt.version


def test_frozen_model_loads_its_weights_and_metadata(saved):
    folder, model, ckpt = saved
    frozen = freeze_checkpoint(folder / "run", folder / "frozen")
    loaded, metadata = load_model(frozen)
    assert_same_weights(loaded, model)
    assert metadata["kind"] == FROZEN and metadata["source"] == str(frozen) and metadata["step"] == 7
    assert metadata["layout"] == ckpt.layout and metadata["input"] == ckpt.input
    assert metadata["checkpoint"].endswith("model.ckpt-7.h5")
    with pytest.raises(CheckpointError, match="a frozen model, not a checkpoint"):
        load_model(frozen, kind=CHECKPOINT)


def test_wrong_kind_missing_and_no_best_name_the_path(saved):
    folder, _, _ = saved
    with pytest.raises(CheckpointError, match="not a frozen model"):
        load_model(folder / "run", kind=FROZEN)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_model(folder / "run" / "missing.ckpt")
    with pytest.raises(CheckpointError, match="no best model recorded"):
        freeze_checkpoint(folder / "run", folder / "frozen_best", best=True)
