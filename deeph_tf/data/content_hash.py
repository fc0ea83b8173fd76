"""Content hashes of a structure's source files: what graph shards are named and reused by.

A shard's fingerprint holds, per structure, the SHA-256 of each source file's bytes (info.json,
POSCAR, the operators' .h5 files), never paths, sizes or modification times: a graph folder
copied to another machine or path, or data copied with new mtimes, is recognized as the same.

Hashing reads every source file once; ``source_hashes.json`` in the graph folder remembers
the digest of each (absolute path, size, mtime) seen, so a rebuild check on the same machine
reads nothing again. The cache is only a shortcut: a file whose path, size or mtime changed
is hashed anew, and a missing or unreadable cache is simply rebuilt.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from deeph_tf.atomic_io import atomic_write_text

logger = logging.getLogger(__name__)

#: The cache file in a graph folder.
CACHE_NAME = "source_hashes.json"
_CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


class SourceHashes:
    """Digests of source files, cached by (absolute path, size, mtime_ns) in ``graph_dir``."""

    def __init__(self, graph_dir: Optional[Path] = None):
        self.path = None if graph_dir is None else Path(graph_dir) / CACHE_NAME
        self._cache: Dict[str, List] = {}
        self._changed = False
        if self.path is not None and self.path.is_file():
            try:
                self._cache = json.loads(self.path.read_text())
            except (OSError, json.JSONDecodeError):
                self._cache = {}

    def digest(self, path: Path) -> Optional[str]:
        """The file's digest, or None if it does not exist."""
        try:
            stat = os.stat(path)
        except OSError:
            return None
        key = str(Path(path).resolve())
        cached = self._cache.get(key)
        if cached and cached[0] == stat.st_size and cached[1] == stat.st_mtime_ns:
            return cached[2]
        value = file_digest(Path(path))
        self._cache[key] = [stat.st_size, stat.st_mtime_ns, value]
        self._changed = True
        return value

    def structure(self, folder: Path, names: Sequence[str]) -> List[List]:
        """[[name, digest or None], ...] of a structure folder's files ``names``."""
        return [[name, self.digest(Path(folder) / name)] for name in names]

    def save(self) -> None:
        """Write the cache (atomically) if anything new was hashed; a failure only logs."""
        if self.path is None or not self._changed:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path, json.dumps(self._cache) + "\n")
            self._changed = False
        except OSError as error:
            logger.debug("could not write %s: %s", self.path, error)


__all__ = ["CACHE_NAME", "SourceHashes", "file_digest"]
