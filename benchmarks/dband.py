"""dband's sparse solver on large graphene supercells: time and peak memory of the Fermi level + 40 bands at Gamma.

A 2x2 graphene cell's DFT blocks (examples/graphene/dft/graphene-000000, 8 atoms, 32 orbitals)
are tiled into N x N supercells (:func:`deeph_tf.infer.electronic.supercell.tile_blocks`, exact
band folding) of about the requested number of atoms. Per size, in a fresh process (so that
ru_maxrss is that size's peak):

* ``build_s``: tiling + the CSR pattern (:class:`~deeph_tf.infer.electronic.sparse.SparseBloch`);
* ``fermi_s``: :func:`~deeph_tf.infer.electronic.sparse.fermi_level_sparse` at Gamma (the
  Gamma-only grid dband uses for cells >= 20 A), which ends with the ``num_bands`` eigenvalues
  nearest E_F; ``factorizations`` / ``factor_s``: its SuperLU factorizations and their time;
* ``eigen_s``: one more shift-invert solve of ``num_bands`` eigenvalues at E_F (factorization
  included);
* ``peak_rss_mib``: the process's ru_maxrss.

Usage: ``python benchmarks/dband.py [--atoms 1000 3000 10000] [--num-bands 40] [--output NAME]``
(prints a table, writes benchmarks/results/NAME.json). Timings depend on the machine's load.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CELL = REPO / "examples" / "graphene" / "dft" / "graphene-000000"
ATOMS_PER_CELL = 8


def one_size(n_atoms: int, num_bands: int) -> dict:
    """Tile, solve at Gamma and measure (in this process)."""
    import numpy as np
    import scipy

    from deeph_tf.data.structure import load_structure
    from deeph_tf.infer.electronic import sparse
    from deeph_tf.infer.electronic.occupation import occupied_count
    from deeph_tf.infer.electronic.supercell import tile_blocks, tile_structure

    n_rep = max(1, int(round((n_atoms / ATOMS_PER_CELL) ** 0.5)))
    structure = load_structure(CELL)
    h, s = structure.read_blocks("hamiltonian"), structure.read_blocks("overlap")
    t0 = time.perf_counter()
    reps = (n_rep, n_rep, 1)
    h_big, _, positions = tile_blocks(h, structure.poscar.lattice, structure.poscar.positions, reps)
    s_big, _, _ = tile_blocks(s, structure.poscar.lattice, structure.poscar.positions, reps)
    _, info, _ = tile_structure(structure, {}, reps)
    offsets = np.concatenate([[0], np.cumsum(np.tile(structure.atom_orbital_counts(), n_rep * n_rep))])
    hs, ss = sparse.SparseBloch(h_big, offsets), sparse.SparseBloch(s_big, offsets)
    build_s = time.perf_counter() - t0
    n_occ = occupied_count(structure) * n_rep * n_rep

    factor_times = []
    original = sparse.ShiftedFactor.__init__

    def timed(self, *args, **kwargs):
        start = time.perf_counter()
        original(self, *args, **kwargs)
        factor_times.append(time.perf_counter() - start)

    sparse.ShiftedFactor.__init__ = timed
    t0 = time.perf_counter()
    fermi, windows = sparse.fermi_level_sparse(hs, ss, np.zeros((1, 3)), n_occ, n_window=num_bands)
    fermi_s = time.perf_counter() - t0
    n_factor, factor_s = len(factor_times), sum(factor_times)
    t0 = time.perf_counter()
    window = sparse.eigenvalues_near(hs(), ss(), fermi, num_bands)
    eigen_s = time.perf_counter() - t0
    sparse.ShiftedFactor.__init__ = original
    lu = sparse.ShiftedFactor(hs(), ss(), fermi).lu
    e = window.energies
    gap = float(e[e > fermi].min() - e[e < fermi].max())
    import resource

    return {"atoms": len(positions), "supercell": f"{n_rep}x{n_rep} of the 2x2 cell", "orbitals": hs.size,
            "nnz_H": int(hs.nnz), "nnz_LU": int(lu.L.nnz + lu.U.nnz), "n_occupied": n_occ,
            "occupation": info["occupation"], "num_bands": num_bands, "fermi_energy_eV": fermi,
            "gap_gamma_eV": gap, "build_s": build_s, "fermi_s": fermi_s, "factorizations": n_factor,
            "factor_s": factor_s, "eigen_s": eigen_s, "total_s": build_s + fermi_s + eigen_s,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "scipy": scipy.__version__, "windows_bands": int(len(windows[0].energies))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--atoms", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--num-bands", type=int, default=40)
    parser.add_argument("--output", default="dband", help="benchmarks/results/<OUTPUT>.json")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one size, JSON on stdout
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one_size(args.one, args.num_bands)))
        return 0
    rows = []
    for n in args.atoms:
        result = subprocess.run([sys.executable, __file__, "--one", str(n), "--num-bands", str(args.num_bands)],
                                capture_output=True, text=True, cwd=REPO)
        if result.returncode != 0:
            print(result.stderr[-2000:], file=sys.stderr)
            return 1
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"{r['atoms']:>6d} atoms {r['orbitals']:>6d} orbitals: build {r['build_s']:.1f} s, Fermi level "
              f"{r['fermi_s']:.1f} s ({r['factorizations']} factorizations, {r['factor_s']:.1f} s), "
              f"{r['num_bands']} bands {r['eigen_s']:.1f} s, peak RSS {r['peak_rss_mib']:.0f} MiB, "
              f"E_F {r['fermi_energy_eV']:.4f} eV, LU fill {r['nnz_LU'] / r['nnz_H']:.1f} x nnz(H)", flush=True)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import write_result

    machine = {"platform": platform.platform(), "cores": os.cpu_count(), "python": platform.python_version(),
               "load_average": os.getloadavg()}
    path = write_result(args.output, {"benchmark": "dband sparse Fermi level + bands at Gamma", "machine": machine,
                                      "results": rows})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
