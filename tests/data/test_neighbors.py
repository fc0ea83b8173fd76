"""Periodic radius neighbour lists against a brute-force reference and real DeepH pair sets."""
from __future__ import annotations

import itertools
import sys
import tracemalloc

import h5py
import numpy as np
import pytest

from deeph_tf.data.neighbors import edge_vectors, perpendicular_heights, radius_graph
from deeph_tf.data.poscar import read_poscar

from conftest import requires_shared
from conftest import SHARED_EXAMPLES as SHARED


def brute_force(positions, lattice, cutoff, pbc, include_self_image=False):
    """Every (i, j, R) over a generous image range, same distance formula as the code."""
    positions = np.asarray(positions, float)
    pbc = np.array(pbc, bool)
    if pbc.any():
        heights = perpendicular_heights(lattice)
        # Positions may lie outside the cell: widen by how far they stray (in lattice units).
        frac = np.linalg.solve(np.asarray(lattice).T, positions.T).T
        spread = np.ceil(frac.max(0) - frac.min(0))
        n_img = np.where(pbc, np.ceil(cutoff / heights) + 1 + spread, 0).astype(int)
    else:
        n_img = np.zeros(3, int)
        lattice = np.zeros((3, 3))
    lat = np.asarray(lattice, float)
    n = len(positions)
    grid = np.array(list(itertools.product(*[range(-m, m + 1) for m in n_img])), dtype=np.int64)
    vec = (positions[None, None, :, :] - positions[None, :, None, :]) + (grid @ lat)[:, None, None, :]
    d2 = np.einsum("rijk,rijk->rij", vec, vec)  # [R, i, j]
    r, i, j = np.nonzero(d2 < cutoff * cutoff)
    out = {(int(a), int(b)) + tuple(int(x) for x in grid[k]) for k, a, b in zip(r, i, j)}
    if include_self_image:
        out |= {(a, a, 0, 0, 0) for a in range(n)}
    else:
        out -= {(a, a, 0, 0, 0) for a in range(n)}
    return out


def as_set(src, dst, shifts):
    return {(int(i), int(j), int(a), int(b), int(c)) for i, j, (a, b, c) in zip(src, dst, shifts)}


def random_skewed_cell(rng, scale=3.0):
    while True:
        lat = scale * (np.eye(3) + 0.45 * rng.normal(size=(3, 3)))
        heights = perpendicular_heights(lat) if abs(np.linalg.det(lat)) > 1e-3 else np.zeros(3)
        if heights.min() > 0.3 * scale:
            return lat


@pytest.mark.parametrize("pbc", [(True, True, True), (True, False, True), (False, False, True),
                                 (False, False, False)])
@pytest.mark.parametrize("cutoff_factor", [0.4, 1.0, 2.6])
def test_matches_brute_force_on_skewed_cells(rng, pbc, cutoff_factor):
    for _ in range(3):
        lat = random_skewed_cell(rng)
        n = int(rng.integers(1, 7))
        frac = rng.uniform(-1.5, 2.5, size=(n, 3))  # atoms deliberately outside the cell too
        pos = frac @ lat
        cutoff = cutoff_factor * float(perpendicular_heights(lat).max())  # 2.6: several images
        src, dst, shifts = radius_graph(pos, lat, cutoff, pbc=pbc)
        assert src.dtype == dst.dtype == shifts.dtype == np.int64
        assert shifts.shape == (src.size, 3)
        got = as_set(src, dst, shifts)
        assert len(got) == src.size  # no duplicates
        assert got == brute_force(pos, lat, cutoff, pbc)
        for a in range(3):
            if not pbc[a]:
                assert np.all(shifts[:, a] == 0)


