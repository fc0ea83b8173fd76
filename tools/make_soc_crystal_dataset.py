#!/usr/bin/env python
"""Periodic spin-orbit DFT datasets (PySCF two-component GKS with SO-ECPs) in the DeepH format.

The entry point of the ``soc_crystal_data`` package beside this script (its docstring documents
the method, the back-transform, the files and the validation); run as
``python tools/make_soc_crystal_dataset.py --out DIR ...``.
"""
import sys

from soc_crystal_data import main

if __name__ == "__main__":
    sys.exit(main())
