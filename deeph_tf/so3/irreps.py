"""Irreducible representations of O(3): ``Irrep`` ("2e") and ``Irreps`` ("16x0e+8x1o").

Pure Python, no TensorFlow. Modelled on e3nn's ``o3.Irreps``: immutable tuples whose
``str`` gives back the string they were parsed from, so they can live in configs.

Parity: "e" (even, p = +1) or "o" (odd, p = -1). An orbital block of shells l1 and l2
couples to irreps L = |l1 - l2| .. l1 + l2, all with parity (-1)^(l1 + l2).
"""
from __future__ import annotations

import re
from typing import Iterable, Iterator, List, NamedTuple, Sequence, Tuple, Union

_IRREP_RE = re.compile(r"^(\d+)([eo])$")
_MUL_IRREP_RE = re.compile(r"^(?:(\d+)\s*x\s*)?(\d+[eo])$")


class Irrep(NamedTuple):
    """One irrep of O(3): angular momentum ``l`` >= 0 and parity ``p`` in {+1, -1}."""

    l: int
    p: int

    @classmethod
    def parse(cls, text: Union[str, "Irrep", Tuple[int, int]]) -> "Irrep":
        """Build from "2e", "1o", an Irrep, or a tuple (l, p)."""
        if isinstance(text, Irrep):
            return text
        if isinstance(text, tuple):
            l, p = text
            return cls._checked(int(l), int(p), repr(text))
        if not isinstance(text, str):
            raise TypeError(f"cannot make an Irrep from {text!r}")
        match = _IRREP_RE.match(text.strip())
        if not match:
            raise ValueError(f"invalid irrep {text!r}: expected '<l><e|o>', e.g. '0e', '1o', '2e'")
        return cls._checked(int(match.group(1)), 1 if match.group(2) == "e" else -1, repr(text))

    @classmethod
    def _checked(cls, l: int, p: int, source: str) -> "Irrep":
        if l < 0 or p not in (1, -1):
            raise ValueError(f"invalid irrep {source}: need l >= 0 and p in (+1, -1)")
        return cls(l, p)

    @property
    def dim(self) -> int:
        """Dimension 2l + 1."""
        return 2 * self.l + 1

    def __str__(self) -> str:
        return f"{self.l}{'e' if self.p == 1 else 'o'}"

    def __repr__(self) -> str:
        return f"Irrep('{self}')"

    def __mul__(self, other: "Irrep") -> Iterator["Irrep"]:  # type: ignore[override]
        """Irreps in the tensor product: L = |l1 - l2| .. l1 + l2, parity p1 * p2."""
        other = Irrep.parse(other)
        for big_l in range(abs(self.l - other.l), self.l + other.l + 1):
            yield Irrep(big_l, self.p * other.p)

    def __rmul__(self, mul: int) -> "Irreps":  # type: ignore[override]
        return Irreps([(int(mul), self)])


class MulIrrep(NamedTuple):
    """``mul`` copies of one irrep, e.g. 16x1o."""

    mul: int
    ir: Irrep

    @property
    def dim(self) -> int:
        return self.mul * self.ir.dim

    def __str__(self) -> str:
        return f"{self.mul}x{self.ir}"

    def __repr__(self) -> str:
        return f"MulIrrep('{self}')"


IrrepsLike = Union[str, "Irreps", Iterable[Union[MulIrrep, Tuple[int, Union[str, Irrep]], str, Irrep]]]


