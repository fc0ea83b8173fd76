"""Generate real periodic DFT datasets (displaced crystal supercells, molecules in boxes) in the DeepH format with CP2K.

Why CP2K (Debian's ``cp2k`` package, 2023.1) and not PySCF's periodic code: CP2K builds the
Kohn-Sham and overlap matrices in real space, one matrix per cell image on its neighbour list,
and ``KS_CSR_WRITE`` / ``S_CSR_WRITE`` with ``REAL_SPACE`` print exactly those matrices. H(R) is
therefore CP2K's own operator, with no Fourier transform of a k-mesh and no aliasing, and the
band energies CP2K prints are Bloch sums of the same matrices: the written blocks reproduce
them to ~1e-5 eV (text CSR precision), which ``--validate`` measures. It is also 10-50x faster
than ``pyscf.pbc`` with GDF/FFTDF on these cells (README, "Crystals").

For structure k (seed + k): the ``--supercell`` of ``--material`` (ASE geometry, :mod:`.materials`)
with Gaussian displacements (``--sigma`` A per Cartesian coordinate); PBE with GTH
pseudopotentials and a short-range MOLOPT basis (``--basis``, default SZV-MOLOPT-SR-GTH), a
Monkhorst-Pack mesh of spacing ``--kspacing`` and Fermi-Dirac smearing at 300 K. Written in
``OUT/dft/<material>-<k:06d>/`` (:mod:`.folders`)::

    POSCAR, info.json        (fermi_energy_eV: CP2K's chemical potential; occupation: valence electrons)
    hamiltonian.h5           H(R), eV; overlap.h5: S(R); the same atom_pairs, every (R, i, j) with
                             its (-R, j, i), self-images (i, i, R != 0) included
    K_PATH                   ASE's high-symmetry path of the cell, DeepH-dock format
    dft_bands.h5, cp2k.inp, generator.json   CP2K's bands at the validation k-points, the input,
                             settings / time / block counts / measured errors

Conventions (:mod:`.blocks`, :mod:`.cp2k_output`): CP2K's orbital order and real-harmonic signs
equal DeepH's (m = -l..l, p = y, z, x) with no permutation; CP2K's image R' counts from the
atoms wrapped into the cell, DeepH's R = R' + n_i - n_j. Both are pinned by comparing S(R) with
PySCF's analytic overlaps of the same basis (``--validate --check-overlap``).

Molecules (``--material molecule:<G2 name>``, closed-shell ASE G2 molecules only, with
``--supercell 1 1 1`` and ``--block-radius`` > 0): the molecule in a cubic box with no atom within
``block_radius + 1`` A of a periodic image (:mod:`.materials`), CP2K at Gamma (1x1x1 mesh); every
written block has R = 0, the folder has no K_PATH (deeph_tf reads it as a molecule), and the
validation point is Gamma: ``--validate`` holds the occupied orbitals and the LUMO of the written
blocks to CP2K's own. Folder ``<G2 name>-<k:06d>`` (e.g. ``CH4-000003``).

Block radius: CP2K keeps every block above ``EPS_DEFAULT`` (14-15 A for the MOLOPT-SR bases at
1e-12). ``--block-radius`` writes only pairs within a distance; the bands of the written blocks
then differ from CP2K's by the truncation, which generator.json and ``--validate`` report.

Resume and atomicity as ``tools/pyscf_data`` (:mod:`.generate`).
"""
from .cli import main

__all__ = ["main"]
