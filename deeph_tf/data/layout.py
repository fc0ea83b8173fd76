"""The dataset's common orbital layout: every atom's orbitals padded into one shape.

DeepH's rule: ``common_orbital_types`` holds, for each l, the largest number of shells
of that l over all elements, sorted by l (e.g. H [0,0,1] and O [0,0,1,1,2] give
[0,0,1,1,2] = "s2p2d1"). An element's k-th shell of angular momentum l goes to the
common layout's k-th slot of that l. Blocks of atom pairs become [n_c, n_c] arrays
(n_c = sum of 2l+1 over common shells) with a mask of the entries that really exist.
"""
from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from deeph_tf.conventions import SHELL_LETTERS, orbital_types_string
from deeph_tf.elements import atomic_number
from deeph_tf.so3.irreps import Irreps, irreps_of_block_layout

_TYPES_RE = re.compile(rf"([{SHELL_LETTERS}])(\d+)")  # "s3p2d1": letter, count


def parse_orbital_types(types: Union[str, Sequence[int]]) -> Tuple[int, ...]:
    """"s3p2d1" or [0,0,0,1,1,2] -> (0, 0, 0, 1, 1, 2), sorted by l."""
    if isinstance(types, str):
        text = types.strip()
        parts = _TYPES_RE.findall(text)
        if not parts or "".join(f"{a}{b}" for a, b in parts) != text:
            raise ValueError(f"invalid orbital types {types!r}: expected a string like 's3p2d1'")
        shells: List[int] = []
        for letter, count in parts:
            shells.extend([SHELL_LETTERS.index(letter)] * int(count))
        return tuple(sorted(shells))
    return tuple(sorted(int(l) for l in types))


