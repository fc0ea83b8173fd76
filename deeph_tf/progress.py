"""One progress-bar helper: a tqdm bar on a terminal, nothing when output is redirected."""
from __future__ import annotations

import sys
from typing import Iterable, Optional, TypeVar

T = TypeVar("T")


def progress_bar(total: Optional[int] = None, *, description: str = "", unit: str = "structure",
                 initial: int = 0, enabled: bool = True):
    """A ``tqdm`` bar for ``total`` items when stderr is a terminal, else ``None``.

    Callers do ``bar.update(n)`` / ``bar.close()`` when the result is not ``None``. No bar is
    made when ``enabled`` is false, stderr is not a TTY (logs, CI), tqdm is missing, or there
    is nothing left to do (``total <= initial``).
    """
    if not enabled or not sys.stderr.isatty() or (total is not None and total <= initial):
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a declared dependency
        return None
    return tqdm(total=total, initial=initial, desc=description or None, unit=unit,
                dynamic_ncols=True, leave=False)


def track(items: Iterable[T], *, description: str = "", unit: str = "structure", total: Optional[int] = None,
          enabled: bool = True) -> Iterable[T]:
    """Iterate over ``items`` with a progress bar on a terminal (the items themselves otherwise)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    bar = progress_bar(total, description=description, unit=unit, enabled=enabled)
    if bar is None:
        yield from items
        return
    try:
        for item in items:
            yield item
            bar.update(1)
    finally:
        bar.close()
