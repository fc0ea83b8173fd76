"""Structure graphs: atoms as nodes, atom-pair blocks as edges, targets padded to the layout.

``build_graph`` turns one DeepH structure folder into a dict of NumPy arrays whose keys
and shapes are listed in :mod:`deeph_tf.data.keys`. Edges are the off-site atom pairs of
overlap.h5 (the DFT code's own sparsity); on-site blocks are node targets. Every check a
training run relies on happens here, with errors naming the structure folder and file:
matching atom_pairs across files, Hermiticity, one on-site block per atom, time reversal of
spinful data.

Spinful (spin-orbit) targets: each complex [2n_i, 2n_j] block is split into its scalar part A
(stored where a spinless block would be) and its axial-vector part B [3, n_i, n_j]
(``keys.node_spin_key``/``edge_spin_key``), H = I_2 (x) A + i sum_k sigma_k (x) B_k
(:mod:`deeph_tf.so3.spin_blocks`). The part of H that is odd under time reversal (magnetism)
has no place in that form: above ``hermiticity_tolerance`` the structure is refused.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from deeph_tf.conventions import HERMITICITY_TOLERANCE_EV, OVERLAP_MASK_THRESHOLD
from deeph_tf.data import keys
from deeph_tf.data.block_h5 import BlockSet
from deeph_tf.elements import atomic_number
from deeph_tf.data.errors import DataFormatError
from deeph_tf.data.layout import OrbitalLayout
from deeph_tf.data.structure import StructureFolder
from deeph_tf.so3.spin_blocks import merge_spinful, split_spinful, time_reversal_residual

Graph = Dict[str, np.ndarray]


def _shell_starts(shells: Sequence[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum([2 * l + 1 for l in shells])[:-1]]).astype(np.int64)


def _shell_sizes(shells: Sequence[int]) -> np.ndarray:
    return np.asarray([2 * l + 1 for l in shells], dtype=np.int64)


def overlap_entry_mask(overlap_block: np.ndarray, shells_i: Sequence[int], shells_j: Sequence[int]) -> np.ndarray:
    """DeepH's off-site rule: [n_i, n_j] bool, True where max|S| of the shell pair > 1e-10."""
    reduced = np.maximum.reduceat(np.abs(overlap_block), _shell_starts(shells_i), axis=0)
    reduced = np.maximum.reduceat(reduced, _shell_starts(shells_j), axis=1)
    counts = reduced > OVERLAP_MASK_THRESHOLD
    return np.repeat(np.repeat(counts, _shell_sizes(shells_i), axis=0), _shell_sizes(shells_j), axis=1)


def _aligned(structure: StructureFolder, name: str, reference: BlockSet, reference_name: str) -> BlockSet:
    """Read ``name`` and put its blocks in the order of ``reference``'s atom_pairs."""
    blocks = structure.read_blocks(name)
    if np.array_equal(blocks.atom_pairs, reference.atom_pairs):
        return blocks
    index = blocks.pair_index()
    reference_keys = reference.keys()
    if len(index) != len(reference_keys) or any(k not in index for k in reference_keys):
        extra = sorted(set(index) - set(reference_keys))[:1]
        missing = sorted(set(reference_keys) - set(index))[:1]
        raise DataFormatError(
            structure.block_path(name),
            f"atom_pairs differ from {reference_name}.h5 of the same structure "
            f"({len(index)} vs {len(reference_keys)} pairs; e.g. only here: {extra}, only there: {missing}); "
            "all block files of one structure must list the same pairs",
        )
    return BlockSet(reference.atom_pairs, [blocks.blocks[index[k]] for k in reference_keys])


