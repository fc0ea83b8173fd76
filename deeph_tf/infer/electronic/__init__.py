"""Physics errors from (H, S): orbital energies of molecules, bands of periodic structures.

NumPy/SciPy only (matplotlib for the band plots); energies in eV in, errors in meV out.

:mod:`~deeph_tf.infer.electronic.bloch`
    Bloch sums H(k), S(k) from blocks and the generalized eigenproblem.
:mod:`~deeph_tf.infer.electronic.kpoints`
    ``K_PATH`` files, k-paths and uniform k-grids.
:mod:`~deeph_tf.infer.electronic.occupation`
    The number of occupied orbitals (info.json ``occupation`` or the Fermi energy) and the
    Fermi level it gives on a k-grid.
:mod:`~deeph_tf.infer.electronic.molecules`
    Orbital energies, HOMO, LUMO and gap errors of molecules.
:mod:`~deeph_tf.infer.electronic.bands`
    Bands of crystals near the Fermi energy (k-path and k-grid: :func:`crystal_bands`) and
    :func:`physics_errors` (molecule or crystal).
:mod:`~deeph_tf.infer.electronic.band_plot`
    Band plots.
:mod:`~deeph_tf.infer.electronic.sparse`
    Sparse H(k), S(k) (CSR), inertia counts, shift-invert eigenvalues and the sparse Fermi level.
:mod:`~deeph_tf.infer.electronic.spectrum`
    dband's electronic structure from (H, S) alone: bands, Fermi level, gap, DOS (dense or sparse);
    :mod:`~deeph_tf.infer.electronic.spectrum_plot` its figures.
:mod:`~deeph_tf.infer.electronic.auto_path`
    ASE's high-symmetry k-path where there is no ``K_PATH``.
:mod:`~deeph_tf.infer.electronic.supercell`
    Supercells by tiling a cell's blocks (exact band folding).
"""
from deeph_tf.infer.electronic.band_plot import plot_bands
from deeph_tf.infer.electronic.bands import (DEFAULT_BAND_WINDOW_EV, BandErrors, CrystalBands, band_structure,
                                             crystal_bands, physics_errors)
from deeph_tf.infer.electronic.bloch import (BlochSum, band_energies, bloch_operators, generalized_eigenvalues,
                                             is_molecule, spinful_overlap)
from deeph_tf.infer.electronic.kpoints import (DEFAULT_K_PER_DIRECTION, K_PATH_FILENAME, KPathPoints, KPathSegment,
                                               default_k_grid, k_grid_points, k_path_points, read_k_path,
                                               reciprocal_lattice)
from deeph_tf.infer.electronic.molecules import MolecularOrbitalErrors, molecular_orbital_errors, orbital_energies
from deeph_tf.infer.electronic.occupation import fermi_level_from_occupation, occupied_count
from deeph_tf.infer.electronic.auto_path import automatic_k_path, periodic_directions
from deeph_tf.infer.electronic.sparse import (ShiftedFactor, SparseBloch, SpectrumWindow, count_below,
                                              eigenvalues_near, fermi_level_sparse, sparse_bloch_operators)
from deeph_tf.infer.electronic.spectrum import ElectronicStructure, KSpectrum, electronic_structure, gaussian_dos
from deeph_tf.infer.electronic.supercell import tile_blocks, tile_structure

__all__ = [
    "BandErrors", "BlochSum", "CrystalBands", "DEFAULT_BAND_WINDOW_EV", "DEFAULT_K_PER_DIRECTION", "K_PATH_FILENAME",
    "KPathPoints", "KPathSegment", "MolecularOrbitalErrors", "band_energies", "band_structure", "bloch_operators",
    "crystal_bands", "default_k_grid", "fermi_level_from_occupation", "generalized_eigenvalues", "is_molecule",
    "k_grid_points", "k_path_points", "molecular_orbital_errors", "occupied_count", "orbital_energies",
    "physics_errors", "plot_bands", "read_k_path", "reciprocal_lattice", "spinful_overlap",
    # dband: sparse solves, electronic structure without a reference, automatic paths, supercells
    "ElectronicStructure", "KSpectrum", "ShiftedFactor", "SparseBloch", "SpectrumWindow", "automatic_k_path",
    "count_below", "eigenvalues_near", "electronic_structure", "fermi_level_sparse", "gaussian_dos",
    "periodic_directions", "sparse_bloch_operators", "tile_blocks", "tile_structure",
]
