"""Prediction of a structure too large for one pass, in chunks with exact halos.

In block b a model updates an atom from its own and its neighbours' features after block
b - 1 and the edges between them, and an edge (i, j) from the features of i and j after block
b - 1 and its own. By induction, with the subgraph of every atom within h hops of a *core*
set (the *halo*) and every edge between them, atom features after block b are exact up to
h - b hops from the core and edge features on edges whose ends lie within h - b + 1 hops. So
``h = num_blocks`` makes the blocks of every core atom and of every edge leaving the core
(and its partner, for the Hermitian average) exact (a test fails with one hop less). Cores
are cut from the structure by recursive bisection of the atoms' fractional coordinates along
the longest direction until each subgraph holds at most ``max_edges`` edges, which bounds the
peak memory of a pass whatever the size of the structure.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, List, Tuple

import numpy as np
from scipy import sparse

logger = logging.getLogger(__name__)

__all__ = ["Chunk", "ChunkTooLargeError", "plan_chunks", "predict_in_chunks"]


class ChunkTooLargeError(ValueError):
    """Even a single atom's halo holds more edges than a pass may."""


@dataclass(frozen=True)
class Chunk:
    """One pass: ``nodes`` (sorted atom indices, core and halo), ``edges`` (edge indices between
    them), ``core`` (the atoms whose blocks, and whose outgoing edges' blocks, this pass keeps)."""

    core: np.ndarray
    nodes: np.ndarray
    edges: np.ndarray


def _adjacency(n_atoms: int, src: np.ndarray, dst: np.ndarray) -> sparse.csr_matrix:
    data = np.ones(len(src), dtype=np.int32)
    return sparse.csr_matrix((data, (src, dst)), shape=(n_atoms, n_atoms))


def _closure(adjacency: sparse.csr_matrix, core: np.ndarray, hops: int) -> np.ndarray:
    """[n_atoms] bool: atoms within ``hops`` edges of ``core``."""
    inside = np.zeros(adjacency.shape[0], dtype=bool)
    inside[core] = True
    frontier = inside.copy()
    for _ in range(hops):
        reached = adjacency.T @ frontier.astype(np.int32) > 0
        frontier = reached & ~inside
        if not frontier.any():
            break
        inside |= frontier
    return inside


def plan_chunks(n_atoms: int, src: np.ndarray, dst: np.ndarray, frac: np.ndarray, lengths: np.ndarray,
                hops: int, max_edges: int) -> List[Chunk]:
    """Chunks covering every atom once as a core, each with at most ``max_edges`` edges.

    Args:
        src, dst: [n_edges] the graph's edges (both directions present).
        frac: [n_atoms, 3] fractional coordinates (any periodic image); lengths: [3] lattice
            vector lengths, Angstrom (they rank the directions to cut along).
        hops: halo depth (``num_blocks`` for exact blocks).
    Raises:
        ChunkTooLargeError: a single atom's halo exceeds ``max_edges``.
    """
    src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
    adjacency = _adjacency(n_atoms, src, dst)
    wrapped = np.mod(np.asarray(frac, np.float64), 1.0)
    chunks: List[Chunk] = []
    pending = [np.arange(n_atoms)]
    while pending:
        core = pending.pop()
        inside = _closure(adjacency, core, hops)
        edges = np.nonzero(inside[src] & inside[dst])[0]
        if len(edges) <= max_edges:
            chunks.append(Chunk(core=core, nodes=np.nonzero(inside)[0], edges=edges))
            continue
        if len(core) == 1:
            raise ChunkTooLargeError(
                f"one atom's {hops}-hop neighbourhood holds {len(edges)} edges, more than the {max_edges} a pass "
                "may hold; raise the edge limit of a pass (dpredict --max-edges)")
        spread = (wrapped[core].max(axis=0) - wrapped[core].min(axis=0)) * np.asarray(lengths, np.float64)
        axis = int(np.argmax(spread))
        order = core[np.argsort(wrapped[core, axis], kind="stable")]
        half = len(order) // 2
        pending.extend([np.sort(order[half:]), np.sort(order[:half])])
    chunks.sort(key=lambda c: int(c.core[0]))
    return chunks


def predict_in_chunks(run: Callable[[np.ndarray, np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]],
                      n_atoms: int, src: np.ndarray, dst: np.ndarray, reverse: np.ndarray, chunks: List[Chunk],
                      block_shape: Tuple[int, int], dtype) -> Tuple[np.ndarray, np.ndarray]:
    """Node [n_atoms, *block_shape] and edge [n_edges, *block_shape] blocks, pass by pass.

    Args:
        run: ``run(nodes, edges, sub_reverse)`` predicts the subgraph of atoms ``nodes`` and
            edges ``edges`` (global indices; ``sub_reverse`` the partner of each edge as a
            position in ``edges``) and returns its (node, edge) blocks in that order.
        reverse: [n_edges] the partner index of every edge.
    """
    src = np.asarray(src, np.int64)
    node_out = np.zeros((n_atoms,) + tuple(block_shape), dtype)
    edge_out = np.zeros((len(src),) + tuple(block_shape), dtype)
    done = np.zeros(len(src), dtype=bool)
    local = np.full(len(src), -1, np.int64)
    for chunk in chunks:
        local[chunk.edges] = np.arange(len(chunk.edges))
        sub_reverse = local[np.asarray(reverse, np.int64)[chunk.edges]]
        if np.any(sub_reverse < 0):
            raise RuntimeError("a chunk lacks the partner of one of its edges (the edge list is not symmetric)")
        node_blocks, edge_blocks = run(chunk.nodes, chunk.edges, sub_reverse)
        position = np.searchsorted(chunk.nodes, chunk.core)
        node_out[chunk.core] = node_blocks[position]
        keep = np.isin(src[chunk.edges], chunk.core)
        edge_out[chunk.edges[keep]] = edge_blocks[keep]
        done[chunk.edges[keep]] = True
        local[chunk.edges] = -1
    if not done.all():
        raise RuntimeError(f"{int((~done).sum())} edges were predicted by no chunk")
    return node_out, edge_out
