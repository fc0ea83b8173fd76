"""Generate real DFT datasets of small molecules in the DeepH unified format with PySCF.

For every structure index k the tool takes the embedded equilibrium geometry of a
molecule, adds Gaussian displacements (``--sigma`` Angstrom per Cartesian
coordinate, default 0.05), optionally applies a uniformly random rotation about the
centroid (``--rotate``), centres the molecule in a cubic box (``--box``, default
20 A; the box only matters for the POSCAR, all blocks are cell-0 blocks), runs
restricted Kohn-Sham DFT (``--xc``/``--basis``/``--grid-level``/``--conv-tol``) and writes
``OUT/dft/<sid>/``::

    POSCAR              VASP 5, Cartesian, Angstrom
    info.json           atoms_quantity, orbits_quantity, orthogonal_basis=false, spinful=false,
                        fermi_energy_eV (midpoint of HOMO and LUMO), elements_orbital_map,
                        occupation (electron count), basis ("<xc>/<basis>")
    hamiltonian.h5      Kohn-Sham matrix F[D] = mf.get_fock(dm=converged D), eV, symmetrized
    overlap.h5          S
    density_matrix.h5   D, both spins (trace(D S) = occupation)
    mo_energy_eV.txt    eigenvalues of (F[D], S) from PySCF's mf.eig, eV: reference for --validate
    force.h5            only with --forces: total energy (eV) and forces (eV/A), see below

All blocks (0, 0, 0, i, j) over atom pairs are written, orbitals in DeepH order
(shells ascending in l, m = -l..l, p = (y, z, x); ``docs/conventions.md``, "2. Orbitals and
rotations"). ``tools/make_rotated_water.py`` uses the same PySCF run (:mod:`.scf`), folder
writer (:mod:`.folders`) and block validation (:mod:`.validate`).

Forces (``--forces``): after the SCF of the blocks, a second RKS with the same settings,
started from the converged density (so it converges in a cycle or two), gives the
total energy ``mf.e_tot`` and the analytic nuclear gradient
(``mf.nuc_grad_method()`` with ``grid_response = True``, so that the forces are the
exact derivative of the grid-integrated energy: without the grid response, grid level
1-3 gradients are off by 1e-4 to 3e-2 eV/A). ``force.h5``
(:mod:`deeph_tf.data.force_h5`) gets ``energy = e_tot * HARTREE_TO_EV`` (eV) and
``force = -grad * HARTREE_TO_EV / BOHR_TO_ANGSTROM`` (eV/A, POSCAR atom order), with the
PySCF settings as file attributes (``xc``, ``basis``, ``grid_level``, ``conv_tol``,
``grid_response``, ...); the POSCAR comment says ``forces=true``. With ``--forces``
a folder is complete only with force.h5 (a resumed run regenerates folders without
it). ``--validate`` checks every force.h5 (shapes, finite values) and, for the first
``--check-forces N`` structures (default 1), compares the largest force component
with a central finite difference (step 1e-3 A) of PySCF energies recomputed with the
stored settings (to 1e-3 eV/A), and the stored energy with the mean of the two
displaced energies (to 1e-3 eV). Without ``--forces`` nothing changes: no force.h5,
same files, bit for bit.

Reproducibility: structure k draws its displacements (then its rotation) from
``numpy.random.default_rng(seed + k)``, so a structure does not depend on the number
of workers or on how a dataset is split into runs. With several molecules, structure
k is molecule ``molecules[k % len(molecules)]`` (round robin) and its folder is named
``<molecule>-<k:06d>`` (``ethanol-000003``); with one molecule just ``<k:06d>``
(``--name-prefix`` overrides). ``--start-index`` extends a dataset.

Resuming: a structure whose folder exists with every file above is skipped (after
checking that its species, geometry and ``basis`` match this run's settings; a
mismatch is an error, never a silent mix); an incomplete folder is regenerated. Each
structure is written in ``OUT/.partial/<sid>.<pid>`` (outside ``dft/``) and renamed
into ``OUT/dft/`` only when complete, so an interrupted run never leaves a
half-written structure folder that looks complete (:mod:`.generate`).

Parallelism: ``--workers N`` (default: all CPUs) runs a spawn-started process pool
with one OpenMP/BLAS thread per worker (``OMP_NUM_THREADS=1`` and
``pyscf.lib.num_threads(1)`` in the pool initializer); ``--workers 1`` runs in this
process with PySCF's default threads.

Equilibrium geometries: see :mod:`.molecules` (PBE/def2-SVP minima, ``--reoptimize NAME``).

and checked with::

    python tools/make_pyscf_dataset.py --out tests/fixtures/mixed_molecules --molecule mix \\
        --n-structures 8 --seed 0 --sigma 0.05 --rotate --xc PBE --basis def2-SVP \\
        --grid-level 3 --conv-tol 1e-10 --workers 2
    python tools/make_pyscf_dataset.py --validate tests/fixtures/mixed_molecules

Timings per structure at PBE/def2-SVP, grid level 3, conv_tol 1e-10 (SCF and writing,
imports excluded), measured on the 2-core development VM (AMD EPYC, 2 cores, idle)::

    molecule (orbitals)   --workers 1,            --workers 1,             --workers 2 (4 structures):
                          OMP_NUM_THREADS=1       OMP_NUM_THREADS=2        run wall / structure (each)
    water (24)            0.3 s                   0.5 s                    0.4 s  (0.35 s each)
    ethanol (72)          3.0 s                   3.7 s                    1.8 s  (3.1 s each)
    uracil (132)          14 s                    13-15 s                  8.4 s  (16 s each)

PySCF gains nothing from a second thread at these sizes, so one process per core
(the default) is the efficient setting.

Modules: :mod:`.molecules` (geometries), :mod:`.plan` (settings, structure list, displaced
geometries), :mod:`.scf` (PySCF runs, DeepH orbital order), :mod:`.folders` (folder files, resume
checks), :mod:`.generate` (the run, resume, worker pool), :mod:`.validate` (``--validate``),
:mod:`.cli` (options). The package is imported as ``pyscf_data`` by the scripts in tools/ (their
folder is on ``sys.path`` when run as ``python tools/<script>.py``) and as ``tools.pyscf_data`` by
``python -m tools.pyscf_data`` from the repository root.
"""
from __future__ import annotations

