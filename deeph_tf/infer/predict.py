"""Predict the blocks of structure folders with a frozen model or a training checkpoint."""
from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from deeph_tf.artifacts.frozen import make_predict_function, model_float_dtype
from deeph_tf.artifacts.loader import load_model
from deeph_tf.data import keys
from deeph_tf.data.errors import DataFormatError
from deeph_tf.data.inference_graph import GraphRule
from deeph_tf.data.layout import OrbitalLayout
from deeph_tf.data.structure import StructureFolder
from deeph_tf.infer.chunked import plan_chunks, predict_in_chunks

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]


class Predictor:
    """A model behind the frozen signature (see :mod:`deeph_tf.artifacts.frozen`).

    Attributes:
        layout: the model's orbital layout.
        metadata: target, normalized input, step, version, ...
        dtype: NumPy float dtype of the inputs (float32 or float64).
    """

    def __init__(self, function, layout: OrbitalLayout, metadata: Dict[str, Any], dtype: str, source: str,
                 model=None):
        self._function = function
        self._model = model
        self._union = None
        self.layout, self.metadata, self.dtype, self.source = layout, metadata, np.dtype(dtype), source

    @property
    def spinful(self) -> bool:
        """The model predicts spinful (spin-orbit) blocks: complex [2n_i, 2n_j] per pair."""
        return bool((self.metadata.get("model_config") or {}).get("spinful", False))

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
                   model_float_dtype(model).name, source, model=model)

    @property
    def num_blocks(self) -> int:
        """Interaction blocks of the model (a chunk's halo is ``num_blocks`` hops deep)."""
        return int((self.metadata.get("model_config") or {}).get("num_blocks", 3))

    def graph_rule(self, radius: Optional[float] = None) -> GraphRule:
        """How a structure without overlap.h5 gets its atom pairs (:mod:`deeph_tf.data.inference_graph`):
        ``radius`` if given, else the training input's ``dataset.radius_cutoff``, else the model's
        per-element-pair cutoffs (None for models trained before they were stored)."""
        config = self.metadata.get("model_config") or {}
        if radius is None:
            radius = (self.metadata.get("input", {}).get("training", {}).get("dataset", {}) or {}).get("radius_cutoff")
        cutoffs = config.get("pair_cutoffs")
        return GraphRule(elements=tuple(self.layout.elements),
                         pair_cutoffs=None if cutoffs is None else tuple(tuple(float(v) for v in row) for row in cutoffs),
                         periodic=bool(config.get("periodic_images", True)),
                         radius=None if radius is None else float(radius))

    def check_structure(self, structure: StructureFolder) -> None:
        """Refuse a structure of the other kind (spinful or spinless) or whose elements or orbital basis
        the model does not know.

        Raises:
            DataFormatError: naming the structure, the element and what the model knows.
        """
        if self.target in keys.SPIN_OPERATORS and structure.spinful != self.spinful:
            kinds = {True: "spinful (spin-orbit)", False: "spinless"}
            raise DataFormatError(structure.path / "info.json",
                                  f"\"spinful\": {str(structure.spinful).lower()}, but the model {self.source} predicts "
                                  f"{kinds[self.spinful]} blocks; use a model of that kind or set info.json's spinful")
        known = {e: list(self.layout.shells(e)) for e in self.layout.elements}
        for element in dict.fromkeys(structure.species):
            if element not in known:
                raise DataFormatError(structure.path, f"element {element} is unknown to the model {self.source}, "
                                      f"which knows {sorted(known)} (orbital shells {known})")
            shells = structure.orbital_shells(structure.species.index(element))
            if list(shells) != known[element]:
                raise DataFormatError(structure.path / "info.json", f"element {element} has orbital shells (l) "
                                      f"{list(shells)}, but the model {self.source} was trained with {known[element]}")


    def _union_function(self):
        """A tf.function (no XLA: any shape without retracing) of the model on a graph given as
        species, zero positions and exact edge vectors."""
        if self._union is None:
            import tensorflow as tf

            model, float_dtype = self._model, tf.as_dtype(self.dtype)

            @tf.function(input_signature=[tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, 3], float_dtype),
                                          tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int32),
                                          tf.TensorSpec([None], tf.int32)], reduce_retracing=True)
            def union(species, vectors, src, dst, reverse):
                n_atoms = tf.shape(species)[0]
                out = model({keys.SPECIES: species, keys.POSITIONS: tf.zeros([n_atoms, 3], float_dtype),
                             keys.EDGE_SRC: src, keys.EDGE_DST: dst, keys.EDGE_SHIFT_VECTOR: vectors,
                             keys.EDGE_REVERSE: reverse}, training=False)
                if "node_spin" in out:  # spinful: A and B stacked, [n, 4, n_c, n_c]
                    return (tf.concat([out["node"][:, None], out["node_spin"]], axis=1),
                            tf.concat([out["edge"][:, None], out["edge_spin"]], axis=1))
                return out["node"], out["edge"]

            self._union = union
        return self._union

    def _run(self, species, vectors, src, dst, reverse) -> Tuple[np.ndarray, np.ndarray]:
        import tensorflow as tf

        node, edge = self._union_function()(
            tf.constant(np.asarray(species, np.int32)), tf.constant(np.asarray(vectors, self.dtype).reshape(-1, 3)),
            tf.constant(np.asarray(src, np.int32)), tf.constant(np.asarray(dst, np.int32)),
            tf.constant(np.asarray(reverse, np.int32)))
        return node.numpy(), edge.numpy()

    def predict_graph(self, graph: Dict[str, np.ndarray], max_edges: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Node [n_atoms, n_c, n_c] and edge [n_edges, n_c, n_c] blocks of one graph (``build_graph``).

        A spinful model gives [n_atoms, 4, n_c, n_c] and [n_edges, 4, n_c, n_c]: the scalar part A
        (index 0) and the spin parts B_x, B_y, B_z (1..3) of each block (:func:`blocks_of`).

        The model sees edge vectors computed in float64 (r_j + R @ lattice - r_i, Angstrom) and
        zero positions (it is translation invariant), so large cells lose no digits in float32.
        A graph with more than ``max_edges`` edges is predicted in chunks with exact halos
        (:mod:`deeph_tf.infer.chunked`); the result equals one pass to float precision.
        """
        if self._model is None:
            raise ValueError(f"{self.source}: no Keras model behind this predictor")
        species, vectors, src, dst, reverse = _graph_arrays(graph, self.layout)
        if max_edges is None or len(src) <= max_edges:
            return self._run(species, vectors, src, dst, reverse)
        lattice = np.asarray(graph[keys.LATTICE], np.float64)
        positions = np.asarray(graph[keys.POSITIONS], np.float64)
        try:
            frac = np.linalg.solve(lattice.T, positions.T).T
        except np.linalg.LinAlgError:  # a molecule without a cell: cut in Cartesian coordinates
            frac, lattice = positions, np.eye(3)
        chunks = plan_chunks(len(species), src, dst, frac, np.linalg.norm(lattice, axis=1), self.num_blocks,
                             int(max_edges))
        logger.info("%s: %d edges in %d chunks of at most %d edges", graph.get(keys.STRUCTURE_ID, "structure"),
                    len(src), len(chunks), max_edges)
        local = np.full(len(species), -1, np.int64)

        def run(nodes, edges, sub_reverse):
            local[nodes] = np.arange(len(nodes))
            out = self._run(species[nodes], vectors[edges], local[src[edges]], local[dst[edges]], sub_reverse)
            local[nodes] = -1
            return out

        n_c = self.layout.n_common
        shape = (4, n_c, n_c) if self.spinful else (n_c, n_c)
        return predict_in_chunks(run, len(species), src, dst, reverse, chunks, shape, self.dtype)

    def predict_graphs(self, graphs: Sequence[Dict[str, np.ndarray]]) -> List[Tuple[np.ndarray, np.ndarray]]:
        """(node, edge) blocks of each graph, in one pass over their disjoint union."""
        parts = [_graph_arrays(g, self.layout) for g in graphs]
        node_offsets = np.cumsum([0] + [len(p[0]) for p in parts])
        edge_offsets = np.cumsum([0] + [len(p[2]) for p in parts])
        node, edge = self._run(
            np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] + o for p, o in zip(parts, node_offsets)]),
            np.concatenate([p[3] + o for p, o in zip(parts, node_offsets)]),
            np.concatenate([p[4] + o for p, o in zip(parts, edge_offsets)]))
        return [(node[node_offsets[k]:node_offsets[k + 1]], edge[edge_offsets[k]:edge_offsets[k + 1]])
                for k in range(len(parts))]

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

    def predict_structure(self, structure: StructureFolder, score: bool = True, max_edges: Optional[int] = None,
                          rule: Optional[GraphRule] = None):
        """(graph, predicted BlockSet) of a structure folder.

        The graph holds the reference target when ``score`` and the folder has it. Its pairs are
        overlap.h5's, or, without one, those of ``rule`` (default :meth:`graph_rule`). The
        prediction is float64, in the structure's own orbital order.
        """
        from deeph_tf.data.graph import build_graph
        from deeph_tf.data.inference_graph import prediction_graph

        self.check_structure(structure)
        target = self.target
        targets = (target,) if score and target != "overlap" and structure.has_blocks(target) else ()
        if structure.has_blocks(keys.OVERLAP) or targets:
            graph = build_graph(structure, self.layout, targets=targets, dtype=np.float64)
        else:
            graph, _ = prediction_graph(structure, self.layout, rule or self.graph_rule(), dtype=np.float64)
        node, edge = self.predict_graph(graph, max_edges=max_edges)
        return graph, blocks_of(graph, self.layout, target, node, edge)


def blocks_of(graph: Dict[str, np.ndarray], layout: OrbitalLayout, target: str, node: np.ndarray, edge: np.ndarray):
    """The BlockSet of predicted padded blocks (``Predictor.predict_graph``): float64, or for a
    spinful prediction ([n, 4, n_c, n_c]: A, B_x, B_y, B_z) complex128 [2n_i, 2n_j] blocks in the
    DeepH spinful layout."""
    from deeph_tf.data.graph import graph_blocks, spinful_graph_blocks

    if np.ndim(node) == 4:
        return spinful_graph_blocks(graph, layout, target, node[:, 0], edge[:, 0], node[:, 1:], edge[:, 1:])
    return graph_blocks(graph, layout, target, node_values=node, edge_values=edge)


def _graph_arrays(graph: Dict[str, np.ndarray], layout: OrbitalLayout):
    """(species [N], edge vectors [E, 3] float64 Angstrom, src [E], dst [E], reverse [E]) of a graph."""
    from deeph_tf.elements import SYMBOLS

    positions = np.asarray(graph[keys.POSITIONS], np.float64)
    lattice = np.asarray(graph[keys.LATTICE], np.float64)
    src = np.asarray(graph[keys.EDGE_SRC], np.int64)
    dst = np.asarray(graph[keys.EDGE_DST], np.int64)
    shifts = np.asarray(graph[keys.EDGE_SHIFT], np.float64).reshape(-1, 3)
    vectors = positions[dst] - positions[src] + (shifts @ lattice if len(shifts) and np.any(shifts) else 0.0)
    index = {e: k for k, e in enumerate(layout.elements)}
    species = np.array([index[SYMBOLS[z]] for z in np.asarray(graph[keys.ATOMIC_NUMBERS])], np.int64)
    return species, np.asarray(vectors, np.float64).reshape(-1, 3), src, dst, np.asarray(graph[keys.EDGE_REVERSE], np.int64)
