"""``dpredict``: predicted blocks of new structures (no DFT needed), written as DeepH folders.

For every structure folder (POSCAR + info.json, any ``data_dir_depth``) below the inputs, the
model's ``<target>_pred.h5`` (``hamiltonian_pred.h5`` for a Hamiltonian model, DeepH-dock's
name) goes to ``OUT/dft/<sid>/`` beside copies of the input's POSCAR, info.json and, where
there is one, overlap.h5 (the pairs, ``chunk_shapes`` and ``chunk_boundaries`` of the
prediction are then the overlap's). The graph of a structure comes from its overlap.h5
(DeepH's graph type S) or, without one, from the model's per-element-pair cutoffs
(:mod:`deeph_tf.data.inference_graph`); the log says which.

Safety: every structure is checked (elements and orbital basis known to the model) before
anything is predicted; each output folder is staged and renamed into place complete, with a
``prediction.json`` (model, graph source, sizes, time); ``OUT/dpredict.json`` records the
model, and a rerun with the same model skips finished structures. An ``OUT`` holding other
data, or another model's predictions, is refused.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from deeph_tf._version import __version__
from deeph_tf.atomic_io import atomic_folder, atomic_write_text
from deeph_tf.data import keys
from deeph_tf.progress import progress_bar

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
MANIFEST_NAME = "dpredict.json"
RECORD_NAME = "prediction.json"
#: Default edge budget of one pass (atoms of a batch or chunk): ~1-2 GB for the light preset.
DEFAULT_MAX_EDGES = 150_000


@dataclass
class PredictionSummary:
    """What a dpredict run did: per structure id, its record (or "skipped")."""

    output_dir: Path
    predicted: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    records: Dict[str, Dict[str, Any]] = field(default_factory=dict)


def _model_identity(predictor) -> Dict[str, Any]:
    meta = predictor.metadata
    return {"model": str(Path(predictor.source).resolve()), "step": meta.get("step"), "target": predictor.target,
            "elements": list(predictor.layout.elements)}


def _check_output_dir(output_dir: Path, identity: Dict[str, Any]) -> None:
    """Refuse an OUT that holds anything but this model's earlier predictions."""
    if not output_dir.exists():
        return
    if not output_dir.is_dir():
        raise NotADirectoryError(f"{output_dir}: the output exists and is not a folder")
    manifest = output_dir / MANIFEST_NAME
    if manifest.is_file():
        try:
            previous = json.loads(manifest.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{manifest}: unreadable ({error}); remove it or choose another -o") from None
        if previous.get("identity") != identity:
            raise FileExistsError(f"{output_dir} holds predictions of another model ({previous.get('identity')}); "
                                  "choose another -o or remove that folder")
        return
    if any(output_dir.iterdir()):
        raise FileExistsError(f"{output_dir} is not empty and holds no {MANIFEST_NAME}: it is not a dpredict output; "
                              "choose another -o (nothing was written)")


def incomplete_folders(inputs: PathLike, data_dir_depth: int = 0) -> List[str]:
    """Folders at the structure depth below ``inputs``/dft that hold files but lack POSCAR or
    info.json (discovery would pass over them silently), as "folder (missing X)"."""
    from deeph_tf.data.structure import INFO_FILENAME, POSCAR_FILENAME

    root = Path(inputs)
    dft = root if root.name == "dft" else root / "dft"
    if not dft.is_dir():
        return []
    out = []
    for folder in sorted(dft.glob("/".join(["*"] * (data_dir_depth + 1)))):
        if folder.is_dir() and any(p.is_file() for p in folder.iterdir()):
            missing = [n for n in (POSCAR_FILENAME, INFO_FILENAME) if not (folder / n).is_file()]
            if missing:
                out.append(f"{folder} (missing {', '.join(missing)})")
    return out


def _batches(sizes: Sequence[int], batch_size: int, max_edges: int) -> List[List[int]]:
    """Consecutive groups of at most ``batch_size`` structures and ``max_edges`` edges; a structure
    larger than ``max_edges`` is alone (it is predicted in chunks)."""
    groups: List[List[int]] = []
    current: List[int] = []
    edges = 0
    for index, size in enumerate(sizes):
        if current and (len(current) >= batch_size or edges + size > max_edges):
            groups.append(current)
            current, edges = [], 0
        current.append(index)
        edges += size
    if current:
        groups.append(current)
    return groups


def predict_folders(predictor, structures: Sequence[Tuple[str, Path]], output_dir: PathLike, batch_size: int = 8,
                    max_edges: int = DEFAULT_MAX_EDGES, graph_rule=None, prefer_overlap: bool = True,
                    progress: bool = True) -> PredictionSummary:
    """Predict ``structures`` ((id, folder) pairs) into ``output_dir``/dft/<id>/.

    Args:
        batch_size: structures per pass (their disjoint union), at most ``max_edges`` edges.
        max_edges: edges of one pass; a larger structure is predicted in chunks with exact halos.
        graph_rule: pairs of structures without overlap.h5 (default ``predictor.graph_rule()``).
        prefer_overlap: use overlap.h5's pairs where there is one (False: the rule for all).
    Raises:
        DataFormatError: a structure the model cannot predict (before anything is written).
        FileExistsError: ``output_dir`` holds other data.
    """
    from deeph_tf.data.inference_graph import prediction_graph
    from deeph_tf.data.structure import load_structure, write_structure_folder
    from deeph_tf.infer.evaluate import in_pair_order
    from deeph_tf.infer.predict import blocks_of

    if batch_size < 1 or max_edges < 1:
        raise ValueError(f"batch size and edge budget must be >= 1 (got {batch_size}, {max_edges})")
    output_dir = Path(output_dir)
    identity = _model_identity(predictor)
    _check_output_dir(output_dir, identity)
    rule = graph_rule or predictor.graph_rule()
    loaded = []
    for sid, folder in structures:  # check everything before writing anything
        structure = load_structure(folder)
        predictor.check_structure(structure)
        loaded.append((sid, structure))
    summary = PredictionSummary(output_dir)
    todo = []
    for sid, structure in loaded:
        if (output_dir / "dft" / sid / RECORD_NAME).is_file():
            summary.skipped.append(sid)
        else:
            todo.append((sid, structure))
    if summary.skipped:
        logger.info("%d structure(s) already predicted in %s: skipped", len(summary.skipped), output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"identity": identity, "version": __version__, "graph_rule": rule.describe()}
    atomic_write_text(output_dir / MANIFEST_NAME, json.dumps(manifest, indent=1) + "\n")

    target = predictor.target
    bar = progress_bar(len(todo), description="dpredict", enabled=progress)
    pending: List[Tuple[str, Any, Dict[str, np.ndarray], str]] = []

    def flush() -> None:
        if not pending:
            return
        start = time.perf_counter()
        graphs = [g for _, _, g, _ in pending]
        if len(graphs) == 1:
            results = [predictor.predict_graph(graphs[0], max_edges=max_edges)]
        else:
            results = predictor.predict_graphs(graphs)
        seconds = (time.perf_counter() - start) / len(pending)
        for (sid, structure, graph, source), (node, edge) in zip(pending, results):
            predicted = blocks_of(graph, predictor.layout, target, node, edge)
            blocks = {}
            if structure.has_blocks(keys.OVERLAP):
                overlap = structure.read_blocks(keys.OVERLAP)
                if source == "overlap.h5":
                    predicted = in_pair_order(predicted, overlap, sid)
                blocks[keys.OVERLAP] = overlap
            blocks[f"{target}_pred"] = predicted
            record = {"structure": str(structure.path), "graph": source, "n_atoms": int(structure.n_atoms),
                      "n_edges": int(len(graph[keys.EDGE_SRC])), "seconds": round(seconds, 3), **identity}
            destination = output_dir / "dft" / sid
            with atomic_folder(destination) as staging:
                write_structure_folder(staging, structure.poscar, structure.info, blocks)
                (staging / RECORD_NAME).write_text(json.dumps(record, indent=1) + "\n")
            summary.predicted.append(sid)
            summary.records[sid] = record
            if bar is not None:
                bar.update(1)
        pending.clear()

    graphs_sources = []
    for sid, structure in todo:
        graph, source = prediction_graph(structure, predictor.layout, rule, dtype=np.float64,
                                         prefer_overlap=prefer_overlap)
        logger.info("%s: graph from %s (%d atoms, %d edges)", sid, source, structure.n_atoms,
                    len(graph[keys.EDGE_SRC]))
        graphs_sources.append((sid, structure, graph, source))
        sizes = [len(g[keys.EDGE_SRC]) for _, _, g, _ in graphs_sources]
        if len(_batches(sizes, batch_size, max_edges)) > 1:  # the newest graph starts a new batch
            pending.extend(graphs_sources[:-1])
            flush()
            graphs_sources = graphs_sources[-1:]
    pending.extend(graphs_sources)
    flush()
    if bar is not None:
        bar.close()
    return summary
