"""Periodic spin-orbit-coupled DFT data in the DeepH format: PySCF k-point GKS with spin-orbit ECPs.

Method (:mod:`.scf`): for structure k, the ``--supercell`` of ``--material`` (ASE, the crystals of
``tools/cp2k_data/materials.py``; default rock-salt LiI) with Gaussian displacements ``--sigma``
(A, ``numpy.random.default_rng(seed + k)``); two-component generalized Kohn-Sham (PBE, GDF,
``with_soc``) on the unshifted ``--scf-mesh``, the heavy atoms (I, Br) with the Stuttgart-Cologne
two-component pseudopotentials and their valence basis (as the molecular ``--spinful`` generator),
the others with GTH pseudopotentials and ``--basis``; primitives below ``--exp-to-discard`` dropped.

From k to R (:mod:`.kmesh`): PySCF works in k-space, DeepH stores H(R). The Kohn-Sham matrix of
the converged density F[D](k) is evaluated on the denser ``--band-mesh`` (a multiple of the SCF
mesh), and its inverse Fourier transform assigned to the minimum image of each atom pair within
``--block-radius``. Why not the SCF mesh itself: on LiI's 3x3x3 SCF mesh the 12.7 A supercell
aliases blocks of pairs 8-11 A apart by up to 0.09 eV; on the 6x6x6 band mesh (25 A) the images
are >= 16 A away from a kept pair, where blocks are below 1e-5 eV. Cost: the F[D](k) evaluation
on the 216+8 k-points (mostly the ECP integrals) takes 4x the SCF: LiI, one thread, about 5 min
per structure.

Files of ``OUT/dft/<material>-<k:06d>/``: POSCAR, info.json (``spinful: true``, Fermi energy at
mid-gap, ``occupation`` the valence electrons), hamiltonian.h5 (complex 2 n_i x 2 n_j blocks
[[uu, ud], [du, dd]], eV, the layout of ``tools/pyscf_data/gks.py``), overlap.h5 (spinless),
K_PATH (ASE's path), dft_bands.h5 (PySCF's own eigenvalues of F[D](k) at the SCF k-points, the
K_PATH corners and two random k) and generator.json (settings, timings, checks).

Validation (:mod:`.validate`, run on every structure as it is written and by ``--validate DIR``):
bands of the written blocks against dft_bands.h5 (occupied bands <= 1 meV at the SCF k-points and
<= 10 meV off every mesh; the lowest six empty bands <= 10 meV), Hermiticity and time reversal of
every block. The shipped LiI data (9 A blocks): occupied 0.31 meV, lowest empty 3.7 meV, at the
mesh and off it alike (the block radius, not the aliasing, sets them: blocks of 12 A reproduce
PySCF's occupied bands to 1e-8 eV off the mesh).

Resume, atomic folders and the worker pool as ``tools/pyscf_data`` (:mod:`.generate`).
"""
from .cli import build_parser, main

__all__ = ["build_parser", "main"]
