"""Graph dicts <-> serialized ``tf.train.Example`` records.

Encoding is pure Python (no TensorFlow), so graph-building worker processes stay light:
each array is stored as raw little-endian bytes in a ``bytes_list`` feature, and the
sizes that fix every shape (n_atoms, n_edges) as ``int64_list`` features. Decoding is a
TensorFlow function for ``tf.data`` (``tf.io.decode_raw`` + reshape), so no Python runs
per record while training.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Tuple

import numpy as np

from deeph_tf.data import keys

#: Record field -> (NumPy dtype on disk or "float", trailing shape given n_c, leading dimension).
#: "float" fields use the graph set's dtype (float32 or float64). Leading dimension names
#: one of the size features ("n_atoms", "n_edges") or None for fixed-size fields.
_BASE_FIELDS: Dict[str, Tuple[str, Tuple[str, ...], str]] = {
    keys.ATOMIC_NUMBERS: ("int32", (), "n_atoms"),
    keys.SPECIES: ("int32", (), "n_atoms"),
    keys.POSITIONS: ("float", (3,), "n_atoms"),
    keys.LATTICE: ("float", (3, 3), None),
    keys.EDGE_SRC: ("int32", (), "n_edges"),
    keys.EDGE_DST: ("int32", (), "n_edges"),
    keys.EDGE_SHIFT: ("int32", (3,), "n_edges"),
    keys.EDGE_REVERSE: ("int32", (), "n_edges"),
    keys.NODE_MASK: ("bool", ("n_c", "n_c"), "n_atoms"),
    keys.EDGE_MASK: ("bool", ("n_c", "n_c"), "n_edges"),
}
SIZE_FEATURES = ("n_atoms", "n_edges")


#: Fields of a force-field record (operators ``(keys.ENERGY_FORCE,)``): no blocks or masks.
_ENERGY_FORCE_FIELDS: Dict[str, Tuple[str, Tuple[str, ...], str]] = {
    **{name: spec for name, spec in _BASE_FIELDS.items() if name not in (keys.NODE_MASK, keys.EDGE_MASK)},
    keys.ENERGY: ("float", (), None),
    keys.FORCES: ("float", (3,), "n_atoms"),
    keys.VIRIAL: ("float", (3, 3), None),
    keys.VIRIAL_VALID: ("bool", (), None),
}


def record_fields(operators, spinful: bool = False) -> Dict[str, Tuple[str, Tuple[str, ...], str]]:
    """All fields of a record holding the given operators (overlap always included), or of a
    force-field record when ``operators`` is ``(keys.ENERGY_FORCE,)``. ``spinful``: the spin
    parts B of the spinful operators too ([3, n_c, n_c] per node or edge)."""
    if keys.is_energy_force(operators):
        return dict(_ENERGY_FORCE_FIELDS)
    fields = dict(_BASE_FIELDS)
    for name in operators:
        fields[keys.node_key(name)] = ("float", ("n_c", "n_c"), "n_atoms")
        fields[keys.edge_key(name)] = ("float", ("n_c", "n_c"), "n_edges")
    for name in keys.spin_operators(operators, spinful):
        fields[keys.node_spin_key(name)] = ("float", (3, "n_c", "n_c"), "n_atoms")
        fields[keys.edge_spin_key(name)] = ("float", (3, "n_c", "n_c"), "n_edges")
    return fields


# --- protobuf wire format (tf.train.Example), written by hand -----------------------------------
def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(field_number: int, payload: bytes) -> bytes:
    return _varint(field_number << 3 | 2) + _varint(len(payload)) + payload


def _bytes_feature(value: bytes) -> bytes:
    # Feature.bytes_list (1) -> BytesList.value (1)
    return _length_delimited(1, _length_delimited(1, value))


def _int64_feature(values: List[int]) -> bytes:
    # Feature.int64_list (3) -> Int64List.value (1, packed)
    packed = b"".join(_varint(int(v)) for v in values)
    return _length_delimited(3, _length_delimited(1, packed))


def encode_example(graph: Mapping[str, np.ndarray], operators, float_dtype: str, spinful: bool = False) -> bytes:
    """Serialize one graph dict to ``tf.train.Example`` bytes (no TensorFlow needed).

    Args:
        graph: arrays as produced by ``deeph_tf.data.graph.build_graph``.
        operators: operator names stored (e.g. ("overlap", "hamiltonian")).
        float_dtype: "float32" or "float64", the dtype of every float field.
        spinful: store the spin parts (``keys.node_spin_key``) of the spinful operators.
    """
    entries = []
    sizes = {"n_atoms": len(graph[keys.SPECIES]), "n_edges": len(graph[keys.EDGE_SRC])}
    for name, value in sizes.items():
        entries.append((name, _int64_feature([value])))
    entries.append(
        (keys.STRUCTURE_ID, _bytes_feature(str(np.asarray(graph[keys.STRUCTURE_ID])).encode("utf-8")))
    )
    for name, (dtype, _, _) in record_fields(operators, spinful).items():
        target = float_dtype if dtype == "float" else ("uint8" if dtype == "bool" else dtype)
        array = np.ascontiguousarray(graph[name], dtype=np.dtype(target).newbyteorder("<"))
        entries.append((name, _bytes_feature(array.tobytes())))
    features = b"".join(
        _length_delimited(1, _length_delimited(1, key.encode("utf-8")) + _length_delimited(2, feature))
        for key, feature in entries
    )
    return _length_delimited(1, features)


def make_parser(operators, float_dtype: str, n_common: int, spinful: bool = False):
    """A TF function: serialized Example -> dict of tensors with static trailing shapes."""
    import tensorflow as tf

    fields = record_fields(operators, spinful)
    spec = {name: tf.io.FixedLenFeature([], tf.string) for name in fields}
    spec[keys.STRUCTURE_ID] = tf.io.FixedLenFeature([], tf.string)
    for name in SIZE_FEATURES:
        spec[name] = tf.io.FixedLenFeature([1], tf.int64)
    float_tf = tf.as_dtype(float_dtype)

    def parse(serialized):
        raw = tf.io.parse_single_example(serialized, spec)
        sizes = {name: tf.cast(raw[name][0], tf.int32) for name in SIZE_FEATURES}
        out = {keys.STRUCTURE_ID: raw[keys.STRUCTURE_ID]}
        for name, (dtype, trailing, leading) in fields.items():
            tf_dtype = float_tf if dtype == "float" else (tf.uint8 if dtype == "bool" else tf.as_dtype(dtype))
            trailing_shape = [n_common if d == "n_c" else d for d in trailing]
            shape = ([sizes[leading]] if leading else []) + trailing_shape
            value = tf.reshape(tf.io.decode_raw(raw[name], tf_dtype, little_endian=True), shape)
            if dtype == "bool":
                value = tf.cast(value, tf.bool)
            out[name] = tf.ensure_shape(value, ([None] if leading else []) + trailing_shape)
        return out

    return parse
