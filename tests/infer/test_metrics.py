"""deeph_tf.infer.metrics: DeepH mask, raw and gauge-corrected MAE, breakdowns, dataset tables."""
import dataclasses
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT, WATER
from deeph_tf.data.block_h5 import BlockSet, blocks_to_dense, write_block_h5
from deeph_tf.data.structure import load_structure
from deeph_tf.infer.metrics import (DatasetErrors, ErrorSums, StructureErrors, element_pair_label,
                                    evaluate_structure_folder, shell_pair_label, structure_errors)

MOLECULES = REPO_ROOT / "tests" / "fixtures" / "mixed_molecules" / "dft"
WATER_SID = "water-000002"  # O [0,0,0,1,1,2] (14 orbitals), H [0,0,1] (5 orbitals); 24 orbitals


def _load(sid=WATER_SID, root=MOLECULES):
    s = load_structure(root / sid)
    return s, s.read_blocks("hamiltonian"), s.read_blocks("overlap")


def _modified(blocks: BlockSet, fn) -> BlockSet:
    return BlockSet(blocks.atom_pairs, [fn(tuple(int(v) for v in key), b.copy())
                                        for key, b in zip(blocks.atom_pairs, blocks.blocks)])


def test_labels():
    assert element_pair_label("H", "C") == element_pair_label("C", "H") == "C-H"
    assert shell_pair_label(1, 0) == shell_pair_label(0, 1) == "s-p"
    assert shell_pair_label(2, 2) == "d-d"


def test_exact_prediction_has_zero_error_and_every_entry_counts():
    s, h, ov = _load()
    e = structure_errors(h, h, ov, s)
    # a small molecule: every shell pair overlaps above 1e-10, so all 24 x 24 entries count
    assert e.n_entries == 24 * 24
    assert e.mae_raw_meV == 0.0 and e.mae_gauge_meV == 0.0 and e.max_abs_raw_meV == 0.0
    assert e.name == WATER_SID


def test_constant_on_one_block_pair_hand_computed():
    s, h, ov = _load()
    c = 0.003  # eV, added to the O-H block (0,0,0,0,1) and its partner (0,0,0,1,0): 2 x 14 x 5 entries
    pred = _modified(h, lambda k, b: b + c if k in ((0, 0, 0, 0, 1), (0, 0, 0, 1, 0)) else b)
    e = structure_errors(pred, h, ov, s)
    assert e.mae_raw_meV == pytest.approx(1000 * c * 140 / 576, rel=1e-12)
    assert e.max_abs_raw_meV == pytest.approx(1000 * c, rel=1e-12)
    # gauge-corrected, by hand on dense matrices (all 576 entries count)
    off = s.atom_orbital_offsets()
    dh = blocks_to_dense(pred, off) - blocks_to_dense(h, off)
    sd = blocks_to_dense(ov, off)
    mu = np.sum(dh * sd) / np.sum(sd * sd)
    assert e.gauge_mu_meV == pytest.approx(1000 * mu, rel=1e-10)
    assert e.mae_gauge_meV == pytest.approx(1000 * np.mean(np.abs(dh - mu * sd)), rel=1e-10)
    # breakdowns: counts add up; the perturbation sits in the H-O pairs only
    assert {k: v.count for k, v in e.by_element_pair.items()} == {"H-O": 4 * 70, "O-O": 196, "H-H": 4 * 25}
    assert sum(v.count for v in e.by_shell_pair.values()) == e.n_entries
    assert e.by_element_pair["H-O"].mae_raw_meV == pytest.approx(1000 * c * 140 / 280, rel=1e-12)
    assert e.by_element_pair["O-O"].mae_raw_meV == 0.0
    # shell-pair counts by hand: 7 s orbitals (O 3, H 2 + 2), 12 p (O 6, H 3 + 3), 5 d (O)
    counts = {k: v.count for k, v in e.by_shell_pair.items()}
    assert counts == {"s-s": 49, "s-p": 2 * 7 * 12, "s-d": 2 * 7 * 5, "p-p": 144, "p-d": 2 * 12 * 5, "d-d": 25}
    d = e.to_dict()
    assert d["n_entries"] == 576 and d["by_element_pair"]["H-O"]["count"] == 280


