"""Frozen models: a TensorFlow SavedModel that predicts with plain TensorFlow (``dfreeze``).

The SavedModel folder holds the weights and one documented signature,
``serving_default``, for one structure (any number of atoms and edges)::

    inputs
      atomic_numbers  int32   [n_atoms]
      positions       float   [n_atoms, 3]     Cartesian, Angstrom
      lattice         float   [3, 3]           lattice vectors as rows, Angstrom (any for molecules)
      edge_src        int32   [n_edges]        atom i of the block <i(0)| H |j(R)>
      edge_dst        int32   [n_edges]        atom j
      edge_shift      int32   [n_edges, 3]     R, in lattice units
      edge_reverse    int32   [n_edges]        index of the partner edge (-R, j, i)
    outputs
      node_blocks     float   [n_atoms, n_c, n_c]   on-site blocks
      edge_blocks     float   [n_edges, n_c, n_c]   off-site blocks

A spinful (spin-orbit) model (``metadata.json`` -> ``spinful`` true) returns the scalar parts A
as ``node_blocks``/``edge_blocks`` and two more outputs, the axial parts B_k (k = x, y, z) of
H = I_2 (x) A + i sum_k sigma_k (x) B_k (:mod:`deeph_tf.so3.spin_blocks`)::

      node_spin_blocks  float [n_atoms, 3, n_c, n_c]
      edge_spin_blocks  float [n_edges, 3, n_c, n_c]

A force field (model target ``energy_force``) has the same first six inputs (no
``edge_reverse``; edges are every pair closer than the model's cutoff, both directions, with
periodic images) and returns::

      energy          float   []                  total energy, eV
      atom_energy     float   [n_atoms]           per-atom energies, eV
      forces          float   [n_atoms, 3]        -dE/dr, eV/Angstrom
      virial          float   [3, 3]              -dE/d(strain), eV (DeePMD convention)

Blocks are in the common orbital layout (``layout.json``: for each element which of the
n_c slots are its orbitals, m-order of DeepH); Hermitian by construction. "float" is the
model's precision (``metadata.json`` -> ``dtype``). Edges are the off-site pairs of
overlap.h5 (both directions), on-site pairs are the nodes.

Loading needs only TensorFlow::

    import json, tensorflow as tf
    model = tf.saved_model.load("frozen_model")
    meta = json.loads(model.metadata.numpy())          # input, layout, version, ...
    out = model.signatures["serving_default"](atomic_numbers=..., positions=..., ...)

``metadata.json`` and ``layout.json`` next to ``saved_model.pb`` carry the same information
for people and other tools.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Union

import numpy as np

from deeph_tf._version import __version__

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
METADATA_NAME = "metadata.json"
LAYOUT_NAME = "layout.json"
SIGNATURE = "serving_default"
#: The signature's input names, in order.
INPUT_NAMES = ("atomic_numbers", "positions", "lattice", "edge_src", "edge_dst", "edge_shift", "edge_reverse")
#: A force field's input names, in order, and outputs.
ENERGY_INPUT_NAMES = INPUT_NAMES[:6]
ENERGY_OUTPUT_NAMES = ("energy", "atom_energy", "forces", "virial")


def is_energy_model(model) -> bool:
    return hasattr(model, "atom_energies")


def _atomic_number_table(elements) -> np.ndarray:
    """[119] int32: species index of each atomic number, -1 for elements the model lacks."""
    from deeph_tf.elements import SYMBOLS

    table = np.full(len(SYMBOLS), -1, np.int32)
    for index, symbol in enumerate(elements):
        table[SYMBOLS.index(symbol)] = index
    return table


def model_float_dtype(model):
    """tf.float64 for a float64 model, else tf.float32 (mixed precision takes float32 inputs)."""
    import tensorflow as tf

    return tf.float64 if model.dtype_policy.variable_dtype == "float64" else tf.float32


def make_predict_function(model):
    """The ``serving_default`` function of ``model`` (see the module docstring); not XLA-compiled,
    so structures of any size run without recompiling."""
    import tensorflow as tf

    from deeph_tf.data import keys

    float_dtype = model_float_dtype(model)
    table = tf.constant(_atomic_number_table(model.elements))
    if is_energy_model(model):
        return _make_energy_function(model, float_dtype, table)

    @tf.function(input_signature=_input_signature(float_dtype, INPUT_NAMES))
    def predict(atomic_numbers, positions, lattice, edge_src, edge_dst, edge_shift, edge_reverse):
        inputs = _model_inputs(table, float_dtype, atomic_numbers, positions, lattice, edge_src, edge_dst, edge_shift)
        inputs[keys.EDGE_REVERSE] = edge_reverse
        out = model(inputs, training=False)
        result = {"node_blocks": out["node"], "edge_blocks": out["edge"]}
        if "node_spin" in out:
            result.update(node_spin_blocks=out["node_spin"], edge_spin_blocks=out["edge_spin"])
        return result

    return predict


def _input_signature(float_dtype, names):
    """TensorSpecs of the signature inputs ``names`` (a prefix of :data:`INPUT_NAMES`)."""
    import tensorflow as tf

    specs = {
        "atomic_numbers": tf.TensorSpec([None], tf.int32, "atomic_numbers"),
        "positions": tf.TensorSpec([None, 3], float_dtype, "positions"),
        "lattice": tf.TensorSpec([3, 3], float_dtype, "lattice"),
        "edge_src": tf.TensorSpec([None], tf.int32, "edge_src"),
        "edge_dst": tf.TensorSpec([None], tf.int32, "edge_dst"),
        "edge_shift": tf.TensorSpec([None, 3], tf.int32, "edge_shift"),
        "edge_reverse": tf.TensorSpec([None], tf.int32, "edge_reverse"),
    }
    return [specs[name] for name in names]


def _model_inputs(table, float_dtype, atomic_numbers, positions, lattice, edge_src, edge_dst, edge_shift) -> dict:
    """The model's input dict of one structure (species from atomic numbers, shifts in Angstrom)."""
    import tensorflow as tf

    from deeph_tf.data import keys

    species = tf.gather(table, atomic_numbers)
    tf.debugging.assert_non_negative(species, message="an atomic number the model was not trained on")
    return {
        keys.SPECIES: species,
        keys.POSITIONS: positions,
        keys.EDGE_SRC: edge_src,
        keys.EDGE_DST: edge_dst,
        "edge_shift_vector": tf.matmul(tf.cast(edge_shift, float_dtype), lattice),
    }


