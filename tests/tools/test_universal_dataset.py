"""Molecules in tools/cp2k_data (``--material molecule:<G2 name>``) and tools/make_universal_dataset.py.

Fast tests: the box geometry, the closed-shell filter, the composition of the universal set
(held-out formulas, unique folder names and seeds, no pure-carbon pretraining crystal), the
order of the work, the new zincblende crystals; one real CP2K run of HF (~10 s, skipped
without CP2K) that passes ``--validate``.
"""
from __future__ import annotations

import json
import os
import shutil
from collections import Counter

import numpy as np
import pytest

from deeph_tf.data import load_structure

import make_universal_dataset as uni  # tools/ is on the path (setup.cfg, [tool:pytest] pythonpath)
from cp2k_data import main as tool_main
from cp2k_data.generate import _validation_points
from cp2k_data.materials import (MOLECULE_IMAGE_MARGIN, band_path, closed_shell_problem, displaced_structure,
                                 folder_stem, k_mesh, material, min_image_distance)
from cp2k_data.plan import Settings, plan

HAVE_CP2K = shutil.which("cp2k.psmp") is not None or bool(os.environ.get("CP2K_EXE"))


@pytest.mark.parametrize("name", ["H2", "H2O", "CH3CONH2", "2-butyne", "C4H4NH", "SiCl4"])
@pytest.mark.parametrize("radius", [4.0, 7.0])
def test_molecule_box_keeps_every_image_beyond_block_radius_plus_one(name, radius):
    for seed in range(5):
        s = displaced_structure(f"molecule:{name}", (1, 1, 1), 0.05, seed, radius)
        assert s.pbc == (False, False, False) and len(s.species) >= 2
        assert np.allclose(s.lattice, np.eye(3) * s.lattice[0, 0])  # cubic
        assert min_image_distance(s.positions, s.lattice) > radius + MOLECULE_IMAGE_MARGIN
        frac = s.positions / s.lattice[0, 0]
        assert frac.min() > 0 and frac.max() < 1  # inside the box, centred
    # the box depends on the molecule and the settings, not on the seed
    a, b = (displaced_structure(f"molecule:{name}", (1, 1, 1), 0.05, seed, radius) for seed in (0, 1))
    assert np.array_equal(a.lattice, b.lattice) and not np.allclose(a.positions, b.positions)


def test_min_image_distance_sees_the_nearest_image():
    lattice = np.eye(3) * 10.0
    assert min_image_distance(np.array([[0.5, 5, 5], [9.0, 5, 5]]), lattice) == pytest.approx(1.5)
    assert min_image_distance(np.array([[5.0, 5, 5]]), lattice) == pytest.approx(10.0)


def test_molecule_structure_is_reproducible_from_seed():
    a = displaced_structure("molecule:H2O", (1, 1, 1), 0.05, 42, 7.0)
    b = displaced_structure("molecule:H2O", (1, 1, 1), 0.05, 42, 7.0)
    assert np.array_equal(a.positions, b.positions)
    settings = Settings(out=None, material="molecule:H2O", supercell=(1, 1, 1), seed=40, block_radius=7.0)
    task = plan(settings, 1, start_index=2)[0]
    assert task.name == "H2O-000002"
    from cp2k_data.plan import structure_of

    assert np.array_equal(structure_of(task, settings).positions, a.positions)  # seed + k


def test_molecule_has_gamma_only_mesh_no_path_and_one_validation_point():
    s = displaced_structure("molecule:CH4", (1, 1, 1), 0.05, 0, 7.0)
    assert k_mesh(s, 0.4) == (1, 1, 1)
    assert band_path(s) == []
    corners, extra = _validation_points(s, 0)
    assert corners == [] and len(extra) == 1 and not np.any(extra[0])


def test_molecule_settings_are_checked():
    with pytest.raises(ValueError, match="supercell must be 1 1 1"):
        plan(Settings(out=None, material="molecule:H2O", supercell=(2, 1, 1), block_radius=7.0), 1)
    with pytest.raises(ValueError, match="block-radius > 0"):
        plan(Settings(out=None, material="molecule:H2O", supercell=(1, 1, 1), block_radius=0.0), 1)


def test_closed_shell_filter_refuses_open_shell_and_unknown_molecules():
    assert closed_shell_problem("H2O") == "" and closed_shell_problem("CH2_s1A1d") == ""
    assert "odd number of electrons" in closed_shell_problem("OH")
    assert "magnetic moments" in closed_shell_problem("O2")  # triplet, even electron count
    assert "magnetic moments" in closed_shell_problem("CH2_s3B1d")
    assert "single atom" in closed_shell_problem("Si")
    assert "not an ASE G2 molecule" in closed_shell_problem("unobtainium")
    with pytest.raises(ValueError, match="only closed-shell G2 molecules.*O2"):
        material("molecule:O2")
    assert tool_main(["--out", "/nonexistent/never", "--material", "molecule:NO", "--supercell", "1", "1", "1",
                      "--block-radius", "7"]) == 2