def test_sorted_symmetric_and_vectors(rng):
    lat = random_skewed_cell(rng)
    pos = rng.uniform(0, 1, size=(9, 3)) @ lat
    src, dst, shifts = radius_graph(pos, lat, 7.0)
    keys = np.c_[src, dst, shifts]
    assert np.array_equal(keys, keys[np.lexsort(keys.T[::-1])])
    fwd = as_set(src, dst, shifts)
    assert fwd == {(j, i, -a, -b, -c) for i, j, a, b, c in fwd}
    assert any(i == j for i, j, *_ in fwd)  # self-images i == i, R != 0 are there
    assert not any(i == j and (a, b, c) == (0, 0, 0) for i, j, a, b, c in fwd)
    vec = edge_vectors(pos, lat, src, dst, shifts)
    assert vec.shape == (src.size, 3)
    np.testing.assert_allclose(vec, pos[dst] + shifts @ lat - pos[src], atol=1e-12)
    assert np.all(np.linalg.norm(vec, axis=1) < 7.0)


def test_include_self_image_adds_onsite(rng):
    lat = 5.0 * np.eye(3)
    pos = rng.uniform(0, 5, size=(4, 3))
    base = as_set(*radius_graph(pos, lat, 3.0))
    full = as_set(*radius_graph(pos, lat, 3.0, include_self_image=True))
    assert full - base == {(i, i, 0, 0, 0) for i in range(4)}


def test_translating_atoms_by_lattice_vectors_only_relabels_shifts(rng):
    lat = random_skewed_cell(rng)
    pos = rng.uniform(0, 1, size=(5, 3)) @ lat
    moves = rng.integers(-3, 4, size=(5, 3))
    moved = pos + moves @ lat
    ref = as_set(*radius_graph(pos, lat, 6.0))
    got = as_set(*radius_graph(moved, lat, 6.0))
    # r'_j + R' L - r'_i = r_j + (R' + m_j - m_i) L - r_i
    assert {(i, j, *(np.array(R) + moves[i] - moves[j]).tolist()) for i, j, *R in ref} == got


def test_known_lattices():
    # simple cubic: 6 nearest neighbours, 18 within sqrt(2) + eps, 26 within sqrt(3) + eps
    for cutoff, count in [(1.01, 6), (1.42, 18), (1.74, 26)]:
        src, _, _ = radius_graph(np.zeros((1, 3)), np.eye(3), cutoff)
        assert src.size == count
    # diamond Si: 4 neighbours at 2.35 A per atom
    a = 5.43
    lat = 0.5 * a * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]], float)
    src, _, _ = radius_graph([[0, 0, 0], [a / 4] * 3], lat, 2.4)
    assert np.bincount(src).tolist() == [4, 4]


def test_molecule_ignores_lattice():
    pos = np.array([[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0], [30.0, 0, 0]])
    for lat in (None, np.zeros((3, 3)), 2.0 * np.eye(3)):
        src, dst, shifts = radius_graph(pos, lat, 2.0, pbc=False)
        assert as_set(src, dst, shifts) == {(i, j, 0, 0, 0) for i in range(3) for j in range(3) if i != j}
    src, dst, shifts = radius_graph(np.zeros((0, 3)), np.eye(3), 2.0)
    assert src.shape == dst.shape == (0,) and shifts.shape == (0, 3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(positions=np.zeros((3, 2))), "positions"),
    (dict(lattice=np.eye(2)), "lattice"),
    (dict(cutoff=0.0), "cutoff"),
    (dict(cutoff=-1.0), "cutoff"),
    (dict(cutoff=float("nan")), "cutoff"),
    (dict(lattice=np.array([[1.0, 0, 0], [2.0, 0, 0], [0, 0, 1]])), "singular"),
    (dict(lattice=None), "lattice"),
    (dict(pbc=(True, True)), "pbc"),
])
def test_errors(kwargs, match):
    args = dict(positions=np.zeros((2, 3)), lattice=np.eye(3), cutoff=1.0, pbc=(True, True, True))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        radius_graph(args["positions"], args["lattice"], args["cutoff"], pbc=args["pbc"])