from .cli import build_parser, main
from .folders import (FORCE_FILE, GENERATOR_FILE, REQUIRED_FILES, check_existing, is_complete, missing_files,
                      required_files, write_dft_files, write_spinful_files, write_structure)
from .gks import DEFAULT_ECP, SO_ECP_PRESETS, element_basis, parse_ecp, run_gks_soc, spinful_ao_order
from .spin_checks import check_spinful_structure, spin_components, time_reversal_deviation
from .generate import PARTIAL_DIRNAME, compute_structure, generate
from .molecules import (ALIASES, MD17_MOLECULES, MIX_MOLECULES, MOLECULES, SOC_MIX_MOLECULES, SOC_MOLECULES, Molecule,
                        molecule_names, optimize_geometry)
from .plan import Settings, Task, plan, random_euler_angles, structure_geometry
from .scf import BLOCK_NAMES, MO_ENERGY_FILE, deeph_ao_order, run_dft, scf_energy, scf_energy_forces
from .validate import FD_ENERGY_TOL, FD_FORCE_TOL, FD_STEP, TR_TOL, check_forces_fd, validate, validate_blocks

__all__ = [
    "DEFAULT_ECP", "GENERATOR_FILE", "SOC_MIX_MOLECULES", "SOC_MOLECULES", "SO_ECP_PRESETS", "TR_TOL",
    "check_spinful_structure", "element_basis", "parse_ecp", "run_gks_soc", "spin_components", "spinful_ao_order",
    "time_reversal_deviation", "write_spinful_files",
    "ALIASES", "BLOCK_NAMES", "FD_ENERGY_TOL", "FD_FORCE_TOL", "FD_STEP", "FORCE_FILE", "MD17_MOLECULES",
    "MIX_MOLECULES", "MOLECULES", "MO_ENERGY_FILE", "Molecule", "PARTIAL_DIRNAME", "REQUIRED_FILES", "Settings",
    "Task", "build_parser", "check_existing", "check_forces_fd", "compute_structure", "deeph_ao_order", "generate",
    "is_complete", "main", "missing_files", "molecule_names", "optimize_geometry", "plan", "random_euler_angles",
    "required_files", "run_dft", "scf_energy", "scf_energy_forces", "structure_geometry", "validate",
    "validate_blocks", "write_dft_files", "write_structure",
]