def test_folder_stems_are_valid_names():
    assert folder_stem("molecule:CH4") == "CH4" and folder_stem("molecule:2-butyne") == "2-butyne"
    assert folder_stem("hBN") == "hBN" and folder_stem("molecule:a b/c") == "a_b_c"


def test_zincblende_crystals():
    for name, a, species in (("SiC", 4.38, {"Si", "C"}), ("cBN", 3.62, {"B", "N"}), ("BP", 4.55, {"B", "P"})):
        s = displaced_structure(name, (1, 1, 1), 0.0, 0)
        assert set(s.species) == species and len(s.species) == 2 and s.pbc == (True, True, True)
        assert abs(np.linalg.det(s.lattice)) == pytest.approx(a ** 3 / 4)  # fcc primitive cell
        assert np.linalg.norm(s.positions[1] - s.positions[0]) == pytest.approx(a * np.sqrt(3) / 4)


# --- the universal set ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full():
    return uni.entries()


def test_universal_composition(full):
    comp = uni.composition()
    elements = set(uni.ELEMENTS)
    from ase.build import molecule

    for name in comp["pretrain_molecules"] + comp["heldout_molecules"]:
        atoms = molecule(name)
        assert set(atoms.get_chemical_symbols()) <= elements and 2 <= len(atoms) <= uni.MAX_MOLECULE_ATOMS
        assert closed_shell_problem(name) == ""
    assert "O2" in comp["excluded"] and "OH" in comp["excluded"] and "H2O" in comp["pretrain_molecules"]
    # every element is in pretraining, in molecules and (B, C, N, Si, P) in crystals
    seen = set()
    for name in comp["pretrain_molecules"]:
        seen |= set(molecule(name).get_chemical_symbols())
    assert seen == elements
    crystals = [e for e in full if e.split == "pretrain" and not e.is_molecule]
    assert sorted(e.material for e in crystals) == sorted(["hBN", "Si", "SiC", "cBN", "BP"])
    assert [e.material for e in full if e.split == "heldout" and not e.is_molecule] == ["graphene"]


def test_heldout_formulas_are_absent_from_pretraining(full):
    formula = lambda e: uni._formula(e.material.split(":", 1)[1])  # noqa: E731
    held = [e for e in full if e.split == "heldout" and e.is_molecule]
    pre = [e for e in full if e.split == "pretrain" and e.is_molecule]
    assert len(held) == 5 and len(pre) > 80
    assert not {formula(e) for e in held} & {formula(e) for e in pre}
    held_elements = set()
    for e in held:
        held_elements |= set(displaced_structure(e.material, (1, 1, 1), 0.0, 0, 7.0).species)
    assert {"Cl", "F", "S", "N", "O", "Si"} <= held_elements
    # an isomer of a held-out molecule is dropped from pretraining too
    bad = [uni.Entry("molecule:CH3OCH3", (1, 1, 1), "heldout", 1, 1),
           uni.Entry("molecule:CH3CH2OH", (1, 1, 1), "pretrain", 2, 1)]
    with pytest.raises(ValueError, match="held-out formula"):
        uni.check_entries(bad)


def test_folder_names_and_seeds_unique_and_no_carbon_crystal(full):
    names = [f"{e.stem}-{k:06d}" for e in full for k in range(e.n_structures)]
    assert len(names) == len(set(names))
    pre_ids = [n for e in full if e.split == "pretrain" for n in [f"{e.stem}-{k:06d}" for k in range(e.n_structures)]]
    assert len(pre_ids) == len(set(pre_ids))
    assert len({e.seed for e in full}) == len(full)
    graphene = next(e for e in full if e.material == "graphene")
    assert graphene.seed == 5000 and graphene.supercell == (2, 2, 1) and graphene.n_structures == 4
    assert graphene.seed >= 40  # examples/graphene uses seeds 0..39
    with pytest.raises(ValueError, match="pure-carbon"):
        uni.check_entries([uni.Entry("diamond", (1, 1, 1), "pretrain", 3, 1)])
    with pytest.raises(ValueError, match="collide"):
        uni.check_entries([uni.Entry("Si", (1, 1, 1), "pretrain", 3, 1), uni.Entry("Si", (2, 1, 1), "heldout", 4, 1)])


def test_seeds_do_not_depend_on_order_or_counts():
    a = {e.material: e.seed for e in uni.entries(1, 1)}
    b = {e.material: e.seed for e in uni.entries(5, 2, only="pretrain")}
    assert all(a[m] == s for m, s in b.items())
    assert uni.base_seed("H2O") == uni.base_seed("H2O") != uni.base_seed("H2O2")


