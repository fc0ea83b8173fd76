"""Checks of a written spin-orbit crystal folder: bands of the blocks vs PySCF's, Hermiticity, time reversal.

The band check bounds every later comparison: eigenvalues of the Bloch sums of the *written*
hamiltonian.h5 / overlap.h5 (this project's own Bloch code, :mod:`deeph_tf.infer.electronic.bloch`,
with S (x) 1) against PySCF's own eigenvalues of F[D](k) in ``dft_bands.h5``: at the SCF k-points
(on the band mesh: there the back-transform is exact up to the block radius) and at the K_PATH
corners and random points off every mesh (where it also measures the aliasing of the band mesh).
Reported over the occupied bands, the lowest :data:`N_CONDUCTION` empty ones, the bands within
E_F +- 2 eV (none for a wide-gap insulator) and all bands (the highest ones feel the block radius
most).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Dict

import numpy as np

from deeph_tf.data import load_structure
from deeph_tf.data.discovery import find_structure_folders
from deeph_tf.infer.electronic.bloch import band_energies, bloch_operators
from deeph_tf.so3.spin_blocks import time_reversal_residual

from cp2k_data.folders import read_dft_bands

logger = logging.getLogger("make_soc_crystal_dataset")

#: Half-width (eV) of the band window around E_F.
WINDOW_EV = 2.0
#: Empty bands checked above the occupied ones (three Kramers pairs).
N_CONDUCTION = 6
#: Largest band error (eV) over the occupied, the lowest empty bands and the window, at the SCF k-points / off-mesh.
MAX_MESH_ERROR_EV = 1e-3
MAX_OFF_MESH_ERROR_EV = 1e-2
#: Largest Hermiticity deviation (eV): the blocks come from Hermitized H(k), so round-off.
MAX_HERMITICITY_EV = 1e-8
#: Largest time-reversal-odd part of a block (eV): set by the SCF convergence (conv_tol 1e-10 Ha).
MAX_TIME_REVERSAL_EV = 1e-5


def check_folder(folder: Path) -> Dict[str, float]:
    """Errors of one folder (eV); AssertionError above the limits of this module."""
    st = load_structure(folder)
    if not st.spinful:
        raise AssertionError(f"{folder}: info.json has spinful false")
    h, s = st.read_blocks("hamiltonian"), st.read_blocks("overlap")
    if not np.array_equal(h.atom_pairs, s.atom_pairs):
        raise AssertionError(f"{folder}: hamiltonian.h5 and overlap.h5 have different atom_pairs")
    k, ref, fermi = read_dft_bands(folder / "dft_bands.h5")
    labels = json.loads((folder / "generator.json").read_text())["validation_labels"]
    hk, sk = bloch_operators(h, s, st)
    got = band_energies(hk, sk, k, str(folder))
    n_occ = int(st.info["occupation"])
    diff = np.abs(got - ref)
    window = np.abs(ref - fermi) <= WINDOW_EV
    on_mesh = np.array([lab == "scf" for lab in labels])
    out: Dict[str, float] = {}
    for name, rows in (("mesh", on_mesh), ("off_mesh", ~on_mesh)):
        d, w = diff[rows], window[rows]
        out[f"{name}_occupied_max"] = float(d[:, :n_occ].max())
        out[f"{name}_conduction_max"] = float(d[:, n_occ:n_occ + N_CONDUCTION].max())
        out[f"{name}_window_max"] = float(d[w].max()) if w.any() else 0.0
        out[f"{name}_all_max"] = float(d.max())
    out["herm_max"] = max(h.max_hermiticity_deviation(), s.max_hermiticity_deviation())
    out["time_reversal_max"] = max(time_reversal_residual(b) for b in h.blocks)
    for key, limit in (("mesh_occupied_max", MAX_MESH_ERROR_EV), ("mesh_window_max", MAX_MESH_ERROR_EV),
                       ("mesh_conduction_max", MAX_OFF_MESH_ERROR_EV),
                       ("off_mesh_occupied_max", MAX_OFF_MESH_ERROR_EV), ("off_mesh_window_max", MAX_OFF_MESH_ERROR_EV),
                       ("off_mesh_conduction_max", MAX_OFF_MESH_ERROR_EV),
                       ("herm_max", MAX_HERMITICITY_EV), ("time_reversal_max", MAX_TIME_REVERSAL_EV)):
        if out[key] > limit:
            raise AssertionError(f"{folder}: {key} = {out[key]:.3e} eV exceeds {limit:g} eV")
    return out


def validate(root: Path) -> Dict[str, float]:
    """:func:`check_folder` on every structure under ``root`` (or root/dft): the largest errors, eV."""
    _, found = find_structure_folders(Path(root), data_dir_depth=None)
    if not found:
        raise AssertionError(f"no structure folders under {root}")
    worst: Dict[str, float] = {}
    for _, path in found:
        errors = check_folder(path)
        logger.info("%s: occupied / lowest-empty band error %.1e / %.1e eV on the mesh, %.1e / %.1e off it; "
                    "Hermiticity %.0e, time reversal %.0e eV", path.name, errors["mesh_occupied_max"],
                    errors["mesh_conduction_max"], errors["off_mesh_occupied_max"], errors["off_mesh_conduction_max"],
                    errors["herm_max"], errors["time_reversal_max"])
        worst = {k: max(v, worst.get(k, 0.0)) for k, v in errors.items()}
    worst["n_structures"] = len(found)
    return worst
