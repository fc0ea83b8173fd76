"""Predict the blocks of structure folders with a frozen model or a training checkpoint."""
from __future__ import annotations

import logging
import os
from typing import Any, Dict, Tuple, Union

import numpy as np

from deeph_tf.artifacts.frozen import make_predict_function, model_float_dtype
from deeph_tf.artifacts.loader import load_model
from deeph_tf.data import keys
from deeph_tf.data.layout import OrbitalLayout
from deeph_tf.data.structure import StructureFolder

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]


class Predictor:
    """A model behind the frozen signature (see :mod:`deeph_tf.artifacts.frozen`).

    Attributes:
        layout: the model's orbital layout.
        metadata: target, normalized input, step, version, ...
        dtype: NumPy float dtype of the inputs (float32 or float64).
    """

    def __init__(self, function, layout: OrbitalLayout, metadata: Dict[str, Any], dtype: str, source: str):
        self._function = function
        self.layout, self.metadata, self.dtype, self.source = layout, metadata, np.dtype(dtype), source

    @property
    def target(self) -> str:
        return self.metadata.get("input", {}).get("model", {}).get("target", "hamiltonian")

    @classmethod
    def load(cls, path: PathLike) -> "Predictor":
        """From a frozen model folder, or a checkpoint (file, prefix or folder with ``checkpoint``)."""
        model, metadata = load_model(path)
        return cls.from_model(model, metadata, metadata["source"])

    @classmethod
    def from_model(cls, model, metadata: Dict[str, Any], source: str) -> "Predictor":
        """A built Keras model behind the frozen signature; ``metadata`` holds ``layout`` and ``input``."""
        return cls(make_predict_function(model), OrbitalLayout.from_dict(metadata["layout"]), metadata,
                   model_float_dtype(model).name, source)

    def predict_graph(self, graph: Dict[str, np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        """Node [n_atoms, n_c, n_c] and edge [n_edges, n_c, n_c] blocks of one graph (``build_graph``)."""
        import tensorflow as tf

        inputs = {
            "atomic_numbers": tf.constant(np.asarray(graph[keys.ATOMIC_NUMBERS], np.int32)),
            "positions": tf.constant(np.asarray(graph[keys.POSITIONS], self.dtype)),
            "lattice": tf.constant(np.asarray(graph[keys.LATTICE], self.dtype)),
            "edge_src": tf.constant(np.asarray(graph[keys.EDGE_SRC], np.int32)),
            "edge_dst": tf.constant(np.asarray(graph[keys.EDGE_DST], np.int32)),
            "edge_shift": tf.constant(np.asarray(graph[keys.EDGE_SHIFT], np.int32).reshape(-1, 3)),
            "edge_reverse": tf.constant(np.asarray(graph[keys.EDGE_REVERSE], np.int32)),
        }
        out = self._function(**inputs)
        return out["node_blocks"].numpy(), out["edge_blocks"].numpy()

    @property
    def is_energy_model(self) -> bool:
        """A force field (target ``energy_force``): energies and forces instead of blocks."""
        return self.target == "energy_force"

    @property
    def cutoff(self) -> float:
        """The model's radial cutoff, Angstrom (a force field's graphs use exactly this radius)."""
        config = self.metadata.get("model_config") or {}
        if "cutoff" in config:
            return float(config["cutoff"])
        from deeph_tf.data.ff_graphs import cutoff_from_config

        return cutoff_from_config(self.metadata.get("input", {"model": {}}))

    def predict_frame(self, frame) -> Dict[str, np.ndarray]:
        """Energy (eV), per-atom energies (eV), forces [n, 3] (eV/A) and virial [3, 3] (eV) of
        one structure (:class:`~deeph_tf.data.labeled.LabeledFrame` or ``AtomsInput``), float64."""
        import tensorflow as tf

        from deeph_tf.data.neighbors import radius_graph

        if not self.is_energy_model:
            raise ValueError(f"{self.source}: a {self.target} model predicts blocks, not energies and forces")
        unknown = sorted(set(frame.species) - set(self.layout.elements))
        if unknown:
            raise ValueError(f"{frame.name}: elements {unknown} are not among the model's {list(self.layout.elements)}")
        from deeph_tf.elements import atomic_number

        src, dst, shifts = radius_graph(frame.positions, frame.lattice, self.cutoff, pbc=frame.pbc)
        out = self._function(
            atomic_numbers=tf.constant([atomic_number(e) for e in frame.species], tf.int32),
            positions=tf.constant(np.asarray(frame.positions, self.dtype)),
            lattice=tf.constant(np.asarray(frame.lattice, self.dtype)),
            edge_src=tf.constant(src, tf.int32), edge_dst=tf.constant(dst, tf.int32),
            edge_shift=tf.constant(np.asarray(shifts, np.int32).reshape(-1, 3)),
        )
        return {name: np.asarray(value.numpy(), np.float64) for name, value in out.items()}

    def predict_structure(self, structure: StructureFolder, score: bool = True):
        """(graph, predicted BlockSet) of a structure folder.

        The graph holds the reference target when ``score`` and the folder has it; the
        prediction is float64, in the structure's own orbital order, with overlap.h5's pairs.
        """
        from deeph_tf.data.graph import build_graph, graph_blocks

        target = self.target
        targets = (target,) if score and target != "overlap" and structure.has_blocks(target) else ()
        graph = build_graph(structure, self.layout, targets=targets, dtype=self.dtype)
        node, edge = self.predict_graph(graph)
        return graph, graph_blocks(graph, self.layout, target, node_values=node, edge_values=edge)
