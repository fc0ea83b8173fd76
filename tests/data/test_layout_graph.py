"""Orbital layout, graph building and DeepH entry counting."""
import shutil

import h5py
import numpy as np
import pytest

from conftest import WATER, requires_shared, shared_path
from deeph_tf.data import keys
from deeph_tf.data.errors import DataFormatError
from deeph_tf.data.graph import build_graph, graph_blocks, graph_entry_counts, layout_from_structures
from deeph_tf.data.layout import OrbitalLayout, parse_orbital_types
from deeph_tf.data.structure import load_structure



def test_common_layout_and_slots():
    layout = OrbitalLayout.from_orbital_maps([("a", {"H": [0, 0, 1]}), ("b", {"O": [0, 0, 0, 1, 1, 2], "H": [0, 0, 1]})])
    assert layout.elements == ("H", "O")
    assert layout.common_orbital_types == "s3p2d1" and layout.n_common == 14
    assert list(layout.slot_indices("H")) == [0, 1, 3, 4, 5]  # s, s, first p (after 3 common s)
    assert list(layout.slot_indices("O")) == list(range(14))
    assert layout.orbital_mask("H").sum() == 5
    assert OrbitalLayout.from_dict(layout.to_dict()) == layout


def test_layout_errors_name_the_sources():
    with pytest.raises(ValueError, match="O has shells .* in b .* in a"):
        OrbitalLayout.from_orbital_maps([("a", {"O": [0, 1]}), ("b", {"O": [0, 0, 1]})])
    with pytest.raises(ValueError, match="common layout s1p1 has fewer"):
        OrbitalLayout.from_orbital_maps([("a", {"O": [0, 0, 1]})], common_orbital_types="s1p1")
    with pytest.raises(ValueError, match="not in the configured elements"):
        OrbitalLayout.from_orbital_maps([("a", {"O": [0], "H": [0]})], elements=["O"])
    assert parse_orbital_types("s3p2d1f1") == (0, 0, 0, 1, 1, 2, 3)
    with pytest.raises(ValueError, match="s3x"):
        parse_orbital_types("s3x")


def test_s3p2d1f1_output_irreps():
    layout = OrbitalLayout.from_orbital_maps([("a", {"Fe": [0, 0, 0, 1, 1, 2, 3]})])
    per_l = {}
    for mul, ir in layout.output_irreps:
        per_l[ir.l] = per_l.get(ir.l, 0) + mul
    assert per_l == {0: 15, 1: 24, 2: 22, 3: 18, 4: 8, 5: 3, 6: 1}


def test_water_graph_holds_the_blocks():
    structure = load_structure(WATER / "0")
    layout = layout_from_structures([structure])
    graph = build_graph(structure, layout, targets=("hamiltonian", "density_matrix"), dtype=np.float64)
    h = structure.read_blocks("hamiltonian")
    assert graph[keys.SPECIES].tolist() == [1, 0, 0]  # O H H with elements (H, O)
    assert graph[keys.EDGE_SRC].shape == (6,) and graph[keys.NODE_MASK].shape == (3, 14, 14)
    for e, (i, j, r) in enumerate(zip(graph[keys.EDGE_SRC], graph[keys.EDGE_DST], graph[keys.EDGE_SHIFT])):
        block = h.block((*r, i, j))
        si = layout.slot_indices(structure.species[i])
        sj = layout.slot_indices(structure.species[j])
        np.testing.assert_array_equal(graph["edge_hamiltonian"][e][np.ix_(si, sj)], block)
        reverse = graph[keys.EDGE_REVERSE][e]
        assert (graph[keys.EDGE_SRC][reverse], graph[keys.EDGE_DST][reverse]) == (j, i)
        np.testing.assert_array_equal(graph["edge_hamiltonian"][reverse], graph["edge_hamiltonian"][e].T)
    np.testing.assert_array_equal(graph["node_hamiltonian"][0], h.block((0, 0, 0, 0, 0)))
    assert graph_entry_counts(graph, layout) == (24 * 24, 24 * 24)
    padded_h_rows = ~layout.orbital_mask("H")
    assert not graph["node_hamiltonian"][1][padded_h_rows].any()
    assert not graph[keys.NODE_MASK][1][padded_h_rows].any()


@requires_shared
def test_molecules13_entry_counts_match_deeph_tools():
    """The issue's reference numbers from the DeepH tools: (total, masked) per structure."""
    expected = {"1000": (11664, 11504), "1002": (11664, 11454), "25000": (4761, 4761), "4990": (529, 529)}
    folders = [p for p in sorted(shared_path("molecules13").iterdir()) if p.is_dir()]
    structures = {p.name: load_structure(p) for p in folders}
    layout = layout_from_structures(structures.values())
    assert layout.common_orbital_types == "s2p2d1"
    for sid, counts in expected.items():
        assert graph_entry_counts(build_graph(structures[sid], layout), layout) == counts, sid


