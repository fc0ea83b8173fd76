"""Symmetries of the whole prediction path on a real periodic crystal (CP2K hBN, self-image blocks).

A freshly initialised small HamiltonianModel predicts every block (R, i, j) of the committed
hBN cell (tests/fixtures/hbn_cp2k) through the user's path: a structure folder on disk (POSCAR,
info.json, overlap.h5, hamiltonian.h5), ``build_graph`` and the frozen signature
(:class:`deeph_tf.infer.predict.Predictor`). Transformed copies of the crystal are written as
new folders, so the POSCAR reader, the graph's lattice shifts (R @ lattice) and the pair
bookkeeping are part of what is tested:

* rotations r' = Q r of lattice and positions: pred' = D(Q) pred D(Q)^T for every block,
  self-images (i, i, R != 0) included (docs/conventions.md, section 2); with parity, improper
  rotations -Q and the inversion -1 add (-1)^(l_i + l_j);
* moving atom a by n_a lattice vectors, with block (R, i, j) relabelled (R + n_i - n_j, i, j):
  the same physical pairs get the same blocks (and a rigid translation changes nothing);
* Hermiticity: pred(R, i, j) = pred(-R, j, i)^T bit for bit.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

import keras
import numpy as np
import pytest

from conftest import REPO_ROOT, TOLERANCE
from deeph_tf.data.block_h5 import BlockSet
from deeph_tf.data.graph import layout_from_structures
from deeph_tf.data.poscar import Poscar
from deeph_tf.data.rotation import rotate_blocks
from deeph_tf.data.structure import StructureFolder, load_structure, write_structure_folder
from deeph_tf.infer.predict import Predictor
from deeph_tf.model.network import HamiltonianModel
from deeph_tf.so3.rotations import random_rotation_matrices

CRYSTAL = REPO_ROOT / "tests" / "fixtures" / "hbn_cp2k" / "dft" / "hBN-000000"
SMALL = dict(irreps_hidden="8x0e+4x1o+4x2e+2x3o", num_blocks=2, lmax_sh=3, num_radial_basis=4, radial_hidden=[8])
#: Above the longest block of the fixture (6.62 A, blocks within 7 A), so every pair gets radial input.
CUTOFF = 7.5
BLOCK_FILES = ("overlap", "hamiltonian")

Key = Tuple[int, int, int, int, int]


@pytest.fixture(scope="module")
def crystal() -> StructureFolder:
    return load_structure(CRYSTAL)


@pytest.fixture(scope="module")
def predictor(crystal):
    """``predictor(dtype, convolution, parity=True, symmetrize=True)``: one fresh model per setting
    (seeded), behind the frozen signature, cached for the module (tracing costs seconds)."""
    layout = layout_from_structures([crystal])
    cache: Dict[tuple, Predictor] = {}

    def make(dtype: str = "float64", convolution: str = "so2", parity: bool = True,
             symmetrize: bool = True) -> Predictor:
        key = (dtype, convolution, parity, symmetrize)
        if key not in cache:
            keras.utils.set_random_seed(11)
            model = HamiltonianModel(layout.elements, layout.common_shells, dtype=dtype, cutoff=CUTOFF,
                                     avg_num_neighbors=57.0, convolution=convolution, parity=parity,
                                     symmetrize=symmetrize, **SMALL)
            model.build()
            cache[key] = Predictor.from_model(model, {"layout": layout.to_dict()}, f"fresh {key}")
        return cache[key]

    return make


def _blocks(structure: StructureFolder) -> Dict[str, BlockSet]:
    return {name: structure.read_blocks(name) for name in BLOCK_FILES}


def _write_copy(folder: Path, structure: StructureFolder, lattice: np.ndarray, positions: np.ndarray,
                blocks: Dict[str, BlockSet]) -> StructureFolder:
    """A structure folder with a new POSCAR (same atoms, same info.json) and the given block files."""
    poscar = Poscar(lattice, structure.species, positions, comment=f"transformed copy of {structure.name}")
    return load_structure(write_structure_folder(folder, poscar, structure.info, blocks))


def _predict(predictor: Predictor, structure: StructureFolder) -> BlockSet:
    """Predicted blocks (float64, the structure's own orbital order, overlap.h5's pairs)."""
    _, predicted = predictor.predict_structure(structure)
    return predicted


def _by_key(blocks: BlockSet) -> Dict[Key, np.ndarray]:
    return dict(zip(blocks.keys(), blocks.blocks))


def _kind(key: Key) -> str:
    on_site_cell = key[:3] == (0, 0, 0)
    if key[3] == key[4]:
        return "on-site" if on_site_cell else "self-image"
    return "inter-atom"


def _relative_errors(actual: BlockSet, expected: BlockSet) -> Dict[str, float]:
    """max |actual - expected| / max |expected| per kind of block (same pairs required)."""
    got, want = _by_key(actual), _by_key(expected)
    assert set(got) == set(want)
    scale = max(float(np.abs(b).max()) for b in want.values())
    errors: Dict[str, float] = {}
    for key, block in want.items():
        kind = _kind(key)
        errors[kind] = max(errors.get(kind, 0.0), float(np.abs(got[key] - block).max()) / scale)
    return errors


def _parity_signs(structure: StructureFolder, blocks: BlockSet) -> BlockSet:
    """Each block times (-1)^(l_i + l_j), shell pair by shell pair (inversion of s, p, ... orbitals)."""
    def signs(atom: int) -> np.ndarray:
        return np.concatenate([np.full(2 * l + 1, (-1.0) ** l) for l in structure.orbital_shells(atom)])

    return BlockSet(blocks.atom_pairs.copy(),
                    [np.outer(signs(i), signs(j)) * b for (_, _, _, i, j), b in zip(blocks.atom_pairs, blocks.blocks)])


def _rotated_copy(folder: Path, structure: StructureFolder, q: np.ndarray) -> StructureFolder:
    """The crystal with lattice and positions rotated (rows: r' = r Q^T), its S and H rotated alike."""
    proper = q if np.linalg.det(q) > 0 else -q
    blocks = {name: rotate_blocks(structure, b, proper) for name, b in _blocks(structure).items()}
    if np.linalg.det(q) < 0:
        blocks = {name: _parity_signs(structure, b) for name, b in blocks.items()}
    return _write_copy(folder, structure, structure.poscar.lattice @ q.T, structure.poscar.positions @ q.T, blocks)


def test_the_crystal_has_self_images_partners_and_edges_near_the_cutoff(crystal, predictor):
    """What makes this crystal a periodic test: blocks (i, i, R != 0) that are graph edges whose
    reverse is the distinct edge (-R, i, i), inter-atom blocks in several cells, edges up to 6.6 A."""
    pairs = crystal.read_blocks("overlap").atom_pairs
    kinds = [_kind(tuple(int(v) for v in p)) for p in pairs]
    assert kinds.count("on-site") == 2 and kinds.count("self-image") >= 20 and kinds.count("inter-atom") >= 20
    graph, _ = predictor().predict_structure(crystal)
    src, dst, shift, reverse = (graph[k] for k in ("edge_src", "edge_dst", "edge_shift", "edge_reverse"))
    self_image = (src == dst) & np.any(shift != 0, axis=1)
    assert self_image.sum() == kinds.count("self-image")
    np.testing.assert_array_equal(shift[reverse[self_image]], -shift[self_image])
    assert np.all(reverse[self_image] != np.nonzero(self_image)[0])
    vectors = graph["positions"][dst] + shift @ graph["lattice"] - graph["positions"][src]
    lengths = np.linalg.norm(vectors, axis=1)
    assert 6.0 < lengths.max() < CUTOFF and lengths.min() > 1.0


@pytest.mark.parametrize("convolution", ["so2", "cg"])
def test_rotating_the_crystal_rotates_every_block(crystal, predictor, float_dtype, convolution, tmp_path):
    """Acceptance: pred(Q crystal) = D(Q) pred D(Q)^T for on-site, self-image and inter-atom blocks
    (relative to the largest block entry: 1e-10 in float64, 1e-5 in float32)."""
    model = predictor(float_dtype, convolution)
    reference = _predict(model, crystal)
    for n, q in enumerate(random_rotation_matrices(2, seed=21).numpy()):
        rotated = _rotated_copy(tmp_path / f"rot{n}", crystal, q)
        predicted = _predict(model, rotated)
        errors = _relative_errors(predicted, rotate_blocks(crystal, reference, q))
        assert set(errors) == {"on-site", "self-image", "inter-atom"}
        assert max(errors.values()) < TOLERANCE[float_dtype], (n, errors)
        # The check can fail: the blocks really change, and the transposed D does not match.
        assert min(_relative_errors(predicted, reference).values()) > 1e-2
        assert max(_relative_errors(predicted, rotate_blocks(crystal, reference, q.T)).values()) > 1e-2


@pytest.mark.parametrize("convolution", ["so2", "cg"])
def test_improper_rotation_and_inversion_add_parity_signs(crystal, predictor, convolution, tmp_path):
    """With parity (an O(3) model), r' = -Q r maps blocks to (-1)^(l_i+l_j) D(Q) pred D(Q)^T, and
    r' = -r to (-1)^(l_i+l_j) pred; the lattice turns left-handed (det < 0) and R stays."""
    model = predictor("float64", convolution, parity=True)
    reference = _predict(model, crystal)
    q = random_rotation_matrices(1, seed=22).numpy()[0]
    for name, improper in (("rotoinversion", -q), ("inversion", -np.eye(3))):
        copy = _rotated_copy(tmp_path / name, crystal, improper)
        assert np.linalg.det(copy.poscar.lattice) < 0
        predicted = _predict(model, copy)
        expected = _parity_signs(crystal, rotate_blocks(crystal, reference, -improper))
        errors = _relative_errors(predicted, expected)
        assert max(errors.values()) < TOLERANCE["float64"], (name, errors)
        # Without the signs it fails: s-p blocks flip sign under inversion.
        assert max(_relative_errors(predicted, rotate_blocks(crystal, reference, -improper)).values()) > 1e-2


def _lattice_shifted_copy(folder: Path, structure: StructureFolder, n: np.ndarray,
                          sign: int = 1) -> Tuple[StructureFolder, Dict[Key, Key]]:
    """Atom a moved by n[a] @ lattice; block (R, i, j) stored as (R + sign (n_i - n_j), i, j).

    Derivation (block (R, i, j) = <phi_i(cell 0)|H|phi_j(cell R)>): the new atom a of cell 0 is the
    old atom a of cell n_a, so the new phi_j(cell R') is the old phi_j(cell R' + n_j), and
    translating <phi_i(n_i)|H|phi_j(R' + n_j)> by -n_i gives the old block (R' + n_j - n_i, i, j):
    R' = R + n_i - n_j (sign = +1). Returns the copy and the map old key -> new key.
    """
    lattice = structure.poscar.lattice
    positions = structure.poscar.positions + n @ lattice
    old_blocks = _blocks(structure)
    old = old_blocks["overlap"].atom_pairs
    assert all(np.array_equal(b.atom_pairs, old) for b in old_blocks.values())
    new = old.copy()
    new[:, :3] += sign * (n[old[:, 3]] - n[old[:, 4]])
    blocks = {name: BlockSet(new, list(b.blocks)) for name, b in old_blocks.items()}
    mapping = {tuple(int(v) for v in a): tuple(int(v) for v in b) for a, b in zip(old, new)}
    return _write_copy(folder, structure, lattice, positions, blocks), mapping


def _pair_vectors(structure: StructureFolder, keys) -> Dict[Key, np.ndarray]:
    """r_j + R @ lattice - r_i of each pair (Angstrom): the geometry a block depends on."""
    r, lattice = structure.poscar.positions, structure.poscar.lattice
    return {k: r[k[4]] + np.asarray(k[:3]) @ lattice - r[k[3]] for k in keys}


@pytest.mark.parametrize("convolution", ["so2", "cg"])
def test_moving_atoms_by_lattice_vectors_relabels_R_only(crystal, predictor, convolution, tmp_path):
    """Atoms moved by whole lattice vectors (POSCAR rewritten, one of them across the 16 A vacuum
    direction), pairs relabelled (R, i, j) -> (R + n_i - n_j, i, j): the same physical pairs, so the
    same predicted blocks to 1e-10 (float64); a rigid translation of the crystal changes nothing."""
    model = predictor("float64", convolution)
    reference = _by_key(_predict(model, crystal))
    n = np.array([[1, -1, 0], [-2, 1, 1]])
    shifted, mapping = _lattice_shifted_copy(tmp_path / "shifted", crystal, n)
    # The relabelling keeps every pair's geometry (the sign is checked, not assumed) ...
    before, after = _pair_vectors(crystal, mapping), _pair_vectors(shifted, mapping.values())
    assert max(np.abs(after[mapping[k]] - v).max() for k, v in before.items()) < 1e-12
    assert max(np.abs(shifted.poscar.positions - crystal.poscar.positions).max(axis=1)) > 15.0
    # ... and the opposite sign would not (inter-atom pairs move by 2 (n_i - n_j) lattice vectors).
    wrong, wrong_mapping = _lattice_shifted_copy(tmp_path / "wrong", crystal, n, sign=-1)
    wrong_after = _pair_vectors(wrong, wrong_mapping.values())
    assert max(np.abs(wrong_after[wrong_mapping[k]] - v).max() for k, v in before.items()) > 1.0

    predicted = _by_key(_predict(model, shifted))
    assert set(predicted) == set(mapping.values())
    assert sum(k[:3] != mapping[k][:3] for k in mapping) > 20  # R really changed
    for old, new in mapping.items():
        np.testing.assert_allclose(predicted[new], reference[old], rtol=0, atol=1e-10, err_msg=str((old, new)))

    moved = _write_copy(tmp_path / "translated", crystal, crystal.poscar.lattice,
                        crystal.poscar.positions + np.array([0.37, -1.9, 3.3]), _blocks(crystal))
    translated = _by_key(_predict(model, moved))
    for key, block in reference.items():
        np.testing.assert_allclose(translated[key], block, rtol=0, atol=1e-10, err_msg=str(key))


def test_predictions_on_the_crystal_are_exactly_hermitian(crystal, predictor, float_dtype):
    """pred(R, i, j) = pred(-R, j, i)^T bit for bit (self-images: (R, i, i) against (-R, i, i))."""
    blocks = _predict(predictor(float_dtype), crystal)
    assert not blocks.missing_partners() and blocks.max_hermiticity_deviation() == 0.0
    predicted = _by_key(blocks)
    for (r1, r2, r3, i, j), block in predicted.items():
        np.testing.assert_array_equal(block, predicted[(-r1, -r2, -r3, j, i)].T, err_msg=str((r1, r2, r3, i, j)))
    self_images = [k for k in predicted if _kind(k) == "self-image"]
    assert self_images and max(np.abs(predicted[k] - predicted[k].T).max() for k in self_images) > 1e-3
    # The check can fail: without the symmetrization the raw heads are not Hermitian.
    raw = _predict(predictor(float_dtype, symmetrize=False), crystal)
    assert raw.max_hermiticity_deviation() > 1e-3
