"""``python -m tools.cp2k_data ...`` (from the repository root): the same as tools/make_cp2k_dataset.py."""
import sys

from .cli import main

sys.exit(main())