def build_graph(
    structure: StructureFolder,
    layout: OrbitalLayout,
    targets: Sequence[str] = (keys.HAMILTONIAN,),
    hermiticity_tolerance: float = HERMITICITY_TOLERANCE_EV,
    dtype=np.float32,
    structure_id: Optional[str] = None,
    radius_cutoff: Optional[float] = None,
) -> Graph:
    """One structure folder -> graph dict (see :mod:`deeph_tf.data.keys`).

    Args:
        structure: a loaded structure folder with overlap.h5 (its pairs are the edges).
        layout: the dataset's orbital layout (blocks are padded to [n_c, n_c]).
        targets: operators to store besides the overlap, e.g. ("hamiltonian",).
        hermiticity_tolerance: max |A_ij(R) - A_ji(-R)^T| allowed (eV for H; the same
            number, dimensionless, for S and the density matrix).
        dtype: float dtype of positions and blocks.
        structure_id: id stored in the graph (default: the folder name).
        radius_cutoff: for a structure without overlap.h5 and no targets (inference on a
            POSCAR only), edges come from a periodic radius neighbour list (Angstrom).
    Raises:
        DataFormatError: naming the folder/file, for anything a model must not train on.
    """
    for target in targets:
        if target not in keys.OPERATORS:
            raise ValueError(f"unknown target {target!r}; expected one of {keys.OPERATORS}")
    spin_targets = [t for t in targets if t in keys.SPIN_OPERATORS and structure.spin_factor(t) == 2]
    if not structure.has_blocks(keys.OVERLAP) and radius_cutoff is not None and not targets:
        return _radius_graph(structure, layout, radius_cutoff, dtype, structure_id or structure.name)
    if not structure.has_blocks(keys.OVERLAP):
        raise DataFormatError(structure.block_path(keys.OVERLAP), "missing: overlap.h5 defines the graph's atom pairs")
    overlap = structure.read_blocks(keys.OVERLAP)
    operators = {keys.OVERLAP: overlap}
    for target in targets:
        if target == keys.OVERLAP:
            continue
        if not structure.has_blocks(target):
            raise DataFormatError(structure.block_path(target), f"missing: {target} is a training target")
        operators[target] = _aligned(structure, target, overlap, keys.OVERLAP)
    for name, blocks in operators.items():
        deviation = blocks.max_hermiticity_deviation()
        if deviation > hermiticity_tolerance:
            raise DataFormatError(
                structure.block_path(name),
                f"not Hermitian: max |A_ij(R) - A_ji(-R)^T| = {deviation:.3g} exceeds the tolerance "
                f"{hermiticity_tolerance:g}",
            )
    spin = {}
    for name in spin_targets:
        operators[name], spin[name] = _split_spin_part(structure, name, operators[name], hermiticity_tolerance)
    return assemble_graph(structure, layout, operators, dtype, structure_id or structure.name, spin=spin)


def _split_spin_part(structure: StructureFolder, name: str, blocks: BlockSet, tolerance: float
                     ) -> Tuple[BlockSet, List[np.ndarray]]:
    """Spinful blocks -> (scalar parts A as a real BlockSet, [3, n_i, n_j] axial parts B per pair)."""
    scalar, vector = [], []
    worst, worst_pair = 0.0, None
    for k, block in enumerate(blocks.blocks):
        residual = time_reversal_residual(block)
        if residual > worst:
            worst, worst_pair = residual, blocks.atom_pairs[k].tolist()
        a, b = split_spinful(block)
        scalar.append(a)
        vector.append(b)
    if worst > tolerance:
        raise DataFormatError(
            structure.block_path(name),
            f"spinful blocks are not time-reversal symmetric: the time-reversal-odd part reaches {worst:.3g} "
            f"(pair {worst_pair}), above the tolerance {tolerance:g}; the model predicts non-magnetic "
            "H = I (x) A + i sum_k sigma_k (x) B_k only (magnetic / spin-polarized data are not supported)",
        )
    return BlockSet(blocks.atom_pairs, scalar), vector


def _radius_graph(structure: StructureFolder, layout: OrbitalLayout, cutoff: float, dtype, structure_id: str) -> Graph:
    """Edges from a periodic radius graph; no operator blocks; masks = the real entries."""
    from deeph_tf.data.neighbors import radius_graph

    src, dst, shifts = radius_graph(structure.poscar.positions, structure.poscar.lattice, cutoff)
    pairs = np.concatenate(
        [
            np.column_stack([np.zeros((structure.n_atoms, 3), np.int64), np.arange(structure.n_atoms), np.arange(structure.n_atoms)]),
            np.column_stack([shifts, src, dst]),
        ]
    ).astype(np.int64)
    return assemble_graph(structure, layout, {}, dtype, structure_id, pairs=pairs)


