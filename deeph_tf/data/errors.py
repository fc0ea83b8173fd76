"""Errors raised by the data layer."""
from __future__ import annotations

import os
from typing import Optional, Union

PathLike = Union[str, "os.PathLike[str]"]


class DataFormatError(ValueError):
    """A data file is missing, unreadable or violates the DeepH unified format.

    The message always names the offending file, says what is wrong and, where it
    helps, what was expected, e.g.::

        /data/dft/12/hamiltonian.h5: chunk_boundaries[-1] = 570 but entries has 576 values
        (expected the last boundary to equal len(entries))

    Attributes:
        path: the file (or folder) the problem was found in, as given by the caller.
    """

    def __init__(self, path: Optional[PathLike], message: str) -> None:
        self.path = None if path is None else os.fspath(path)
        self.detail = message
        super().__init__(message if path is None else f"{self.path}: {message}")