def test_gauge_shift_is_removed():
    s, h, ov = _load()
    mu = 0.25  # eV
    index = ov.pair_index()
    pred = _modified(h, lambda k, b: b + mu * ov.blocks[index[k]])
    e = structure_errors(pred, h, ov, s)
    off = s.atom_orbital_offsets()
    assert e.mae_raw_meV == pytest.approx(1000 * mu * np.mean(np.abs(blocks_to_dense(ov, off))), rel=1e-10)
    assert e.gauge_mu_meV == pytest.approx(1000 * mu, rel=1e-10)
    assert e.mae_gauge_meV < 1e-9 and e.max_abs_gauge_meV < 1e-9
    raw_only = structure_errors(pred, h, ov, s, gauge=False)
    assert raw_only.mae_gauge_meV == raw_only.mae_raw_meV and raw_only.gauge_mu_meV == 0.0
    assert "mae_gauge_meV" not in raw_only.to_dict()


def test_overlap_below_threshold_drops_the_shell_pair(rng):
    s, h, ov = _load()
    key = (0, 0, 0, 0, 1)  # O-H: H's p shell is orbitals 2:5 of H; O's first s shell is orbital 0
    k = ov.pair_index()[key]
    partner = ov.pair_index()[(0, 0, 0, 1, 0)]
    blocks = [b.copy() for b in ov.blocks]
    blocks[k][0, 2:5] = 1e-11
    blocks[partner][2:5, 0] = 1e-11
    ov_small = BlockSet(ov.atom_pairs, blocks)
    pred = _modified(h, lambda kk, b: b + 1.0 if kk == key else b)
    e = structure_errors(pred, h, ov_small, s)
    assert e.n_entries == 576 - 6
    assert e.mae_raw_meV == pytest.approx(1000 * 1.0 * (70 - 3) / 570, rel=1e-12)
    # the on-site block always counts, whatever the overlap
    blocks = [b.copy() for b in ov.blocks]
    blocks[ov.pair_index()[(0, 0, 0, 0, 0)]][:] = 0.0
    assert structure_errors(h, h, BlockSet(ov.atom_pairs, blocks), s).n_entries == 576


def test_pair_order_does_not_matter_and_missing_pairs_fail(rng):
    s, h, ov = _load()
    pred = _modified(h, lambda k, b: b + 1e-3 * rng.standard_normal(b.shape))
    perm = rng.permutation(len(pred))
    shuffled = BlockSet(pred.atom_pairs[perm], [pred.blocks[p] for p in perm])
    a, b = structure_errors(pred, h, ov, s), structure_errors(shuffled, h, ov, s)
    assert a.mae_raw_meV == pytest.approx(b.mae_raw_meV, rel=1e-12)
    assert a.mae_gauge_meV == pytest.approx(b.mae_gauge_meV, rel=1e-12)
    lacking = BlockSet(pred.atom_pairs[1:], pred.blocks[1:])
    with pytest.raises(ValueError, match=f"structure {WATER_SID}: the prediction lacks 1 of the reference's 9"):
        structure_errors(lacking, h, ov, s)
    wrong = BlockSet(pred.atom_pairs, [b[:, :-1] if i == 0 else b for i, b in enumerate(pred.blocks)])
    with pytest.raises(ValueError, match="prediction block .* has shape"):
        structure_errors(wrong, h, ov, s)


def test_spinful_blocks_use_s_kron_identity():
    s, h, ov = _load()
    info = dict(s.info, spinful=True)
    spinful = dataclasses.replace(s, info=info)
    h2 = BlockSet(h.atom_pairs, [np.kron(np.eye(2), b).astype(np.complex128) for b in h.blocks])
    mu = -0.1
    pred = BlockSet(h.atom_pairs, [b + mu * np.kron(np.eye(2), sb) + 0.002j for b, sb in zip(h2.blocks, ov.blocks)])
    e = structure_errors(pred, h2, ov, spinful)
    assert e.n_entries == 4 * 576
    assert e.gauge_mu_meV == pytest.approx(1000 * mu, rel=1e-10)
    # 0.002i is left after removing mu S: a complex entry counts (|Re| + |Im|) / 2 = 1 meV
    assert e.mae_gauge_meV == pytest.approx(1.0, rel=1e-9)


