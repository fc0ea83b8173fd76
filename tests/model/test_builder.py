"""Presets and the model section of the input."""
import pytest

from conftest import WATER
from deeph_tf.config import normalize
from deeph_tf.data.pipeline import GraphSet
from deeph_tf.data.shards import GraphBuildOptions, build_graph_sets
from deeph_tf.model.builder import build_model, resolve_model_options
from deeph_tf.model.network import model_inputs
from deeph_tf.model.statistics import compute_statistics


@pytest.fixture(scope="module")
def water(tmp_path_factory):
    graph_dir = tmp_path_factory.mktemp("g")
    build_graph_sets(WATER, graph_dir, GraphBuildOptions())
    graph_set = GraphSet(graph_dir)
    dataset, _ = graph_set.dataset("train", batch_size=2)
    return graph_set, compute_statistics(graph_set), model_inputs(next(iter(dataset)))


def _model_section(**model):
    return normalize({"model": model, "training": {"training_data": {"systems": "x"}}})["model"]


@pytest.mark.parametrize("preset,low,high", [("light", 2e5, 1e6), ("accurate", 3e6, 7e6)])
def test_preset_sizes(water, preset, low, high):
    graph_set, stats, batch = water
    model = build_model(_model_section(preset=preset), graph_set.layout, stats)
    model(batch)
    assert low < model.count_params() < high


def test_overrides_and_auto_cutoff(water):
    graph_set, stats, _ = water
    options = resolve_model_options(_model_section(irreps_hidden="8x0e+2x1o", num_blocks=1), stats)
    assert options["irreps_hidden"] == "8x0e+2x1o" and options["num_blocks"] == 1
    assert options["cutoff"] == pytest.approx(stats.max_edge_length + 0.5)
    assert stats.max_edge_length == pytest.approx(1.53, abs=0.05)  # H...H of water
    assert resolve_model_options(_model_section(cutoff=6.0), stats)["cutoff"] == 6.0
