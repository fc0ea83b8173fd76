"""The CP2K input of one structure: Kohn-Sham DFT with k-points, real-space H(R) and S(R) out.

CP2K builds the Kohn-Sham and overlap matrices in real space on its neighbour list, one matrix
per cell image, and forms H(k) = sum_R exp(2 pi i k.R) H(R) from them; ``KS_CSR_WRITE`` /
``S_CSR_WRITE`` with ``REAL_SPACE`` print exactly these matrices (Hartree), so no Fourier
transform of a k-mesh (and no aliasing) is involved. ``BAND_STRUCTURE`` prints CP2K's own band
energies at the validation k-points (the K_PATH plus random points, on no SCF mesh).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .materials import Structure
from .plan import Settings

__all__ = ["PROJECT", "BANDS_FILE", "cp2k_input"]

#: CP2K project name (prefix of the CSR files).
PROJECT = "deeph"
#: CP2K's band-structure output file.
BANDS_FILE = "bands.out"


def _kpoint_set(points: Sequence[np.ndarray], npoints: int) -> str:
    lines = ["        &KPOINT_SET", "          UNITS B_VECTOR"]
    lines += [f"          SPECIAL_POINT {p[0]:.10f} {p[1]:.10f} {p[2]:.10f}" for p in points]
    lines += [f"          NPOINTS {int(npoints)}", "        &END KPOINT_SET"]
    return "\n".join(lines)


def cp2k_input(structure: Structure, settings: Settings, mesh: Sequence[int],
               path_points: Sequence[np.ndarray], extra_points: Sequence[np.ndarray], added_mos: int) -> str:
    """CP2K input text (positions and cell in Angstrom, cell vectors as rows A, B, C).

    ``path_points``: consecutive K_PATH corners, sampled with ``settings.band_points`` points per
    segment (none for a molecule); ``extra_points``: further k-points, each its own one-point set.
    """
    kinds = "\n".join(
        f"    &KIND {el}\n      BASIS_SET {settings.basis}\n      POTENTIAL {settings.potential}\n    &END KIND"
        for el in dict.fromkeys(structure.species))
    coords = "\n".join(f"      {el} {x:.12f} {y:.12f} {z:.12f}" for el, (x, y, z) in
                       zip(structure.species, structure.positions))
    cell = "\n".join(f"      {name} {v[0]:.12f} {v[1]:.12f} {v[2]:.12f}" for name, v in zip("ABC", structure.lattice))
    # A gapped molecule takes a bolder Broyden step (18 instead of 37 SCF cycles for PH3, the same
    # energy to 4e-9 Ha); crystals keep the cautious one. The converged result does not depend on it.
    mixing = "        ALPHA 0.6\n        NBROYDEN 8" if not any(structure.pbc) else "        ALPHA 0.3"
    sets = ([_kpoint_set(path_points, settings.band_points)] if len(path_points) else []) \
        + [_kpoint_set([p], 0) for p in extra_points]
    return f"""&GLOBAL
  PROJECT {PROJECT}
  RUN_TYPE ENERGY
  PRINT_LEVEL LOW
&END GLOBAL
&FORCE_EVAL
  METHOD QS
  &DFT
    BASIS_SET_FILE_NAME BASIS_MOLOPT
    POTENTIAL_FILE_NAME GTH_POTENTIALS
    &MGRID
      CUTOFF {settings.cutoff}
      REL_CUTOFF {settings.rel_cutoff}
    &END MGRID
    &QS
      EPS_DEFAULT {settings.eps_default:.3E}
    &END QS
    &SCF
      EPS_SCF {settings.eps_scf:.3E}
      MAX_SCF 200
      ADDED_MOS {added_mos}
      &SMEAR ON
        METHOD FERMI_DIRAC
        ELECTRONIC_TEMPERATURE {settings.temperature}
      &END SMEAR
      &MIXING
        METHOD BROYDEN_MIXING
{mixing}
      &END MIXING
    &END SCF
    &XC
      &XC_FUNCTIONAL {settings.xc}
      &END XC_FUNCTIONAL
    &END XC
    &KPOINTS
      SCHEME MONKHORST-PACK {int(mesh[0])} {int(mesh[1])} {int(mesh[2])}
      SYMMETRY F
      FULL_GRID T
    &END KPOINTS
    &PRINT
      &KS_CSR_WRITE
        REAL_SPACE T
      &END KS_CSR_WRITE
      &S_CSR_WRITE
        REAL_SPACE T
      &END S_CSR_WRITE
      &BAND_STRUCTURE
        FILE_NAME {BANDS_FILE}
        ADDED_MOS {added_mos}
{chr(10).join(sets)}
      &END BAND_STRUCTURE
    &END PRINT
  &END DFT
  &SUBSYS
    &CELL
{cell}
      PERIODIC XYZ
    &END CELL
    &COORD
{coords}
    &END COORD
{kinds}
  &END SUBSYS
&END FORCE_EVAL
"""