def test_order_heldout_first_then_rounds(full):
    todo = uni.jobs(full)
    splits = [j.entry.split for j in todo]
    n_held = splits.count("heldout")
    assert set(splits[:n_held]) == {"heldout"} and set(splits[n_held:]) == {"pretrain"}
    pre = todo[n_held:]
    n_entries = sum(e.split == "pretrain" for e in full)
    assert [j.index for j in pre[:n_entries]] == [0] * n_entries  # structure 0 of everything first
    assert len({j.entry.material for j in pre[:n_entries]}) == n_entries
    assert [j.index for j in pre] == sorted(j.index for j in pre)


def test_quick_dry_run_writes_manifest(tmp_path):
    assert uni.main(["--out", str(tmp_path), "--quick", "--dry-run"]) == 0
    m = json.loads((tmp_path / "manifest.json").read_text())
    n_mol = len(m["pretrain"]["molecules"]) + len(m["heldout"]["molecules"])
    assert n_mol == 6 and len(m["pretrain"]["crystals"]) == 2
    assert all(d["n_structures"] == 1 for part in ("pretrain", "heldout") for kind in ("molecules", "crystals")
               for d in m[part][kind])
    assert m["heldout_names"][-1] == "graphene" and "seed" in m["pretrain"]["molecules"][0]


@pytest.mark.skipif(not HAVE_CP2K, reason="CP2K is not installed (apt-get install cp2k)")
def test_real_cp2k_molecule_run_validates_and_resumes(tmp_path, monkeypatch, caplog):
    """HF, the universal set's settings but a 5 A block radius (an 8 A box instead of 10 A: ~10 s):
    only R = 0 blocks, no K_PATH, the written blocks reproduce CP2K's orbital energies at Gamma,
    and a rerun skips the folder."""
    monkeypatch.delenv("CP2K_EXE", raising=False)
    out = tmp_path / "hf"
    args = ["--out", str(out), "--material", "molecule:HF", "--supercell", "1", "1", "1", "--block-radius", "5.0",
            "--kspacing", "0.4", "--mpi-procs", "1", "--seed", "11"]
    assert tool_main(args) == 0
    folder = out / "dft" / "HF-000000"
    assert not (folder / "K_PATH").exists()
    structure = load_structure(folder)
    h = structure.read_blocks("hamiltonian")
    assert not np.any(h.atom_pairs[:, :3]) and len(h.atom_pairs) == 4  # (0,0), (0,1), (1,0), (1,1) at R = 0
    assert structure.poscar.lattice[0, 0] == 8.0
    gen = json.loads((folder / "generator.json").read_text())
    assert gen["k_mesh"] == [1, 1, 1] and gen["band_errors_eV"]["written_blocks"]["occupied_max"] < 1e-4
    assert tool_main(["--validate", str(out), "--check-overlap", "1"]) == 0
    caplog.set_level("INFO")
    assert tool_main(args) == 0
    assert "skipping 1 complete structures" in caplog.text
    counts = Counter(structure.poscar.species)
    assert counts == {"H": 1, "F": 1} and structure.info["occupation"] == 8


def test_a_failed_structure_is_retried(tmp_path, monkeypatch, caplog):
    calls = []

    def flaky(tasks, settings, workers=1):
        calls.append(tasks[0].name)
        name = tasks[0].name
        if calls.count(name) == 1:
            return {"computed": [], "skipped": [], "failed": {name: "RuntimeError: CP2K exited with -6"},
                    "seconds": {name: 1.0}}
        return {"computed": [name], "skipped": [], "failed": {}, "seconds": {name: 2.0}}

    monkeypatch.setattr(uni, "generate", flaky)
    caplog.set_level("INFO")
    assert uni.main(["--out", str(tmp_path), "--quick", "--only", "heldout"]) == 0
    assert len(calls) == 2 * uni.QUICK_HELDOUT and "retrying" in caplog.text
    monkeypatch.setattr(uni, "generate", lambda tasks, settings, workers=1: {
        "computed": [], "skipped": [], "failed": {tasks[0].name: "boom"}, "seconds": {tasks[0].name: 1.0}})
    assert uni.main(["--out", str(tmp_path), "--quick", "--only", "heldout"]) == 1


def test_workers_compute_every_structure_once_and_are_checked(tmp_path, monkeypatch, caplog):
    """--workers 2 runs the same structures as one worker (each once), and --workers 0 is refused."""
    calls = []

    def ok(tasks, settings, workers=1):
        calls.append((settings.out.name, tasks[0].name))
        return {"computed": [tasks[0].name], "skipped": [], "failed": {}, "seconds": {tasks[0].name: 1.0}}

    monkeypatch.setattr(uni, "generate", ok)
    caplog.set_level("INFO")
    assert uni.main(["--out", str(tmp_path), "--quick", "--workers", "2"]) == 0
    expected = [(job.entry.split, f"{job.entry.stem}-{job.index:06d}") for job in uni.jobs(uni.entries(quick=True))]
    assert sorted(calls) == sorted(expected) and len(set(calls)) == len(calls)
    assert "2 at once" in caplog.text
    assert uni.main(["--out", str(tmp_path), "--quick", "--workers", "0"]) == 2
