"""Atomic file replacement shared by the writers of this package.

A writer produces the new content in a temporary file next to the target, flushes
it to disk, and only then renames it over the target with :func:`os.replace`
(atomic on POSIX and Windows within one file system). A crash or an exception at
any point leaves either the old file or no file, never a half-written one; the
temporary file is removed on failure.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Iterator

logger = logging.getLogger(__name__)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Best effort: persist the rename itself (not supported on every platform)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _target_mode(target: Path) -> int:
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(target: "os.PathLike[str] | str") -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``target`` atomically.

    The temporary file lives in the target's directory (so the final rename never
    crosses file systems) and is named ``.<name>.<random>.tmp``. If the body raises,
    the temporary file is deleted, ``target`` is left as it was, and the exception
    propagates.
    """
    target = Path(target)
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        # mkstemp creates the file 0600; give the result the mode an ordinary
        # open() would (or keep the mode of the file being replaced).
        os.chmod(tmp, _target_mode(target))
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(directory)
    logger.debug("wrote %s", target)


def atomic_write_text(target: "os.PathLike[str] | str", text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically (see :func:`atomic_path`)."""
    with atomic_path(target) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


@contextlib.contextmanager
def atomic_folder(target: "os.PathLike[str] | str") -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces the folder ``target`` atomically.

    The staging folder is a hidden sibling of ``target``. An existing ``target`` is moved
    aside, the staging folder renamed into place, then the old one removed (restored if the
    rename fails). On an exception the staging folder is removed and ``target`` is untouched,
    so a half-written folder never carries the final name.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        os.chmod(staging, 0o777 & ~_current_umask())
        yield staging
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        try:
            os.replace(staging, target)
        except BaseException:
            if old is not None:
                os.replace(old, target)
            raise
        if old is not None:
            import shutil

            shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(target.parent)
    except BaseException:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        raise


def _current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask
