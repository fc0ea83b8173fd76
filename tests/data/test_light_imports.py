"""The element and shell tables, and the graph field names, import without h5py, scipy or the file readers."""
import subprocess
import sys

import pytest


HEAVY = ("h5py", "scipy", "tensorflow", "deeph_tf.data.block_h5", "deeph_tf.data.structure", "deeph_tf.data.poscar")


@pytest.mark.parametrize("module, also_absent", [
    ("deeph_tf.elements", ("deeph_tf.data",)),  # a base module: no data layer at all
    ("deeph_tf.data.keys", ()),
    ("deeph_tf.data", ()),
])
def test_tables_import_without_h5py(module, also_absent):
    code = (f"import sys, {module}\n"
            f"heavy = [m for m in {HEAVY + also_absent!r} if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tables():
    from deeph_tf.elements import ATOMIC_NUMBERS, ORBITAL_SHELL_LETTERS, SYMBOLS, atomic_number

    assert SYMBOLS[8] == "O" and atomic_number("Fe") == 26 and len(ATOMIC_NUMBERS) == 118
    assert [ORBITAL_SHELL_LETTERS.index(c) for c in "spdfg"] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="Xx"):
        atomic_number("Xx")


def test_package_exports_stay_importable():
    from deeph_tf.data import BlockSet, DataFormatError, load_structure, read_poscar
    import deeph_tf.data as data

    assert BlockSet.__module__ == "deeph_tf.data.block_h5" and issubclass(DataFormatError, ValueError)
    assert callable(load_structure) and callable(read_poscar) and "BlockSet" in dir(data)
    with pytest.raises(AttributeError):
        data.no_such_name