def assemble_graph(
    structure: StructureFolder,
    layout: OrbitalLayout,
    operators: Dict[str, BlockSet],
    dtype,
    structure_id: str,
    pairs: Optional[np.ndarray] = None,
    spin: Optional[Dict[str, List[np.ndarray]]] = None,
) -> Graph:
    """Nodes, edges, padded blocks and masks; ``pairs`` defaults to the overlap's atom_pairs.

    ``spin``: operator -> [3, n_i, n_j] axial parts B per pair (spinful targets), stored padded
    as ``node_<op>_spin`` [n_atoms, 3, n_c, n_c] and ``edge_<op>_spin`` [n_edges, 3, n_c, n_c].
    """
    if pairs is None:
        pairs = operators[keys.OVERLAP].atom_pairs
    n_atoms, n_c = structure.n_atoms, layout.n_common
    species_names = structure.species
    try:
        species = np.array([layout.elements.index(e) for e in species_names], dtype=np.int32)
    except ValueError:
        unknown = sorted(set(species_names) - set(layout.elements))
        raise DataFormatError(
            structure.path, f"elements {unknown} are not in the dataset layout {list(layout.elements)}"
        ) from None
    for element in set(species_names):
        if tuple(structure.orbital_shells(species_names.index(element))) != layout.shells(element):
            raise DataFormatError(
                structure.path / "info.json",
                f"element {element} has shells {structure.orbital_shells(species_names.index(element))} "
                f"but the dataset layout has {list(layout.shells(element))}",
            )
    slots = {e: layout.slot_indices(e) for e in set(species_names)}
    onsite = (pairs[:, 0] == 0) & (pairs[:, 1] == 0) & (pairs[:, 2] == 0) & (pairs[:, 3] == pairs[:, 4])
    onsite_rows = np.nonzero(onsite)[0]
    onsite_atoms = pairs[onsite_rows, 3]
    if len(onsite_rows) != n_atoms or len(np.unique(onsite_atoms)) != n_atoms:
        lacking = sorted(set(range(n_atoms)) - set(onsite_atoms.tolist()))
        raise DataFormatError(
            structure.block_path(keys.OVERLAP), f"no on-site block (0,0,0,i,i) for atoms {lacking[:5]}"
        )
    edge_rows = np.nonzero(~onsite)[0]
    node_order = onsite_rows[np.argsort(onsite_atoms)]

    graph: Graph = {
        keys.STRUCTURE_ID: np.array(structure_id),
        keys.ATOMIC_NUMBERS: np.array([atomic_number(e) for e in species_names], dtype=np.int32),
        keys.SPECIES: species,
        keys.POSITIONS: structure.poscar.positions.astype(dtype),
        keys.LATTICE: structure.poscar.lattice.astype(dtype),
        keys.EDGE_SRC: pairs[edge_rows, 3].astype(np.int32),
        keys.EDGE_DST: pairs[edge_rows, 4].astype(np.int32),
        keys.EDGE_SHIFT: pairs[edge_rows, :3].astype(np.int32),
    }
    reverse = partner_index(pairs[edge_rows, 3], pairs[edge_rows, 4], pairs[edge_rows, :3])
    if np.any(reverse < 0):
        lone = pairs[edge_rows[np.nonzero(reverse < 0)[0][0]]].tolist()
        raise DataFormatError(structure.path, f"atom pair {lone} (Rx, Ry, Rz, i, j) has no partner (-R, j, i)")
    graph[keys.EDGE_REVERSE] = reverse.astype(np.int32)

    def padded(blocks: BlockSet, rows: np.ndarray) -> np.ndarray:
        out = np.zeros((len(rows), n_c, n_c), dtype=dtype)
        for position, r in enumerate(rows):
            i, j = pairs[r, 3], pairs[r, 4]
            out[position][np.ix_(slots[species_names[i]], slots[species_names[j]])] = blocks.blocks[r]
        return out

    for name, blocks in operators.items():
        graph[keys.node_key(name)] = padded(blocks, node_order)
        graph[keys.edge_key(name)] = padded(blocks, edge_rows)

    def padded_spin(vectors: List[np.ndarray], rows: np.ndarray) -> np.ndarray:
        out = np.zeros((len(rows), 3, n_c, n_c), dtype=dtype)
        for position, r in enumerate(rows):
            i, j = pairs[r, 3], pairs[r, 4]
            out[position][np.ix_(range(3), slots[species_names[i]], slots[species_names[j]])] = vectors[r]
        return out

    for name, vectors in (spin or {}).items():
        graph[keys.node_spin_key(name)] = padded_spin(vectors, node_order)
        graph[keys.edge_spin_key(name)] = padded_spin(vectors, edge_rows)

    node_mask = np.zeros((n_atoms, n_c, n_c), dtype=bool)
    for atom in range(n_atoms):
        s = slots[species_names[atom]]
        node_mask[atom][np.ix_(s, s)] = True
    overlap_blocks = operators[keys.OVERLAP].blocks if keys.OVERLAP in operators else None
    if overlap_blocks is None:  # no overlap known: every real entry counts
        real = layout.species_orbital_masks()
        pair_masks = real[:, None, :, None] & real[None, :, None, :]  # [n_s, n_s, n_c, n_c]
        edge_mask = pair_masks[species[pairs[edge_rows, 3]], species[pairs[edge_rows, 4]]]
    else:
        edge_mask = np.zeros((len(edge_rows), n_c, n_c), dtype=bool)
        for position, r in enumerate(edge_rows):
            i, j = pairs[r, 3], pairs[r, 4]
            counted = overlap_entry_mask(overlap_blocks[r], structure.orbital_shells(i), structure.orbital_shells(j))
            edge_mask[position][np.ix_(slots[species_names[i]], slots[species_names[j]])] = counted
    graph[keys.NODE_MASK] = node_mask
    graph[keys.EDGE_MASK] = edge_mask
    return graph