def test_dataset_mean_of_structures_and_pooled_breakdowns(rng):
    data = DatasetErrors()
    errors = []
    for sid in ("water-000002", "methane-000000", "ammonia-000001"):
        s, h, ov = _load(sid)
        pred = _modified(h, lambda k, b: b + 1e-3 * rng.standard_normal(b.shape))
        e = structure_errors(pred, h, ov, s)
        errors.append(e)
        data.add(e)
    summary = data.summary()
    assert summary["n_structures"] == 3
    assert summary["n_entries"] == sum(e.n_entries for e in errors)
    assert summary["mae_raw_meV"] == pytest.approx(np.mean([e.mae_raw_meV for e in errors]))
    assert summary["mae_gauge_meV"] == pytest.approx(np.mean([e.mae_gauge_meV for e in errors]))
    assert sum(v["count"] for v in summary["by_element_pair"].values()) == summary["n_entries"]
    assert sum(v["count"] for v in summary["by_shell_pair"].values()) == summary["n_entries"]
    hh = [e.by_element_pair["H-H"] for e in errors]
    pooled = sum(x.sum_abs_raw_eV for x in hh) / sum(x.count for x in hh) * 1000
    assert summary["by_element_pair"]["H-H"]["mae_raw_meV"] == pytest.approx(pooled)
    table = data.format_table(per_structure=True)
    for fragment in ("meV", "raw", "gauge-corrected", "mean of structure MAEs", "C-H", "s-p", "methane-000000"):
        assert fragment in table
    assert len(data.to_dict()["structures"]) == 3
    with pytest.raises(ValueError, match="no structures"):
        DatasetErrors().summary()


def test_evaluate_structure_folder(tmp_path):
    folder = tmp_path / "w0"
    shutil.copytree(WATER / "0", folder)
    s = load_structure(folder)
    h, ov = s.read_blocks("hamiltonian"), s.read_blocks("overlap")
    index = ov.pair_index()
    write_block_h5(folder / "hamiltonian_pred.h5", _modified(h, lambda k, b: b + 0.01 * ov.blocks[index[k]]))
    e = evaluate_structure_folder(s)
    assert isinstance(e, StructureErrors)
    assert e.gauge_mu_meV == pytest.approx(10.0, rel=1e-9) and e.mae_gauge_meV < 1e-9
    dm = s.read_blocks("density_matrix")
    write_block_h5(folder / "density_matrix_pred.h5", dm)
    e = evaluate_structure_folder(s, "density_matrix_pred", "density_matrix")
    assert not e.gauge_corrected and e.mae_raw_meV == 0.0


def test_error_sums_merge():
    a = ErrorSums.of(np.array([1.0, 3.0]), np.array([0.5, 0.5]))
    a.add(ErrorSums.of(np.array([2.0]), np.array([2.0])))
    assert a.count == 3 and a.mae_raw_meV == pytest.approx(2000.0) and a.max_abs_gauge_eV == 2.0
    assert np.isnan(ErrorSums().mae_raw_meV)


def test_metrics_and_eigen_do_not_import_tensorflow():
    code = ("import sys, deeph_tf.infer.metrics, deeph_tf.infer.electronic; "
            "sys.exit(1 if 'tensorflow' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT).returncode == 0


def test_counted_entries_use_the_same_mask_as_the_metrics():
    from deeph_tf.infer.metrics import counted_entries, structure_errors

    structure, h, s = _load("methanol-000005")
    shifted = _modified(h, lambda key, block: block + 0.01)
    ref, pred = counted_entries(shifted, h, s, structure)
    errors = structure_errors(shifted, h, s, structure, gauge=False)
    assert ref.size == errors.n_entries
    assert 1e3 * np.mean(np.abs(pred - ref)) == pytest.approx(errors.mae_raw_meV)
    # An off-site block with zero overlap drops out, except in an orthogonal basis.
    off_site = next(tuple(int(v) for v in k) for k in h.atom_pairs if k[3] != k[4])
    s_cut = _modified(s, lambda key, block: block * 0.0 if key == off_site else block)
    ref_cut, _ = counted_entries(shifted, h, s_cut, structure)
    assert ref_cut.size == ref.size - h.block(off_site).size
    assert ref_cut.size == structure_errors(shifted, h, s_cut, structure, gauge=False).n_entries
    orthogonal = dataclasses.replace(structure, info=dict(structure.info, orthogonal_basis=True))
    assert counted_entries(shifted, h, s_cut, orthogonal)[0].size == sum(b.size for b in h.blocks)
