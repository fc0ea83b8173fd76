"""The options a block graph folder was built with, and training from such a folder alone.

A graph folder (index.json, split.json, shards/) is portable: its shards are named by the
content of their sources (:mod:`deeph_tf.data.content_hash`), and its index records the build
options (:func:`recorded_options`). When none of the input's ``systems`` exist (the raw
``dft/`` folders stayed behind and only the graphs were copied), :func:`graphs_without_sources`
uses the folder as it is, split, layout and all, after checking that it was built by this
format and with the options the input asks for; the message of a refusal names the option.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Union

from deeph_tf.data.shard_store import (BLOCK_FORMAT, SPLIT_NAME, GraphBuildError, GraphBuildOptions,
                                       load_index)

logger = logging.getLogger(__name__)

#: Options that change what a block graph folder holds (``training.dataset`` keys).
CONTENT_OPTIONS = ("dtype", "targets", "hermiticity_tolerance", "common_orbital_types", "elements", "split")


def recorded_options(options: GraphBuildOptions) -> Dict[str, Any]:
    """The index's ``build_options``: the content-changing options, JSON-ready."""
    out: Dict[str, Any] = {}
    for name in CONTENT_OPTIONS:
        value = getattr(options, name)
        out[name] = list(value) if isinstance(value, tuple) else value
    out["base_layout"] = None if options.base_layout is None else dict(options.base_layout)
    return out


def sources_missing(systems: Union[None, str, Sequence[str]]) -> bool:
    """Whether every path of a ``systems`` entry is absent (None: nothing asked for)."""
    if systems is None:
        return True
    paths = [systems] if isinstance(systems, (str, Path)) else list(systems)
    return all(not Path(p).exists() for p in paths)


def graphs_without_sources(graph_dir: Union[str, Path], options: GraphBuildOptions, systems) -> dict:
    """The index of ``graph_dir``, to train from without the raw data.

    Raises:
        GraphBuildError: no index there, another format, or other build options (named).
    """
    graph_dir = Path(graph_dir)
    index = load_index(graph_dir)
    if index is None:
        raise GraphBuildError(f"training_data.systems {systems}: not found, and {graph_dir} holds no graph index "
                              "(index.json) to train from; give the raw data or a graph folder built by dgraph")
    if index.get("format") != BLOCK_FORMAT:
        raise GraphBuildError(f"{graph_dir / 'index.json'}: format {index.get('format')!r}, this version reads "
                              f"{BLOCK_FORMAT!r}; rebuild the graphs from the raw data with this version")
    recorded = index.get("build_options")
    if recorded is None:
        raise GraphBuildError(f"{graph_dir / 'index.json'} was written by deeph_tf {index.get('deeph_tf_version')}, "
                              "which did not record its build options; rebuild the graphs from the raw data")
    wanted = recorded_options(options)
    for name in CONTENT_OPTIONS:
        if name == "split":
            _check_split(graph_dir, recorded.get(name), wanted[name])
        elif _normal(recorded.get(name)) != _normal(wanted[name]):
            raise GraphBuildError(f"the graphs in {graph_dir} were built with training.dataset.{name} = "
                                  f"{recorded.get(name)!r}, the input asks for {wanted[name]!r}; use that value or "
                                  "rebuild them from the raw data")
    logger.info("training data %s not found: training from the graph folder %s alone (%d structures, built by "
                "deeph_tf %s)", systems, graph_dir, sum(s["counts"]["structures"] for s in index["subsets"].values()),
                index.get("deeph_tf_version"))
    return index


def _check_split(graph_dir: Path, recorded, wanted) -> None:
    if isinstance(wanted, Mapping) and "file" in wanted:  # a split JSON: compare its membership when at hand
        path = Path(wanted["file"])
        if path.is_file():
            given = {k: sorted(v) for k, v in json.loads(path.read_text()).items() if v}
            have = {k: sorted(v) for k, v in json.loads((graph_dir / SPLIT_NAME).read_text()).items() if v}
            if given != have:
                raise GraphBuildError(f"the graphs in {graph_dir} hold another split than {path}; "
                                      "rebuild them from the raw data with that split")
        return
    if _normal(recorded) != _normal(wanted):
        raise GraphBuildError(f"the graphs in {graph_dir} were split with training.dataset.split = {recorded!r}, "
                              f"the input asks for {wanted!r}; use that split or rebuild them from the raw data")


def _normal(value: Optional[Any]) -> Any:
    """JSON round trip (tuples -> lists), so recorded and wanted values compare alike."""
    return json.loads(json.dumps(value))


__all__ = ["CONTENT_OPTIONS", "graphs_without_sources", "recorded_options", "sources_missing"]
