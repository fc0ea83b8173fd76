"""Reading what CP2K wrote: cell images, real-space CSR matrices, bands, Fermi energy, basis shells.

Units as CP2K writes them: matrices in Hartree (KS) or dimensionless (S), energies in the log in
Hartree, band energies in eV. Orbital order: CP2K's spherical Gaussians, set by set, l from
lmin to lmax, shells of one l in file order, m = -l..l with the real solid harmonics of PySCF
(checked against PySCF's analytic overlaps: ``tests/tools/test_cp2k_data.py``), which is the
DeepH order (p = y, z, x), so no permutation is needed.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

__all__ = ["Cp2kRun", "read_run", "read_csr_images", "read_bands", "basis_shells", "cp2k_data_dir"]

_IMAGES = re.compile(r"(KS|S) CSR write\|\s+(\d+) periodic images\s+Number\s+X\s+Y\s+Z\s*\n"
                     r"((?:\s+\d+\s+-?\d+\s+-?\d+\s+-?\d+[ \t]*\n)+)")
_FERMI = re.compile(r"Fermi energy:\s+(-?\d+\.\d+(?:[EeDd][-+]?\d+)?)")
_ELECTRONS = re.compile(r"Number of electrons:\s+(\d+)")
_CONVERGED = re.compile(r"\*\*\* SCF run converged in\s+(\d+) steps \*\*\*")


@dataclass
class Cp2kRun:
    """The parsed results of one CP2K run.

    Attributes:
        cells: [n_images, 3] int, CP2K's image cells (relative to atoms wrapped into the cell).
        hamiltonian: [n_images, n_orb, n_orb] Hartree; overlap: same shape.
        fermi_hartree: CP2K's Fermi energy (smearing chemical potential), Hartree.
        n_electrons: valence electrons (the pseudopotentials' charges).
        band_k: [n_k, 3] reduced k of the band structure; band_energies_eV: [n_k, n_bands].
        scf_steps: SCF iterations to convergence.
    """

    cells: np.ndarray
    hamiltonian: np.ndarray
    overlap: np.ndarray
    fermi_hartree: float
    n_electrons: int
    band_k: np.ndarray
    band_energies_eV: np.ndarray
    scf_steps: int


def _images(log: str, kind: str, where: Path) -> np.ndarray:
    for match in _IMAGES.finditer(log):
        if match.group(1) == kind:
            rows = np.array([[int(v) for v in line.split()] for line in match.group(3).strip().splitlines()])
            if len(rows) != int(match.group(2)) or not np.array_equal(rows[:, 0], np.arange(1, len(rows) + 1)):
                raise ValueError(f"{where}: the {kind} image table is not numbered 1..{match.group(2)}")
            return rows[:, 1:]
    raise ValueError(f"{where}: no '{kind} CSR write| ... periodic images' table (REAL_SPACE CSR output missing)")


def read_csr_images(folder: Path, prefix: str, n_images: int) -> np.ndarray:
    """[n_images, n, n] dense matrices from ``<prefix>_SPIN_1_R_<k>-1_0.csr`` (1-based text CSR)."""
    triples = []
    for k in range(1, n_images + 1):
        path = folder / f"{prefix}_SPIN_1_R_{k}-1_0.csr"
        values = np.array(path.read_text().split(), dtype=np.float64)
        if values.size % 3:
            raise ValueError(f"{path}: not rows of 'row col value'")
        triples.append(values.reshape(-1, 3))
    n = int(max(t[:, :2].max() for t in triples if t.size))
    out = np.zeros((n_images, n, n))
    for k, t in enumerate(triples):
        out[k, t[:, 0].astype(np.int64) - 1, t[:, 1].astype(np.int64) - 1] = t[:, 2]
    return out


def read_bands(path: Path) -> Tuple[np.ndarray, np.ndarray]:
    """CP2K's BAND_STRUCTURE file: ([n_k, 3] reduced k, [n_k, n_bands] eV), all sets in order."""
    k_points, energies = [], []
    current: List[float] = []
    for line in path.read_text().splitlines():
        if line.startswith("#  Point"):
            if current:
                energies.append(current)
            head = line.split(":", 1)[1].split()
            k_points.append([float(v) for v in head[:3]])
            current = []
        elif line.strip() and not line.lstrip().startswith("#"):
            current.append(float(line.split()[1]))
    if current:
        energies.append(current)
    if not k_points or len({len(e) for e in energies}) != 1:
        raise ValueError(f"{path}: no band energies, or a varying number of bands per k-point")
    return np.array(k_points), np.array(energies)


def read_run(folder: Path, project: str, log_name: str, bands_name: str) -> Cp2kRun:
    """Parse the log, the KS and S CSR files and the band file of a finished run in ``folder``."""
    log_path = folder / log_name
    log = log_path.read_text()
    converged = _CONVERGED.findall(log)
    if not converged:
        raise ValueError(f"{log_path}: the SCF did not converge (no 'SCF run converged' line)")
    cells = _images(log, "KS", log_path)
    if not np.array_equal(cells, _images(log, "S", log_path)):
        raise ValueError(f"{log_path}: the KS and S image tables differ")
    fermi = _FERMI.findall(log)
    electrons = _ELECTRONS.findall(log)
    if not fermi or not electrons:
        raise ValueError(f"{log_path}: no 'Fermi energy' or 'Number of electrons' line")
    band_k, band_e = read_bands(folder / bands_name)
    return Cp2kRun(cells=cells,
                   hamiltonian=read_csr_images(folder, f"{project}-KS", len(cells)),
                   overlap=read_csr_images(folder, f"{project}-S", len(cells)),
                   fermi_hartree=float(fermi[-1].replace("D", "E").replace("d", "E")),
                   n_electrons=int(electrons[-1]), band_k=band_k, band_energies_eV=band_e,
                   scf_steps=int(converged[-1]))


def cp2k_data_dir() -> Path:
    """Where CP2K's BASIS_* files are: ``$CP2K_DATA_DIR`` or the Debian package's /usr/share/cp2k."""
    for candidate in (os.environ.get("CP2K_DATA_DIR"), "/usr/share/cp2k", "/usr/share/cp2k/data"):
        if candidate and (Path(candidate) / "BASIS_MOLOPT").is_file():
            return Path(candidate)
    raise FileNotFoundError("CP2K's data files (BASIS_MOLOPT) not found: set CP2K_DATA_DIR")


def basis_shells(elements: Sequence[str], basis: str, basis_file: Path) -> Dict[str, List[int]]:
    """``elements_orbital_map``: the l of every shell of ``basis`` for each element, in CP2K order.

    Raises:
        ValueError: naming the element whose basis the file lacks.
    """
    lines = basis_file.read_text().splitlines()
    shells: Dict[str, List[int]] = {}
    for element in elements:
        for n, line in enumerate(lines):
            words = line.split()
            if len(words) >= 2 and words[0] == element and basis in words[1:]:
                break
        else:
            raise ValueError(f"{basis_file}: no basis {basis} for element {element}")
        n_sets, row, ls = int(lines[n + 1].split()[0]), n + 2, []
        for _ in range(n_sets):
            header = [int(v) for v in lines[row].split()]
            lmin, lmax, n_exp, counts = header[1], header[2], header[3], header[4:]
            for l, count in zip(range(lmin, lmax + 1), counts):
                ls += [l] * count
            row += 1 + n_exp
        shells[element] = ls
    return shells
