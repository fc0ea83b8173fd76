"""``python -m tools.pyscf_data ...`` (from the repository root): the same as tools/make_pyscf_dataset.py."""
import sys

from .cli import main

sys.exit(main())
