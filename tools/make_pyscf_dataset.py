#!/usr/bin/env python
"""Generate real DFT datasets of small molecules in the DeepH unified format with PySCF.

The entry point of the ``pyscf_data`` package beside this script (``tools/pyscf_data/``: its
docstring documents the files, options, resume, parallelism and the committed fixtures); run as
``python tools/make_pyscf_dataset.py --out DIR ...`` or ``python -m tools.pyscf_data --out DIR ...``.
``import make_pyscf_dataset`` (with tools/ on the path) gives the package's public names.
"""
import sys

from pyscf_data import *  # noqa: F401,F403  (the public names, for ``import make_pyscf_dataset``)
from pyscf_data import main

if __name__ == "__main__":
    sys.exit(main())