def test_singular_lattice_fine_without_pbc():
    radius_graph(np.zeros((2, 3)), np.zeros((3, 3)), 1.0, pbc=(False, False, False))


def _silicon_density_cell(rng, n):
    """n random atoms in a skewed cell at about the atom density of silicon (0.05 per A^3)."""
    edge = (n / 0.05) ** (1 / 3)
    lat = edge * np.array([[1.0, 0, 0], [0.3, 1.0, 0], [0.2, 0.1, 1.0]])
    return rng.uniform(0, 1, size=(n, 3)) @ lat, lat


def _python_lines_and_peak_bytes(function, *args):
    """(Python lines executed, peak bytes allocated, result) of one call: deterministic costs."""
    lines = 0

    def tracer(frame, event, arg):
        nonlocal lines
        lines += event == "line"
        return tracer

    tracemalloc.start()
    sys.settrace(tracer)
    try:
        result = function(*args)
    finally:
        sys.settrace(None)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return lines, peak, result


def test_cost_grows_with_edges_not_atom_pairs(rng, capsys):
    # Guards against a Python loop over atoms or pairs (Python lines executed grow with n) and a
    # dense [n, n, images] distance array (memory grows with n^2): counts, not wall time.
    small_lines, _, _ = _python_lines_and_peak_bytes(radius_graph, *_silicon_density_cell(rng, 125), 6.0)
    n = 1000
    lines, peak, (src, dst, shifts) = _python_lines_and_peak_bytes(radius_graph, *_silicon_density_cell(rng, n), 6.0)
    assert src.size > 20 * n
    assert lines <= small_lines + 100  # 8x the atoms, the same vectorized code path
    assert peak < 1000 * src.size  # bytes: ~150 per edge; a dense pair array would be ~25 per atom pair and image
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


# ---- real data: the pairs the DFT code kept ---------------------------------------------------

def _overlap_pairs(folder):
    poscar = read_poscar(folder / "POSCAR")
    with h5py.File(folder / "overlap.h5", "r") as f:
        pairs = np.asarray(f["atom_pairs"][()], dtype=np.int64)
    dist = np.linalg.norm(edge_vectors(poscar.positions, poscar.lattice, pairs[:, 3], pairs[:, 4],
                                       pairs[:, :3]), axis=1)
    return poscar, pairs, dist


@requires_shared
@pytest.mark.parametrize("name, expected_max", [("Si", 8.5856), ("MoTe2", 7.1381)])
def test_real_overlap_pairs_inside_radius_graph(name, expected_max):
    poscar, pairs, dist = _overlap_pairs(SHARED / "periodic" / name)
    assert dist.max() == pytest.approx(expected_max, abs=1e-3)
    overlap = {(int(i), int(j), int(a), int(b), int(c)) for a, b, c, i, j in pairs}
    for cutoff in (2.5, 4.0, 6.0, float(dist.max()) + 1e-6):
        graph = as_set(*radius_graph(poscar.positions, poscar.lattice, cutoff, include_self_image=True))
        below = {key for key, d in zip(((int(i), int(j), int(a), int(b), int(c)) for a, b, c, i, j in pairs),
                                       dist) if d < cutoff}
        assert below <= graph
    # One radius (the largest overlap-pair distance) reproduces the DFT code's pair set exactly:
    # the next shells (Si 8.90 A, MoTe2 7.64 A) lie beyond it, no per-species cutoff is visible.
    assert graph == overlap


@requires_shared
def test_real_molecules_reproduce_pair_sets():
    folders = sorted(p for p in (SHARED / "molecules13").iterdir() if (p / "overlap.h5").is_file())[:4]
    for folder in folders:
        poscar, pairs, dist = _overlap_pairs(folder)
        graph = as_set(*radius_graph(poscar.positions, poscar.lattice, float(dist.max()) + 1e-6,
                                     include_self_image=True))
        assert graph == {(int(i), int(j), int(a), int(b), int(c)) for a, b, c, i, j in pairs}
