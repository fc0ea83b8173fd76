"""The built-in molecules: PBE/def2-SVP equilibrium geometries, names for ``--molecule``, re-optimization.

Geometries were optimized once, for this tool, at PBE/def2-SVP (PySCF RKS, grid level 3 with grid
response in the gradient, conv_tol 1e-11), with SciPy's BFGS on Cartesian coordinates driven by
PySCF's analytic gradients until the largest gradient component was below 1e-5 Hartree/Bohr.
``pyscf.geomopt`` was not used because neither geomeTRIC nor pyberny is installed;
``--reoptimize NAME`` reruns the same optimizer from the embedded geometry. Starting points:
experimental geometries for water, methane, ammonia, formaldehyde, hydrogen cyanide; standard
Z-matrices (anti conformers) for methanol and ethanol; an idealized planar hexagon for uracil
(diketo) and for malondialdehyde (the Cs enol tautomer with the intramolecular O-H...O bond, as in MD17).

The heavy-atom diatomics for spin-orbit data (:data:`SOC_MOLECULES`: hbr, hi, br2, i2, ibr) are not
optimized: they sit at the experimental equilibrium bond lengths r_e (K. P. Huber and G. Herzberg,
Constants of Diatomic Molecules, 1979, as tabulated in the NIST Chemistry WebBook), along z,
centroid at the origin: the datasets displace the atoms anyway, and a GKS+SOC optimization was
not worth its cost for that.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from deeph_tf.conventions import BOHR_TO_ANGSTROM


@dataclass(frozen=True)
class Molecule:
    """An equilibrium geometry: species and [n, 3] Cartesian positions in Angstrom."""

    species: Tuple[str, ...]
    positions: Tuple[Tuple[float, float, float], ...]

    def coordinates(self) -> np.ndarray:
        return np.array(self.positions, dtype=np.float64)


#: PBE/def2-SVP equilibrium geometries (Angstrom, centroid at the origin); see the module docstring.
MOLECULES: Dict[str, Molecule] = {}  # filled below from _EQUILIBRIUM

#: Small molecules used by "mix" (elements H, C, N, O; with def2-SVP shells s, p, d).
MIX_MOLECULES: Tuple[str, ...] = ("methane", "ammonia", "water", "formaldehyde", "hydrogen_cyanide", "methanol")
#: The MD17 molecules of the molecular-Hamiltonian literature that are built in.
MD17_MOLECULES: Tuple[str, ...] = ("water", "ethanol", "malondialdehyde", "uracil")
#: Heavy-atom diatomics for spin-orbit (--spinful) data; "soc_mix" = the first three (elements H, Br, I).
SOC_MOLECULES: Tuple[str, ...] = ("hbr", "hi", "ibr", "br2", "i2")
SOC_MIX_MOLECULES: Tuple[str, ...] = ("hbr", "hi", "ibr")
#: Alternative spellings accepted by --molecule.
ALIASES: Dict[str, str] = {"hcn": "hydrogen_cyanide", "hydrogen-cyanide": "hydrogen_cyanide",
                           "h2o": "water", "ch4": "methane", "nh3": "ammonia", "ch2o": "formaldehyde",
                           "ch3oh": "methanol", "mda": "malondialdehyde",
                           "hydrogen_bromide": "hbr", "hydrogen_iodide": "hi", "iodine_monobromide": "ibr",
                           "bromine": "br2", "iodine": "i2"}


def molecule_names(values: Sequence[str]) -> List[str]:
    """Resolve ``--molecule`` values (repeatable, comma lists, aliases, "mix") to unique names, in order."""
    names: List[str] = []
    for value in values:
        for token in str(value).split(","):
            token = token.strip().lower().replace(" ", "_")
            if not token:
                continue
            if token == "mix":
                expanded = list(MIX_MOLECULES)
            elif token == "soc_mix":
                expanded = list(SOC_MIX_MOLECULES)
            else:
                expanded = [ALIASES.get(token, token)]
            for name in expanded:
                if name not in MOLECULES:
                    raise ValueError(f"unknown molecule {token!r}; known: {', '.join(sorted(MOLECULES))} "
                                     f"(or 'mix' = {','.join(MIX_MOLECULES)}, 'soc_mix' = {','.join(SOC_MIX_MOLECULES)})")
                if name not in names:
                    names.append(name)
    if not names:
        raise ValueError("no molecule given")
    return names



def optimize_geometry(species: Sequence[str], positions: np.ndarray, xc: str = "PBE", basis: str = "def2-SVP",
                      grid_level: int = 3, gtol: float = 1e-5, max_steps: int = 500
                      ) -> Tuple[np.ndarray, float, float]:
    """Minimize the RKS energy with SciPy's BFGS over Cartesian coordinates (A in, A out).

    Uses PySCF's analytic gradients with the grid response (so energy and gradient are
    consistent). Stops when the largest gradient component is below ``gtol`` Hartree/Bohr.

    Returns:
        (positions [n, 3] A, energy Hartree, max |gradient| Hartree/Bohr).
    """
    import scipy.optimize
    from pyscf import dft, gto


    mol = gto.M(atom=[(s, tuple(p)) for s, p in zip(species, positions)], basis=basis, unit="Angstrom",
                verbose=0)
    mf = dft.RKS(mol)
    mf.xc = xc
    mf.grids.level = grid_level
    mf.conv_tol = 1e-11
    grad = mf.nuc_grad_method()
    grad.grid_response = True
    scanner = grad.as_scanner()

    def energy_and_gradient(x: np.ndarray) -> Tuple[float, np.ndarray]:
        e, g = scanner(mol.set_geom_(x.reshape(-1, 3), unit="Bohr", inplace=False))
        return float(e), np.asarray(g).ravel()

    res = scipy.optimize.minimize(energy_and_gradient, mol.atom_coords().ravel(), jac=True, method="BFGS",
                                  options={"gtol": gtol, "maxiter": max_steps})
    out = res.x.reshape(-1, 3) * BOHR_TO_ANGSTROM
    return out - out.mean(axis=0), float(res.fun), float(np.max(np.abs(res.jac)))


def reoptimize(name: str, xc: str, basis: str, grid_level: int) -> None:
    """Re-optimize molecule ``name`` from its embedded geometry; print the new table rows (stdout)."""
    mol = MOLECULES[name]
    t0 = time.perf_counter()
    pos, energy, gmax = optimize_geometry(mol.species, mol.coordinates(), xc, basis, grid_level)
    ref = mol.coordinates() - mol.coordinates().mean(axis=0)
    # compare internal geometry (distances), insensitive to the small rigid motion of BFGS steps
    d_new = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    d_ref = np.linalg.norm(ref[:, None] - ref[None], axis=-1)
    print(f"# {name}: {xc}/{basis} grid level {grid_level}: E = {energy:.10f} Ha, max |grad| = {gmax:.1e} "
          f"Ha/Bohr, max |distance change| vs embedded = {np.max(np.abs(d_new - d_ref)):.1e} A, "
          f"{time.perf_counter() - t0:.0f} s")
    for s, p in zip(mol.species, pos):
        print(f"    ({s!r}, ({p[0]: .6f}, {p[1]: .6f}, {p[2]: .6f})),")



# PBE/def2-SVP minima (see the module docstring), Angstrom, centroid at the origin.
_EQUILIBRIUM: Dict[str, Tuple[Tuple[str, Tuple[float, float, float]], ...]] = {
    "water": (  # E = -76.27258266 Ha, max |grad| = 1.5e-06 Ha/Bohr
        ("O", ( 0.000000,  0.000000,  0.408734)),
        ("H", ( 0.000000,  0.757697, -0.204367)),
        ("H", ( 0.000000, -0.757697, -0.204367)),
    ),
    "methane": (  # E = -40.41509667 Ha, max |grad| = 7.6e-06 Ha/Bohr
        ("C", ( 0.000000,  0.000000,  0.000000)),
        ("H", ( 0.638502,  0.638502,  0.638502)),
        ("H", ( 0.638502, -0.638502, -0.638502)),
        ("H", (-0.638502,  0.638502, -0.638502)),
        ("H", (-0.638502, -0.638502,  0.638502)),
    ),
    "ammonia": (  # E = -56.43312937 Ha, max |grad| = 3.9e-06 Ha/Bohr
        ("N", ( 0.000016,  0.000000,  0.320681)),
        ("H", ( 0.938098,  0.000000, -0.106935)),
        ("H", (-0.469057,  0.812429, -0.106873)),
        ("H", (-0.469057, -0.812429, -0.106873)),
    ),
    "formaldehyde": (  # E = -114.28343123 Ha, max |grad| = 1.6e-06 Ha/Bohr
        ("C", ( 0.000000,  0.000000,  0.004049)),
        ("O", ( 0.000000,  0.000000,  1.212164)),
        ("H", ( 0.000000,  0.952674, -0.608106)),
        ("H", ( 0.000000, -0.952674, -0.608106)),
    ),
    "hydrogen_cyanide": (  # E = -93.23795741 Ha, max |grad| = 8.6e-08 Ha/Bohr
        ("H", ( 0.000000,  0.000000, -1.113856)),
        ("C", ( 0.000000,  0.000000, -0.026693)),
        ("N", ( 0.000000,  0.000000,  1.140549)),
    ),
    "methanol": (  # E = -115.48799252 Ha, max |grad| = 5.9e-06 Ha/Bohr
        ("C", (-0.314930,  0.000000, -0.135991)),
        ("O", ( 1.095526,  0.000000, -0.155363)),
        ("H", ( 1.398485,  0.000000,  0.769818)),
        ("H", (-0.663118,  0.000000, -1.189114)),
        ("H", (-0.757981,  0.901695,  0.355325)),
        ("H", (-0.757981, -0.901695,  0.355325)),
    ),
    "ethanol": (  # E = -154.72243560 Ha, max |grad| = 7.4e-06 Ha/Bohr
        ("C", (-1.000936,  0.000000, -0.189968)),
        ("C", ( 0.518414,  0.000000, -0.167951)),
        ("O", ( 0.944052,  0.000000,  1.185319)),
        ("H", ( 1.917419,  0.000000,  1.186808)),
        ("H", (-1.383023,  0.000000, -1.230316)),
        ("H", (-1.395798,  0.895972,  0.330145)),
        ("H", (-1.395798, -0.895972,  0.330145)),
        ("H", ( 0.897835, -0.896160, -0.722092)),
        ("H", ( 0.897835,  0.896160, -0.722092)),
    ),
    "malondialdehyde": (  # E = -266.65975678 Ha, max |grad| = 9.6e-06 Ha/Bohr
        ("C", (-1.236259,  0.032723,  0.000000)),
        ("C", (-0.020610,  0.791178,  0.000000)),
        ("C", ( 1.173369,  0.081983,  0.000000)),
        ("O", (-1.255056, -1.226314,  0.000000)),
        ("O", ( 1.220145, -1.226114,  0.000000)),
        ("H", ( 0.199343, -1.508574,  0.000000)),
        ("H", (-2.212585,  0.582537,  0.000000)),
        ("H", (-0.029259,  1.888541,  0.000000)),
        ("H", ( 2.160912,  0.584040,  0.000000)),
    ),
    "uracil": (  # E = -414.06886108 Ha, max |grad| = 6.4e-06 Ha/Bohr
        ("C", (-1.245404,  0.738888,  0.000000)),
        ("C", ( 0.018359, -1.460791,  0.000000)),
        ("C", ( 1.258106, -0.679944,  0.000000)),
        ("C", ( 1.207493,  0.682720,  0.000000)),
        ("N", ( 0.013064,  1.363630,  0.000000)),
        ("N", (-1.148243, -0.647860,  0.000000)),
        ("O", (-2.293062,  1.364696,  0.000000)),
        ("O", (-0.074537, -2.681039,  0.000000)),
        ("H", (-0.016588,  2.384473,  0.000000)),
        ("H", (-2.041254, -1.150701,  0.000000)),
        ("H", ( 2.209946, -1.223415,  0.000000)),
        ("H", ( 2.112120,  1.309344,  0.000000)),
    ),
}

#: Experimental r_e (A) of the heavy-atom diatomics (see the module docstring).
_DIATOMIC_RE: Dict[str, Tuple[str, str, float]] = {
    "hbr": ("H", "Br", 1.41444),
    "hi": ("H", "I", 1.60916),
    "br2": ("Br", "Br", 2.28105),
    "i2": ("I", "I", 2.6663),
    "ibr": ("I", "Br", 2.46899),
}
for _name, (_a, _b, _r) in _DIATOMIC_RE.items():
    _EQUILIBRIUM[_name] = ((_a, (0.0, 0.0, -_r / 2)), (_b, (0.0, 0.0, _r / 2)))

MOLECULES.update({name: Molecule(tuple(s for s, _ in atoms), tuple(p for _, p in atoms))
                  for name, atoms in _EQUILIBRIUM.items()})
