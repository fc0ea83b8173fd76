#!/usr/bin/env python
"""Check that rotated copies of a structure carry rotated Hamiltonian/overlap blocks.

A folder of DeepH-format structures where copy k holds ``euler_angle`` (z-y-z angles in
radians of copy k relative to the reference, r' = Rz(a) Ry(b) Rz(g) r) is compared with
the reference's blocks transformed as U_i H_ij U_j^T (real Wigner-D, DeepH m-order).
This pins the orbital m-order and the rotation convention of a dataset against
deeph_tf's SO(3) core, e.g.:

    python tools/check_rotated_copies.py examples/water_rotated/dft
    python tools/check_rotated_copies.py ../shared/data/deeph-dock-examples/water_rotated

Prints one line per copy and operator, and exits 1 when an error exceeds --tolerance.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from deeph_tf.conventions import euler_zyz_to_matrix, shell_letter
from deeph_tf.data.rotation import compare_rotated_copy
from deeph_tf.data.structure import is_structure_folder, load_structure

logger = logging.getLogger("check_rotated_copies")


def read_euler_angles(path: Path) -> np.ndarray:
    """The three z-y-z angles (radians) of an ``euler_angle`` file."""
    values = path.read_text().split()
    if len(values) != 3:
        raise ValueError(f"{path}: expected 3 Euler angles (z-y-z, radians), found {len(values)} values")
    return np.array([float(v) for v in values])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="folder whose sub-folders are the structure copies")
    parser.add_argument("--reference", default="0", help="name of the unrotated copy (default: %(default)s)")
    parser.add_argument(
        "--operators", nargs="+", default=["hamiltonian", "overlap"], help="block files to compare"
    )
    parser.add_argument(
        "--tolerance", type=float, default=1e-3, help="max allowed |error| in the blocks' unit (default: 1e-3 eV)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    reference = load_structure(args.folder / args.reference)
    copies = sorted(
        p for p in args.folder.iterdir() if is_structure_folder(p) and (p / "euler_angle").is_file()
    )
    if not copies:
        logger.error("%s: no structure folder with an euler_angle file next to %s", args.folder, args.reference)
        return 1
    worst = 0.0
    for folder in copies:
        rotation = euler_zyz_to_matrix(*read_euler_angles(folder / "euler_angle"))
        copy = load_structure(folder)
        for name in args.operators:
            if not copy.has_blocks(name):
                continue
            result = compare_rotated_copy(reference, copy, rotation, name)
            worst = max(worst, result.max_abs_error)
            by_pair = " ".join(
                f"{shell_letter(a)}{shell_letter(b)}={err:.1e}"
                for (a, b), err in result.max_abs_by_shell_pair.items()
            )
            logger.info(
                "%-6s %-12s max|err| %.2e  mean|err| %.2e  (max|entry| %.1f)  by shell pair: %s",
                folder.name, name, result.max_abs_error, result.mean_abs_error, result.max_abs_entry, by_pair,
            )
    verdict = "OK" if worst <= args.tolerance else "FAILED"
    logger.info("worst error %.2e, tolerance %.1e: %s", worst, args.tolerance, verdict)
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