def _make_energy_function(model, float_dtype, table):
    import tensorflow as tf

    @tf.function(input_signature=_input_signature(float_dtype, ENERGY_INPUT_NAMES))
    def predict(atomic_numbers, positions, lattice, edge_src, edge_dst, edge_shift):
        inputs = _model_inputs(table, float_dtype, atomic_numbers, positions, lattice, edge_src, edge_dst, edge_shift)
        out = model(inputs, training=False)
        return {"energy": out["energy"][0], "atom_energy": out["atom_energy"], "forces": out["forces"],
                "virial": out["virial"][0] if "virial" in out else tf.zeros([3, 3], float_dtype)}

    return predict


def freeze_model(model, layout: Mapping, metadata: Mapping[str, Any], output: PathLike) -> Path:
    """Save ``model`` as a SavedModel at ``output`` (replaced atomically if it exists).

    Args:
        model: a built :class:`~deeph_tf.model.network.HamiltonianModel`.
        layout: ``OrbitalLayout.to_dict()`` of the model's data.
        metadata: JSON-serializable facts to carry (normalized input, step, target, ...);
            ``version``, ``dtype``, ``model_config``, ``layout`` and ``signature`` are added.
    """
    import tensorflow as tf

    output = Path(output)
    if output.exists() and not is_frozen_model(output):
        raise FileExistsError(f"{output}: exists and is not a frozen model; refusing to replace it")
    meta = dict(metadata)
    spinful = bool(getattr(model, "spinful", False))
    outputs = ["node_blocks", "edge_blocks"] + (["node_spin_blocks", "edge_spin_blocks"] if spinful else [])
    meta.update(version=__version__, dtype=model_float_dtype(model).name, model_config=model.get_config(),
                layout=dict(layout), parameters=int(sum(int(np.prod(v.shape)) for v in model.weights)),
                spinful=spinful,
                signature={"name": SIGNATURE, "inputs": list(ENERGY_INPUT_NAMES if is_energy_model(model) else INPUT_NAMES),
                           "outputs": list(ENERGY_OUTPUT_NAMES) if is_energy_model(model) else outputs})
    module = tf.Module(name="deeph_tf_frozen_model")
    module.model = model
    module.model_variables = [v.value for v in model.weights]  # model.weights order, for init-frz-model
    module.metadata = tf.Variable(json.dumps(meta), trainable=False, dtype=tf.string)
    module.predict = make_predict_function(model)
    from deeph_tf.atomic_io import atomic_folder

    with atomic_folder(output) as staging:
        tf.saved_model.save(module, str(staging), signatures={SIGNATURE: module.predict})
        (staging / METADATA_NAME).write_text(json.dumps(meta, indent=1) + "\n")
        (staging / LAYOUT_NAME).write_text(json.dumps(dict(layout), indent=1) + "\n")
    logger.info("froze the model into %s", output)
    return output


def is_frozen_model(path: PathLike) -> bool:
    return (Path(path) / "saved_model.pb").is_file()


def read_frozen_metadata(path: PathLike) -> Dict[str, Any]:
    """The metadata of a frozen model (from ``metadata.json``), without TensorFlow."""
    meta = Path(path) / METADATA_NAME
    try:
        return json.loads(meta.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{meta}: not a deeph_tf frozen model ({error})") from error


def load_frozen_weights(path: PathLike):
    """(metadata, [weights in model.weights order]) of a frozen model, for init-frz-model."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    metadata = json.loads(loaded.metadata.numpy())
    return metadata, [v.numpy() for v in loaded.model_variables]