@requires_shared
def test_periodic_edges_and_vectors():
    structure = load_structure(shared_path("periodic", "Si"))
    layout = layout_from_structures([structure])
    graph = build_graph(structure, layout)
    assert np.any(graph[keys.EDGE_SHIFT] != 0)
    r = graph[keys.EDGE_SHIFT]
    np.testing.assert_array_equal(r[graph[keys.EDGE_REVERSE]], -r)


def _copy(tmp_path, name="s"):
    target = tmp_path / name
    shutil.copytree(WATER / "0", target)
    return target


def _rewrite(path, **datasets):
    with h5py.File(path, "r") as f:
        data = {k: f[k][()] for k in f}
    data.update(datasets)
    path.unlink()
    with h5py.File(path, "w") as f:
        for k, v in data.items():
            f[k] = v


def test_atom_pairs_must_agree_between_files(tmp_path):
    from deeph_tf.data.block_h5 import BlockSet, read_block_h5, write_block_h5

    folder = _copy(tmp_path)
    reference_graph = build_graph(load_structure(WATER / "0"), layout_from_structures([load_structure(WATER / "0")]))
    h = read_block_h5(folder / "hamiltonian.h5")
    order = np.random.default_rng(0).permutation(h.n_pairs)  # same pairs, another order: accepted
    write_block_h5(folder / "hamiltonian.h5", BlockSet(h.atom_pairs[order], [h.blocks[k] for k in order]))
    structure = load_structure(folder)
    layout = layout_from_structures([structure])
    graph = build_graph(structure, layout)
    np.testing.assert_array_equal(graph["edge_hamiltonian"], reference_graph["edge_hamiltonian"])

    keep = [k for k, p in enumerate(h.keys()) if p[3:] not in ((1, 2), (2, 1))]
    write_block_h5(folder / "hamiltonian.h5", BlockSet(h.atom_pairs[keep], [h.blocks[k] for k in keep]))
    with pytest.raises(DataFormatError, match=r"hamiltonian\.h5: atom_pairs differ from overlap\.h5"):
        build_graph(load_structure(folder), layout)


def test_non_hermitian_and_spinful_are_refused(tmp_path):
    folder = _copy(tmp_path)
    with h5py.File(folder / "hamiltonian.h5", "r") as f:
        entries = f["entries"][()]
    entries[1] += 0.5  # (0,0,0,0,0) block, off-diagonal entry
    _rewrite(folder / "hamiltonian.h5", entries=entries)
    structure = load_structure(folder)
    layout = layout_from_structures([structure])
    with pytest.raises(DataFormatError, match=r"hamiltonian\.h5: not Hermitian"):
        build_graph(structure, layout)
    build_graph(structure, layout, hermiticity_tolerance=1.0)  # policy knob works

    spinful = _copy(tmp_path, "spin")
    info = (spinful / "info.json").read_text().replace('"spinful": false', '"spinful": true')
    (spinful / "info.json").write_text(info)
    with pytest.raises(DataFormatError, match="spinful"):
        build_graph(load_structure(spinful), layout)


def test_radius_graph_for_poscar_only(tmp_path):
    folder = tmp_path / "poscar_only"
    folder.mkdir()
    for name in ("POSCAR", "info.json"):
        shutil.copy(WATER / "0" / name, folder / name)
    structure = load_structure(folder)
    layout = layout_from_structures([structure])
    graph = build_graph(structure, layout, targets=(), radius_cutoff=3.0)
    assert len(graph[keys.EDGE_SRC]) == 6 and "edge_hamiltonian" not in graph
    with pytest.raises(DataFormatError, match="overlap.h5"):
        build_graph(structure, layout)


def test_writer_round_trip_with_predictions(tmp_path):
    """graph -> blocks -> hamiltonian_pred.h5 -> reader gives back the DFT blocks exactly."""
    from deeph_tf.data.structure import write_structure_folder

    structure = load_structure(WATER / "2")
    layout = layout_from_structures([structure])
    graph = build_graph(structure, layout, dtype=np.float64)
    predicted = graph_blocks(graph, layout, "hamiltonian")
    out = write_structure_folder(
        tmp_path / "dft" / "2", structure.poscar, structure.info,
        {"overlap": structure.read_blocks("overlap"), "hamiltonian_pred": predicted},
    )
    again = load_structure(out)
    assert again.species == structure.species
    np.testing.assert_array_equal(again.poscar.positions, structure.poscar.positions)
    read_back = again.read_blocks("hamiltonian_pred")
    original = structure.read_blocks("hamiltonian")
    assert sorted(read_back.keys()) == sorted(original.keys())
    for key in original.keys():
        np.testing.assert_array_equal(read_back.block(key), original.block(key))
    assert read_back.max_hermiticity_deviation() == 0.0