class Irreps(tuple):
    """A direct sum of irreps, e.g. ``Irreps("64x0e+32x1o+16x2e")``.

    Features laid out as ``Irreps`` are flat vectors ``[..., irreps.dim]``: the first
    ``mul_0 * (2 l_0 + 1)`` entries hold irrep 0 as ``[mul_0, 2 l_0 + 1]`` row-major, etc.
    """

    def __new__(cls, irreps: IrrepsLike = ()) -> "Irreps":
        if isinstance(irreps, Irreps):
            return super().__new__(cls, irreps)
        items: List[MulIrrep] = []
        if isinstance(irreps, str):
            text = irreps.strip()
            if text:
                for term in text.split("+"):
                    match = _MUL_IRREP_RE.match(term.strip())
                    if not match:
                        raise ValueError(
                            f"invalid irreps {irreps!r}: cannot parse term {term.strip()!r}; "
                            "expected terms like '16x0e' or '1o' joined by '+'"
                        )
                    mul = int(match.group(1)) if match.group(1) is not None else 1
                    items.append(MulIrrep(mul, Irrep.parse(match.group(2))))
        else:
            for entry in irreps:
                if isinstance(entry, MulIrrep):
                    items.append(entry)
                elif isinstance(entry, (Irrep, str)) and not (
                    isinstance(entry, str) and "x" in entry
                ):
                    items.append(MulIrrep(1, Irrep.parse(entry)))
                elif isinstance(entry, str):
                    items.extend(Irreps(entry))
                else:
                    mul, ir = entry
                    if int(mul) < 0:
                        raise ValueError(f"invalid irreps entry {entry!r}: multiplicity must be >= 0")
                    items.append(MulIrrep(int(mul), Irrep.parse(ir)))
        return super().__new__(cls, items)

    # --- description -------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Total dimension: sum of mul * (2l + 1)."""
        return sum(item.dim for item in self)

    @property
    def num_irreps(self) -> int:
        """Number of irreps counting multiplicity."""
        return sum(item.mul for item in self)

    @property
    def ls(self) -> List[int]:
        """The l of every irrep, repeated by multiplicity."""
        return [item.ir.l for item in self for _ in range(item.mul)]

    @property
    def lmax(self) -> int:
        """Largest l present (ValueError when empty)."""
        if not self:
            raise ValueError("lmax of empty Irreps")
        return max(item.ir.l for item in self)

    def count(self, ir: Union[str, Irrep]) -> int:  # type: ignore[override]
        """Total multiplicity of one irrep."""
        ir = Irrep.parse(ir)
        return sum(item.mul for item in self if item.ir == ir)

    def slices(self) -> List[slice]:
        """Slice of the flat feature vector that holds each term."""
        out, start = [], 0
        for item in self:
            out.append(slice(start, start + item.dim))
            start += item.dim
        return out

    # --- transformation ----------------------------------------------------------------
    def simplify(self) -> "Irreps":
        """Merge neighbouring terms of the same irrep and drop zero multiplicities."""
        out: List[MulIrrep] = []
        for item in self:
            if item.mul == 0:
                continue
            if out and out[-1].ir == item.ir:
                out[-1] = MulIrrep(out[-1].mul + item.mul, item.ir)
            else:
                out.append(item)
        return Irreps(out)

    def sort(self) -> Tuple["Irreps", Tuple[int, ...], Tuple[int, ...]]:
        """Stable sort by l, even before odd at equal l.

        Returns:
            (sorted irreps, p, inv) with ``sorted[i] = self[inv[i]]`` and ``self[j] = sorted[p[j]]``.
        """
        order = sorted(range(len(self)), key=lambda i: (self[i].ir.l, -self[i].ir.p))
        inv = tuple(order)
        perm = [0] * len(order)
        for new_position, old_position in enumerate(order):
            perm[old_position] = new_position
        return Irreps([self[i] for i in inv]), tuple(perm), inv

    def __add__(self, other: IrrepsLike) -> "Irreps":  # type: ignore[override]
        return Irreps(tuple(self) + tuple(Irreps(other)))

    def __mul__(self, factor: int) -> "Irreps":  # type: ignore[override]
        if not isinstance(factor, int):
            raise TypeError("Irreps * n repeats the irreps n times; use Irrep * Irrep for products")
        return Irreps(tuple(self) * factor)

    def __getitem__(self, index):  # type: ignore[override]
        result = super().__getitem__(index)
        return Irreps(result) if isinstance(index, slice) else result

    def __str__(self) -> str:
        return "+".join(str(item) for item in self)

    def __repr__(self) -> str:
        return f"Irreps('{self}')"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                other = Irreps(other)
            except ValueError:
                return False
        return tuple(self) == tuple(other) if isinstance(other, tuple) else NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    @staticmethod
    def spherical_harmonics(lmax: int, parity: bool = True) -> "Irreps":
        """Irreps of Y^0..Y^lmax: "1x0e+1x1o+1x2e+..." (all even when ``parity`` is False)."""
        return Irreps([(1, Irrep(l, (-1) ** l if parity else 1)) for l in range(lmax + 1)])


def coupled_irreps(l1: int, l2: int) -> Irreps:
    """Irreps of a (2 l1 + 1) x (2 l2 + 1) orbital block: L = |l1-l2|..l1+l2, parity (-1)^(l1+l2)."""
    parity = (-1) ** (l1 + l2)
    return Irreps([(1, Irrep(big_l, parity)) for big_l in range(abs(l1 - l2), l1 + l2 + 1)])


def irreps_of_block_layout(shells_i: Sequence[int], shells_j: Sequence[int]) -> Irreps:
    """Irreps needed for all shell pairs of two orbital layouts, merged and sorted by l."""
    total = Irreps()
    for l1 in shells_i:
        for l2 in shells_j:
            total = total + coupled_irreps(l1, l2)
    return total.sort()[0].simplify()
