"""Build a :class:`HamiltonianModel` from the normalized ``model`` section of an input."""
from __future__ import annotations

import logging
from typing import Mapping

from deeph_tf.data import keys
from deeph_tf.data.layout import OrbitalLayout
from deeph_tf.model.backbone import PRESETS
from deeph_tf.model.network import HamiltonianModel
from deeph_tf.model.statistics import TargetStatistics

logger = logging.getLogger(__name__)

#: Added to the longest training edge when ``cutoff`` is "auto" (Angstrom).
AUTO_CUTOFF_MARGIN = 0.5


def preset_options(model_config: Mapping) -> dict:
    """The preset's backbone options with every non-null key of ``model_config`` overriding."""
    preset = model_config.get("preset") or "light"
    if preset not in PRESETS:
        raise ValueError(f"model.preset: unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
    options = dict(PRESETS[preset])
    for key in ("irreps_hidden", "num_blocks", "lmax_sh", "num_radial_basis", "radial_hidden"):
        if model_config.get(key) is not None:
            options[key] = model_config[key]
    return options


def resolve_model_options(model_config: Mapping, statistics: TargetStatistics) -> dict:
    """Preset values overridden by every non-null key; cutoff "auto" from the statistics."""
    options = preset_options(model_config)
    cutoff = model_config.get("cutoff", "auto")
    if cutoff == "auto":
        cutoff = statistics.max_edge_length + AUTO_CUTOFF_MARGIN
    elif cutoff < statistics.max_edge_length:
        logger.warning(
            "model.cutoff %.3g A is shorter than the longest edge (%.3g A): those edges get no radial information",
            cutoff, statistics.max_edge_length,
        )
    options.update(
        cutoff=float(cutoff),
        convolution=model_config.get("convolution", "so2"),
        parity=bool(model_config.get("parity", True)),
    )
    return options


def build_model(model_config: Mapping, layout: OrbitalLayout, statistics: TargetStatistics) -> HamiltonianModel:
    """The model for ``layout`` with standardization from ``statistics``."""
    options = resolve_model_options(model_config, statistics)
    return HamiltonianModel(
        layout.elements,
        layout.common_shells,
        avg_num_neighbors=statistics.avg_num_neighbors,
        node_scale=statistics.node_scale,
        node_shift=statistics.node_shift,
        edge_scale=statistics.edge_scale,
        pair_cutoffs=statistics.pair_max_edge_length or None,
        periodic_images=statistics.periodic_edges,
        dtype=model_config.get("precision", "float32"),
        **_spin_options(statistics),
        **options,
    )


def _spin_options(statistics: TargetStatistics) -> dict:
    """``spinful`` and the spin heads' standardization for spinful statistics, else nothing."""
    if not getattr(statistics, "spinful", False):
        return {}
    return dict(spinful=True, spin_node_scale=statistics.spin_node_scale, spin_node_shift=statistics.spin_node_shift,
                spin_edge_scale=statistics.spin_edge_scale)


def example_inputs(n_species: int, dtype: str = "float32") -> dict:
    """A two-atom, two-edge graph in the model's input form (builds the variables).

    Atoms of the first and last species 1.2 Angstrom apart on z; both edges (i->j, j->i)
    present, so ``edge_reverse`` pairs them.
    """
    import numpy as np

    float_dtype = "float32" if dtype == "mixed_bfloat16" else dtype
    return {
        keys.SPECIES: np.array([0, n_species - 1], np.int32),
        keys.POSITIONS: np.array([[0.0, 0.0, 0.0], [0.3, -0.2, 1.2]], float_dtype),
        keys.EDGE_SRC: np.array([0, 1], np.int32),
        keys.EDGE_DST: np.array([1, 0], np.int32),
        keys.EDGE_REVERSE: np.array([1, 0], np.int32),
        keys.EDGE_SHIFT_VECTOR: np.zeros((2, 3), float_dtype),
    }


def is_energy_config(config: Mapping) -> bool:
    """Whether a ``get_config()`` dict is an :class:`~deeph_tf.model.energy.EnergyForceModel`'s."""
    return "atom_energies" in config


def build_energy_model(model_config: Mapping, statistics: Mapping, cutoff: float):
    """The force-field model for the ``energy_statistics`` of a force-field graph index."""
    from deeph_tf.model.energy import EnergyForceModel

    options = preset_options(model_config)
    return EnergyForceModel(
        statistics["elements"],
        cutoff=float(cutoff),
        convolution=model_config.get("convolution", "so2"),
        parity=bool(model_config.get("parity", True)),
        energy_hidden=model_config.get("energy_hidden", [64]),
        avg_num_neighbors=max(float(statistics["avg_num_neighbors"]), 1.0),
        atom_energies=statistics["atom_energies"],
        energy_scale=max(float(statistics["force_rms"]), 1e-3),
        dtype=model_config.get("precision", "float32"),
        **options,
    )


def model_from_config(config: Mapping):
    """Re-create a model from its ``get_config()`` (Hamiltonian or force field) and build its variables."""
    import tensorflow as tf

    if is_energy_config(config):
        from deeph_tf.model.energy import EnergyForceModel

        model = EnergyForceModel.from_config(dict(config))
    else:
        model = HamiltonianModel.from_config(dict(config))
    inputs = example_inputs(len(model.elements), model.dtype_policy.name)
    model({name: tf.constant(value) for name, value in inputs.items()})
    return model
