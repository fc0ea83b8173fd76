"""Summaries of a dataset: a dft/ folder (read from the files) or a graph index.

Reports structures, elements, spinful, the common orbital types (``s3p2d1``), the irreps the
output needs, total and masked block entries (DeepH's counting) and edges per structure.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Dict, List

import numpy as np

from deeph_tf.data import keys
from deeph_tf.data.discovery import discover_systems
from deeph_tf.data.errors import DataFormatError
from deeph_tf.data.graph import build_graph, graph_entry_counts, layout_from_structures
from deeph_tf.data.layout import OrbitalLayout
from deeph_tf.data.shard_store import load_index
from deeph_tf.data.structure import load_structure
from deeph_tf.so3.irreps import Irrep, Irreps

logger = logging.getLogger(__name__)


@dataclass
class DatasetSummary:
    source: str
    structures: int
    elements: List[str]
    spinful: bool
    layout: OrbitalLayout
    entries_total: int
    entries_masked: int
    edges: List[int]
    per_structure: Dict[str, tuple] = field(default_factory=dict)  # id -> (atoms, edges, total, masked)
    problems: List[str] = field(default_factory=list)
    #: For force-field graph sets: cutoff (A), energy statistics of the training subset.
    force_field: Optional[dict] = None

    def output_irreps(self, parity: bool = True) -> Irreps:
        irreps = self.layout.output_irreps
        if parity:
            return irreps
        merged: Dict[int, int] = {}
        for mul, ir in irreps:
            merged[ir.l] = merged.get(ir.l, 0) + mul
        return Irreps([(merged[l], Irrep(l, 1)) for l in sorted(merged)])

    def format(self) -> str:
        edges = np.asarray(self.edges) if self.edges else np.zeros(1)
        if self.force_field is not None:
            stats = self.force_field.get("energy_statistics", {})
            energies = ", ".join(f"{e} {v:.6g}" for e, v in zip(stats.get("elements", []), stats.get("atom_energies", [])))
            lines = [
                f"source:                {self.source}",
                f"structures:            {self.structures} (force-field graphs, radius {self.force_field['cutoff']:g} A)",
                f"elements:              {' '.join(self.elements)}",
                f"reference energies:    {energies} (eV per atom, least squares over the training set)",
                f"force RMS:             {stats.get('force_rms', float('nan')):.4g} eV/A; per-atom energy residual RMS "
                f"{stats.get('energy_residual_rms_per_atom', float('nan')):.4g} eV",
            ]
        else:
            lines = self._block_lines()
        lines.append(f"edges per structure:   min {int(edges.min())}, median {float(np.median(edges)):g}, max {int(edges.max())}")
        if self.problems:
            lines.append(f"problems ({len(self.problems)}):")
            lines.extend(f"  {p}" for p in self.problems)
        return "\n".join(lines)

    def _block_lines(self) -> List[str]:
        """The orbital-layout part of :meth:`format` for block graph sets and dft/ folders."""
        return [
            f"source:                {self.source}",
            f"structures:            {self.structures}",
            f"elements:              {' '.join(self.elements)}",
            f"spinful:               {self.spinful}",
            f"common orbital types:  {self.layout.common_orbital_types} ({self.layout.n_common} orbitals)",
            "elements_orbital_map:  " + ", ".join(f"{e}: {list(s)}" for e, s in self.layout.element_shells),
            f"output irreps:         {self.output_irreps(parity=False)}  (parity ignored)",
            f"  with parity:         {self.output_irreps(parity=True)}",
            f"entries:               {self.entries_total} total, {self.entries_masked} masked (counted)",
        ]


def summarize_dft(path, data_dir_depth=0, per_structure: bool = False) -> DatasetSummary:
    """Summary of the structures under ``path`` (a dft/ or inputs/ folder, or any folder)."""
    systems = discover_systems(path, data_dir_depth)
    structures, problems = [], []
    for system in systems:
        for sid, folder in system.structures:
            try:
                structures.append((sid, load_structure(folder)))
            except DataFormatError as error:
                problems.append(str(error))
    layout = layout_from_structures(s for _, s in structures)
    total = masked = 0
    edges, table = [], {}
    spinful = False
    for sid, structure in structures:
        spinful = spinful or structure.spinful
        try:
            graph = build_graph(structure, layout, targets=())
        except DataFormatError as error:
            problems.append(str(error))
            continue
        t, m = graph_entry_counts(graph, layout)
        total, masked = total + t, masked + m
        edges.append(len(graph[keys.EDGE_SRC]))
        table[sid] = (structure.n_atoms, len(graph[keys.EDGE_SRC]), t, m)
    return DatasetSummary(
        source=str(path), structures=len(structures), elements=list(layout.elements), spinful=spinful,
        layout=layout, entries_total=total, entries_masked=masked, edges=edges,
        per_structure=table if per_structure else {}, problems=problems,
    )


def summarize_index(graph_dir) -> DatasetSummary:
    """Summary of a graph folder (index.json), without reading the shards."""
    index = load_index(Path(graph_dir))
    if index is None:
        raise FileNotFoundError(f"{Path(graph_dir) / 'index.json'}: no graph index")
    layout = OrbitalLayout.from_dict(index["layout"])
    shards = [s for subset in index["subsets"].values() for s in subset["shards"]]
    table = {
        sid: (a, e, None, None) for s in shards for sid, a, e in zip(s["structures"], s["n_atoms"], s["n_edges"])
    }
    return DatasetSummary(
        source=str(graph_dir), structures=len(table), elements=list(layout.elements), spinful=False,
        layout=layout,
        entries_total=sum(s["entries_total"] for s in shards),
        entries_masked=sum(s["entries_masked"] for s in shards),
        edges=[e for s in shards for e in s["n_edges"]],
        problems=[f"skipped {s['structure']}: {s['error']}" for s in index.get("skipped", [])],
        force_field={"cutoff": index["cutoff"], "energy_statistics": index.get("energy_statistics", {})}
        if "cutoff" in index else None,
    )
