#!/usr/bin/env python
"""Generate real periodic DFT datasets of crystals in the DeepH unified format with CP2K.

The entry point of the ``cp2k_data`` package beside this script (``tools/cp2k_data/``: its
docstring documents the method, files, options, resume and validation); run as
``python tools/make_cp2k_dataset.py --out DIR ...`` or ``python -m tools.cp2k_data --out DIR ...``.
"""
import sys

from cp2k_data import main

if __name__ == "__main__":
    sys.exit(main())
