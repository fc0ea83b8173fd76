"""tools/make_soc_crystal_dataset.py (tools/soc_crystal_data): k-mesh -> H(R), the PySCF pieces, the shipped data.

The shipped data (examples/soc_crystal/data, its README has the command) are read-only here: every
folder's written blocks must reproduce PySCF's own eigenvalues stored beside them, and carry the
spin-orbit physics of iodine (the I 5p valence band split by ~1 eV at Gamma).
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from conftest import REPO_ROOT
from deeph_tf.data import load_structure
from deeph_tf.infer.electronic.bloch import band_energies, bloch_operators
from deeph_tf.infer.electronic.kpoints import read_k_path
from deeph_tf.infer.electronic.spin_orbit import high_symmetry_points, spin_orbit_levels

from soc_crystal_data.kmesh import mesh_k_frac, minimum_image_blocks, supercell_half_period  # tools/ on the path

DATA = REPO_ROOT / "examples" / "soc_crystal" / "data" / "dft"


def _synthetic(rng, lattice, positions, sizes, radius):
    """Random Hermitian blocks B_ij(R) for pairs within ``radius`` (every (R,i,j) with (-R,j,i))."""
    off = np.concatenate([[0], np.cumsum(sizes)])
    blocks = {}
    for i, j in itertools.product(range(len(positions)), repeat=2):
        for r in itertools.product(range(-3, 4), repeat=3):
            d = np.linalg.norm(positions[j] + np.array(r) @ lattice - positions[i])
            if d > radius or (r, i, j) in blocks:
                continue
            b = rng.normal(size=(sizes[i], sizes[j])) + 1j * rng.normal(size=(sizes[i], sizes[j]))
            if (r, i, j) == (tuple(-x for x in r), j, i):
                b = b + b.conj().T
            blocks[(r, i, j)] = b
            blocks[(tuple(-x for x in r), j, i)] = b.conj().T
    return off, blocks


def _bloch(blocks, off, k_frac):
    n = off[-1]
    out = np.zeros((len(k_frac), n, n), complex)
    for (r, i, j), b in blocks.items():
        out[:, off[i]:off[i + 1], off[j]:off[j + 1]] += np.exp(2j * np.pi * k_frac @ np.array(r))[:, None, None] * b
    return out


def test_minimum_image_blocks_invert_the_bloch_sum_on_the_mesh():
    rng = np.random.default_rng(0)
    lattice = np.array([[0.0, 2.1, 2.1], [2.1, 0.0, 2.1], [2.1, 2.1, 0.3]])  # a skewed fcc-like cell
    positions = np.array([[0.1, 0.0, -0.2], [2.0, 2.3, 1.9]])
    mesh = (5, 5, 5)
    off, blocks = _synthetic(rng, lattice, positions, [2, 3], radius=4.5)
    k = mesh_k_frac(mesh)
    perm = rng.permutation(len(k))  # any order of the mesh points
    a_k = _bloch(blocks, off, k[perm])
    radius = supercell_half_period(lattice, mesh) - 0.05
    out, stats = minimum_image_blocks({"h": a_k}, k[perm], mesh, {"h": off}, positions, lattice, radius)
    got = {(tuple(int(v) for v in p[:3]), int(p[3]), int(p[4])): b for p, b in zip(out["h"].atom_pairs, out["h"].blocks)}
    for key, b in blocks.items():
        np.testing.assert_allclose(got[key], b, atol=1e-12)
    for key, b in got.items():  # pairs between 4.5 A and the radius: zero
        if key not in blocks:
            assert np.abs(b).max() < 1e-12
    assert out["h"].max_hermiticity_deviation() < 1e-12
    assert stats["max_distance"] <= radius


def test_minimum_image_blocks_refuse_a_radius_past_half_the_supercell_and_a_partial_mesh():
    lattice = 3.0 * np.eye(3)
    positions = np.zeros((1, 3))
    k = mesh_k_frac((2, 2, 2))
    a_k = np.ones((8, 1, 1), complex)
    with pytest.raises(ValueError, match="half the"):
        minimum_image_blocks({"h": a_k}, k, (2, 2, 2), {"h": np.array([0, 1])}, positions, lattice, 3.0)
    with pytest.raises(ValueError, match="not the full"):
        minimum_image_blocks({"h": a_k[:7]}, k[:7], (2, 2, 2), {"h": np.array([0, 1])}, positions, lattice, 2.0)
    assert supercell_half_period(lattice, (2, 2, 2)) == pytest.approx(3.0)


def _shipped():
    folders = sorted(p for p in DATA.iterdir() if (p / "info.json").is_file()) if DATA.is_dir() else []
    assert folders, f"no structure folders in {DATA} (the shipped example data)"
    return folders


def test_shipped_blocks_reproduce_pyscf_bands_and_are_hermitian_time_reversal_symmetric():
    from soc_crystal_data.validate import check_folder

    for folder in _shipped():
        errors = check_folder(folder)  # raises above its limits
        assert errors["mesh_occupied_max"] < 1e-3 and errors["off_mesh_occupied_max"] < 1e-2


def test_shipped_crystal_has_kramers_pairs_and_the_iodine_p_spin_orbit_splitting():
    st = load_structure(_shipped()[0])
    h, s = st.read_blocks("hamiltonian"), st.read_blocks("overlap")
    hk, sk = bloch_operators(h, s, st)
    n_occ = int(st.info["occupation"])
    trim = np.array([[0, 0, 0], [0.5, 0, 0.5], [0.5, 0.5, 0.5]])
    e = band_energies(hk, sk, trim)
    np.testing.assert_allclose(e[:, 0::2], e[:, 1::2], atol=1e-8)  # Kramers pairs at TRIM
    # Gamma: the top 6 valence levels are I 5p; SOC splits them 4 + 2 by ~1 eV (scalar part: ~degenerate)
    full, scalar = spin_orbit_levels(h, s, st)
    p_full, p_scalar = full[n_occ - 6:n_occ], scalar[n_occ - 6:n_occ]
    assert 0.7 < p_full.max() - p_full.min() < 1.4
    assert p_scalar.max() - p_scalar.min() < 0.3
    labels = [label for label, _ in high_symmetry_points(read_k_path(st.path / "K_PATH"))]
    assert {"GAMMA", "X", "L"} <= set(labels)


def test_band_fock_equals_the_scf_fock_on_the_scf_mesh():
    """Real PySCF: F[D](k) from bloch_fock (the workaround of PySCF's kpts_band V_xc) = the SCF's own F."""
    pytest.importorskip("pyscf")
    from soc_crystal_data.scf import bloch_fock, build_cell, fock_mesh_deviation, run_scf

    a = 6.0
    lattice = np.array([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]])
    cell = build_cell(["Li", "I"], np.array([[0, 0, 0], [a / 2 + 0.1, 0, 0]]), lattice, "gth-szv", "gth-pade",
                      "stuttgart-so", 0.1)
    mf = run_scf(cell, (2, 1, 1), "PBE", 1e-8)
    k = mesh_k_frac((2, 1, 1))
    fock = bloch_fock(mf, cell.get_abs_kpts(k))
    assert fock_mesh_deviation(mf, fock, k) < 1e-5  # eV
    assert np.abs(fock[0] - fock[0].conj().T).max() < 1e-10


def test_a_resumed_run_skips_complete_folders_and_refuses_other_settings(tmp_path):
    import shutil
    from dataclasses import replace

    from soc_crystal_data.generate import Settings, Task, check_existing, generate, plan

    shutil.copytree(_shipped()[0], tmp_path / "dft" / "LiI-000000")  # made with the defaults, seed 0
    settings = Settings(out=tmp_path)
    summary = generate(plan(settings, 1), settings)
    assert summary["skipped"] == ["LiI-000000"] and not summary["computed"]
    with pytest.raises(ValueError, match="block_radius"):
        generate(plan(replace(settings, block_radius=8.0), 1), replace(settings, block_radius=8.0))
    with pytest.raises(ValueError, match="positions differ"):  # structure 1's geometry is not folder 0's
        check_existing(tmp_path / "dft" / "LiI-000000", Task(1, "LiI-000000"), settings)


def test_cli_refuses_molecules_and_a_band_mesh_off_the_scf_mesh(tmp_path):
    from soc_crystal_data import main

    with pytest.raises(SystemExit, match="make_pyscf_dataset.py --spinful"):
        main(["--out", str(tmp_path), "--material", "molecule:CH4"])
    with pytest.raises(SystemExit, match="multiple of --scf-mesh"):
        main(["--out", str(tmp_path), "--scf-mesh", "3", "3", "3", "--band-mesh", "4", "4", "4"])
    with pytest.raises(SystemExit, match="Gamma-only"):
        main(["--out", str(tmp_path), "--scf-mesh", "1", "1", "1"])
    with pytest.raises(ValueError, match="unknown material"):
        main(["--out", str(tmp_path), "--material", "NaCl"])
    assert not (tmp_path / "dft").exists() or not any((tmp_path / "dft").iterdir())