@dataclass(frozen=True)
class OrbitalLayout:
    """Elements and their shells, and the common layout every block is padded to.

    Attributes:
        element_shells: element symbol -> l of each radial shell in storage order
            (``elements_orbital_map`` of info.json); elements sorted by atomic number.
        common_shells: the common layout's shells, sorted by l.
    """

    element_shells: Tuple[Tuple[str, Tuple[int, ...]], ...]
    common_shells: Tuple[int, ...]

    # --- construction ----------------------------------------------------------------------
    @classmethod
    def from_orbital_maps(
        cls,
        maps: Iterable[Tuple[str, Mapping[str, Sequence[int]]]],
        common_orbital_types: Union[None, str, Sequence[int]] = None,
        elements: Optional[Sequence[str]] = None,
        base: Optional["OrbitalLayout"] = None,
        base_source: str = "the starting model",
    ) -> "OrbitalLayout":
        """Merge ``(source, elements_orbital_map)`` pairs, e.g. one per structure folder.

        Args:
            maps: (source name for error messages, elements_orbital_map) pairs.
            common_orbital_types: force a common layout (it must cover every element).
            elements: force the element list (it must include every element seen).
            base: a layout to extend (fine-tuning: the model's). Its elements are kept even
                where the data lack them, its shells must match the data's, and the result's
                common layout is at least its common layout.
            base_source: how ``base`` is named in error messages.
        Raises:
            ValueError: an element with different shells in two sources, or a forced
                layout/element list that does not cover the data; the message names both.
        """
        seen: Dict[str, Tuple[Tuple[int, ...], str]] = {}
        if base is not None:
            maps = itertools.chain([(base_source, dict(base.element_shells))], maps)
        for source, orbital_map in maps:
            for element, shells in orbital_map.items():
                shells = tuple(int(l) for l in shells)
                if element in seen and seen[element][0] != shells:
                    raise ValueError(
                        f"element {element} has shells {list(shells)} in {source} but "
                        f"{list(seen[element][0])} in {seen[element][1]}: one dataset needs one basis per element"
                    )
                seen.setdefault(element, (shells, source))
        if elements is not None:
            missing = sorted(set(seen) - set(elements))
            if missing:
                raise ValueError(f"elements {missing} occur in the data but not in the configured elements {list(elements)}")
            unknown = sorted(set(elements) - set(seen))
            if unknown:
                raise ValueError(f"no orbital basis known for configured elements {unknown}")
        element_shells = tuple(sorted(((e, s) for e, (s, _) in seen.items()), key=lambda item: atomic_number(item[0])))
        # the base's common layout may be wider than its elements need: it counts as one more shell list
        shell_lists = [s for _, s in element_shells] + ([base.common_shells] if base is not None else [])
        layout = cls(element_shells=element_shells, common_shells=cls._common_from(shell_lists))
        if common_orbital_types is not None:
            forced = parse_orbital_types(common_orbital_types)
            forced_layout = cls(element_shells=element_shells, common_shells=forced)
            for element, _ in element_shells:
                forced_layout.slot_indices(element)  # raises if the forced layout is too small
            layout = forced_layout
        return layout

    @staticmethod
    def _common_from(shell_lists: Iterable[Sequence[int]]) -> Tuple[int, ...]:
        """For each l, the largest number of shells of that l in any list, sorted by l."""
        counts: Dict[int, int] = {}
        for shells in shell_lists:
            for l in set(shells):
                counts[l] = max(counts.get(l, 0), list(shells).count(l))
        return tuple(l for l in sorted(counts) for _ in range(counts[l]))

    # --- description -----------------------------------------------------------------------
    @property
    def elements(self) -> Tuple[str, ...]:
        """Element symbols, sorted by atomic number; species index = position here."""
        return tuple(e for e, _ in self.element_shells)

    def shells(self, element: str) -> Tuple[int, ...]:
        for e, shells in self.element_shells:
            if e == element:
                return shells
        raise KeyError(f"element {element!r} is not in the orbital layout {list(self.elements)}")

    @property
    def n_common(self) -> int:
        """Orbitals of the common layout, n_c = sum of (2l + 1)."""
        return sum(2 * l + 1 for l in self.common_shells)

    @property
    def common_orbital_types(self) -> str:
        """E.g. "s2p2d1"."""
        return orbital_types_string(self.common_shells)

    @property
    def output_irreps(self) -> Irreps:
        """Irreps a full [n_c, n_c] block couples to (sorted, merged)."""
        return irreps_of_block_layout(self.common_shells, self.common_shells)

    @cached_property
    def _common_offsets(self) -> Dict[Tuple[int, int], int]:
        """(l, k-th shell of that l) -> first orbital index in the common layout."""
        offsets, start, seen = {}, 0, {}
        for l in self.common_shells:
            k = seen.get(l, 0)
            offsets[(l, k)] = start
            seen[l] = k + 1
            start += 2 * l + 1
        return offsets

    def slot_indices(self, element: str) -> np.ndarray:
        """[n_orb(element)] int64: where each of the element's orbitals sits in the common layout."""
        index: List[int] = []
        seen: Dict[int, int] = {}
        for l in self.shells(element):
            k = seen.get(l, 0)
            seen[l] = k + 1
            if (l, k) not in self._common_offsets:
                raise ValueError(
                    f"element {element} has {k + 1} shells of l={l} but the common layout "
                    f"{self.common_orbital_types} has fewer"
                )
            start = self._common_offsets[(l, k)]
            index.extend(range(start, start + 2 * l + 1))
        return np.asarray(index, dtype=np.int64)

    def orbital_mask(self, element: str) -> np.ndarray:
        """[n_c] bool: the common-layout orbitals this element has."""
        mask = np.zeros(self.n_common, dtype=bool)
        mask[self.slot_indices(element)] = True
        return mask

    def species_orbital_masks(self) -> np.ndarray:
        """[n_elements, n_c] bool, row s = ``orbital_mask(elements[s])``."""
        return np.stack([self.orbital_mask(e) for e in self.elements])

    def common_shell_index(self) -> np.ndarray:
        """[n_c] int64: which common shell each common orbital belongs to."""
        return np.repeat(np.arange(len(self.common_shells)), [2 * l + 1 for l in self.common_shells])

    # --- serialization ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "elements_orbital_map": {e: list(s) for e, s in self.element_shells},
            "common_orbital_types": list(self.common_shells),
            "common_orbital_types_str": self.common_orbital_types,
            "common_orbital_num": self.n_common,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "OrbitalLayout":
        return cls.from_orbital_maps(
            [("layout", data["elements_orbital_map"])], common_orbital_types=data["common_orbital_types"]
        )

    def fingerprint(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)