def partner_index(src: np.ndarray, dst: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """[n_edges] int64: the position of each edge's partner (j, i, -R) in the same list, -1 if absent.

    Vectorized (a sort and a binary search over one int64 key per edge), for graphs of 10^6 edges.
    """
    src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
    shifts = np.asarray(shifts, np.int64).reshape(-1, 3)
    if len(src) == 0:
        return np.zeros(0, np.int64)
    low = int(min(shifts.min(), -shifts.max()))
    span = int(max(shifts.max(), -shifts.min())) - low + 1
    n_atoms = int(max(src.max(), dst.max())) + 1

    def encode(a, b, r):
        key = a
        for column in range(3):
            key = key * span + (r[:, column] - low)
        return key * n_atoms + b

    if (n_atoms * span**3 * n_atoms).bit_length() > 62:
        raise ValueError(f"graph too large to index ({n_atoms} atoms, lattice shifts up to {span})")
    forward = encode(src, dst, shifts)
    order = np.argsort(forward, kind="stable")
    wanted = encode(dst, src, -shifts)
    position = np.clip(np.searchsorted(forward[order], wanted), 0, len(order) - 1)
    found = forward[order][position] == wanted
    return np.where(found, order[position], -1)


def graph_entry_counts(graph: Graph, layout: OrbitalLayout) -> Tuple[int, int]:
    """(total, masked) block entries, as DeepH's tools count them.

    total: entries of every stored block that the element pair really has (n_i * n_j summed
    over all pairs, on-site included); masked: those that count for training and metrics.
    """
    per_species = layout.species_orbital_masks().sum(axis=1)
    n_orb = per_species[graph[keys.SPECIES]]
    total = int(np.sum(n_orb**2) + np.sum(n_orb[graph[keys.EDGE_SRC]] * n_orb[graph[keys.EDGE_DST]]))
    masked = int(graph[keys.NODE_MASK].sum() + graph[keys.EDGE_MASK].sum())
    return total, masked


def layout_from_structures(
    structures: Iterable[StructureFolder],
    common_orbital_types=None,
    elements: Optional[Sequence[str]] = None,
    base: Optional[OrbitalLayout] = None,
) -> OrbitalLayout:
    """The common orbital layout of a set of structure folders (reads info.json only), extending
    ``base`` (a starting model's layout) if given (see :meth:`OrbitalLayout.from_orbital_maps`)."""
    return OrbitalLayout.from_orbital_maps(
        ((str(s.path / "info.json"), s.elements_orbital_map) for s in structures),
        common_orbital_types=common_orbital_types,
        elements=elements,
        base=base,
    )


def graph_blocks(graph: Graph, layout: OrbitalLayout, operator: str, node_values=None, edge_values=None) -> BlockSet:
    """Un-pad a graph's blocks back into a :class:`BlockSet` (on-site pairs first, then edges).

    Args:
        graph: a single-structure graph (``build_graph``).
        operator: which operator to take from the graph, unless values are given.
        node_values, edge_values: [n_atoms, n_c, n_c] and [n_edges, n_c, n_c] arrays to use
            instead, e.g. a model's predictions, written with the same pairs and shapes.
    Returns:
        float64 blocks in the structure's own orbital order, ready for ``write_block_h5``
        (e.g. as hamiltonian_pred.h5).
    """
    from deeph_tf.elements import SYMBOLS

    nodes = np.asarray(graph[keys.node_key(operator)] if node_values is None else node_values, dtype=np.float64)
    edges = np.asarray(graph[keys.edge_key(operator)] if edge_values is None else edge_values, dtype=np.float64)
    species = [SYMBOLS[z] for z in graph[keys.ATOMIC_NUMBERS]]
    slots = {e: layout.slot_indices(e) for e in set(species)}
    n_atoms = len(species)
    src = np.asarray(graph[keys.EDGE_SRC], np.int64)
    dst = np.asarray(graph[keys.EDGE_DST], np.int64)
    shifts = np.asarray(graph[keys.EDGE_SHIFT], np.int64).reshape(-1, 3)
    pairs = np.concatenate([
        np.column_stack([np.zeros((n_atoms, 3), np.int64), np.arange(n_atoms), np.arange(n_atoms)]),
        np.column_stack([shifts, src, dst]),
    ]).reshape(-1, 5)
    blocks: List[np.ndarray] = [nodes[a][np.ix_(slots[species[a]], slots[species[a]])] for a in range(n_atoms)]
    edge_blocks: List[Optional[np.ndarray]] = [None] * len(src)
    names = np.asarray(species, dtype=object)
    for ei in set(species):  # one gather per element pair, not per edge
        for ej in set(species):
            rows = np.nonzero((names[src] == ei) & (names[dst] == ej))[0]
            if len(rows):
                cut = edges[rows][:, slots[ei]][:, :, slots[ej]]
                for position, row in enumerate(rows):
                    edge_blocks[row] = cut[position]
    return BlockSet(pairs, blocks + edge_blocks)


def spinful_graph_blocks(graph: Graph, layout: OrbitalLayout, operator: str, node_values=None, edge_values=None,
                         node_spin=None, edge_spin=None) -> BlockSet:
    """Un-pad spinful blocks: complex128 [2n_i, 2n_j] ``I (x) A + i sum_k sigma_k (x) B_k`` per pair.

    Args:
        graph, operator: as :func:`graph_blocks`; A and B from ``node_<op>``/``edge_<op>`` and
            ``node_<op>_spin``/``edge_<op>_spin`` unless values are given.
        node_values, edge_values: A, [n_atoms | n_edges, n_c, n_c].
        node_spin, edge_spin: B, [n_atoms | n_edges, 3, n_c, n_c] (k = x, y, z).
    Returns:
        complex128 blocks in the DeepH spinful layout (spin outer, orbital inner), pairs as
        :func:`graph_blocks`.
    """
    scalar = graph_blocks(graph, layout, operator, node_values, edge_values)
    node_spin = np.asarray(graph[keys.node_spin_key(operator)] if node_spin is None else node_spin, np.float64)
    edge_spin = np.asarray(graph[keys.edge_spin_key(operator)] if edge_spin is None else edge_spin, np.float64)
    parts = [graph_blocks(graph, layout, operator, node_spin[:, k], edge_spin[:, k]) for k in range(3)]
    merged = [merge_spinful(a, np.stack([p.blocks[n] for p in parts])) for n, a in enumerate(scalar.blocks)]
    return BlockSet(scalar.atom_pairs, merged)
