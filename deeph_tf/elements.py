"""Chemical elements and orbital shells: symbol <-> atomic number Z, shell letter <-> l.

A base module (the standard library and :mod:`deeph_tf.conventions`, i.e. numpy), so the input
loader can check ``training.dataset.elements`` and ``common_orbital_types`` without the data
layer (h5py, scipy).
"""
from __future__ import annotations

from typing import Dict, Tuple

from deeph_tf.conventions import SHELL_LETTERS

#: Symbols by atomic number (index 0 is a placeholder).
SYMBOLS: Tuple[str, ...] = (
    "X", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl",
    "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se",
    "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb",
    "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er",
    "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At",
    "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No",
    "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og",
)
ATOMIC_NUMBERS: Dict[str, int] = {symbol: z for z, symbol in enumerate(SYMBOLS) if z > 0}


def atomic_number(symbol: str) -> int:
    """Atomic number of an element symbol ("O" -> 8); ValueError for unknown symbols."""
    try:
        return ATOMIC_NUMBERS[symbol]
    except KeyError:
        raise ValueError(f"unknown element symbol {symbol!r}") from None


#: Shell letters a basis may use in orbital-type strings such as "s3p2d1": l = 0..4
#: (``common_orbital_types``); ``ORBITAL_SHELL_LETTERS[l]`` is the letter of l.
ORBITAL_SHELL_LETTERS: str = SHELL_LETTERS[:5]

