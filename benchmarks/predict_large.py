#!/usr/bin/env python
"""Prediction at scale: time and peak memory of dpredict on graphene supercells of 10^3-10^4 atoms.

    python benchmarks/predict_large.py -m examples/graphene/frozen_model            # 1e3, 3e3, 1e4 atoms
    python benchmarks/predict_large.py -m MODEL --atoms 1000 --max-edges 150000 --tag mymachine

Each size runs in its own process (peak RSS per size): a displaced graphene n x n x 1 supercell
(ASE geometry, Gaussian displacements sigma 0.05 A as the training data, seed 0) is written
as a POSCAR-only structure folder, and ``predict_folders`` (what ``dpredict`` runs) builds its
graph from the model's per-element-pair cutoffs, predicts it in chunks of at most
``--max-edges`` edges and writes hamiltonian_pred.h5. Reported per size: atoms, edges, chunks,
seconds for graph building, the model, and the whole command, and peak RSS (MiB). With
``--check-one-pass`` the smallest size is also predicted in one pass and in chunks of at most
half its edges, and the largest difference is reported (eV). Writes
benchmarks/results/predict_large[-TAG].json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tools"))

from _common import machine_info, peak_rss_mib, write_result  # noqa: E402


def _structure_folder(folder: Path, n_cells: int, info_template: dict) -> Path:
    from cp2k_data.materials import displaced_structure

    from deeph_tf.data.poscar import Poscar
    from deeph_tf.data.structure import write_structure_folder

    crystal = displaced_structure("graphene", (n_cells, n_cells, 1), 0.05, 0)
    n_atoms = len(crystal.species)
    orbitals_per_atom = info_template["orbits_quantity"] // info_template["atoms_quantity"]
    electrons_per_atom = info_template["occupation"] / info_template["atoms_quantity"]
    info = dict(info_template, atoms_quantity=n_atoms, orbits_quantity=orbitals_per_atom * n_atoms,
                occupation=electrons_per_atom * n_atoms)
    poscar = Poscar(crystal.lattice, crystal.species, crystal.positions, comment=f"graphene {n_cells}x{n_cells}x1")
    return write_structure_folder(folder, poscar, info)


def worker(model: str, n_cells: int, max_edges: int, check_one_pass: bool) -> dict:
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(0)
    from deeph_tf.data.inference_graph import prediction_graph
    from deeph_tf.data.structure import load_structure, read_info_json
    from deeph_tf.infer.predict import Predictor
    from deeph_tf.workflows.predict import predict_folders

    template = read_info_json(HERE.parent / "examples" / "graphene" / "dft" / "graphene-000000" / "info.json")
    predictor = Predictor.load(model)
    with tempfile.TemporaryDirectory() as tmp:
        folder = _structure_folder(Path(tmp) / "inputs" / "dft" / f"graphene-{n_cells}x{n_cells}", n_cells, template)
        structure = load_structure(folder)
        start = time.perf_counter()
        graph, source = prediction_graph(structure, predictor.layout, predictor.graph_rule(), dtype=np.float64)
        graph_s = time.perf_counter() - start
        result = {"n_cells": n_cells, "atoms": int(structure.n_atoms), "orbitals": int(structure.n_orbitals),
                  "edges": int(len(graph["edge_src"])), "graph": source, "max_edges": max_edges,
                  "graph_seconds": round(graph_s, 2)}
        if check_one_pass:
            node_one, edge_one = predictor.predict_graph(graph)
            # chunks of at most half the structure, so the check really cuts it
            node_chunk, edge_chunk = predictor.predict_graph(graph, max_edges=min(max_edges, len(graph["edge_src"]) // 2))
            result["one_pass_vs_chunked_max_abs_eV"] = float(max(np.abs(node_one - node_chunk).max(),
                                                                 np.abs(edge_one - edge_chunk).max()))
            result["max_abs_block_eV"] = float(np.abs(edge_one).max())
            del node_one, edge_one, node_chunk, edge_chunk
        del graph
        start = time.perf_counter()
        summary = predict_folders(predictor, [(folder.name, folder)], Path(tmp) / "out", max_edges=max_edges,
                                  progress=False)
        result["dpredict_seconds"] = round(time.perf_counter() - start, 2)
        result["model_seconds"] = summary.records[folder.name]["seconds"]
        result["output_MiB"] = round(sum(p.stat().st_size for p in (Path(tmp) / "out").rglob("*.h5")) / 2**20, 1)
    result["peak_rss_MiB"] = round(peak_rss_mib(), 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-m", "--model", required=True, help="frozen model or checkpoint trained on graphene")
    parser.add_argument("--atoms", type=int, nargs="+", default=[1000, 3000, 10000],
                        help="approximate supercell sizes (default: 1000 3000 10000)")
    parser.add_argument("--max-edges", type=int, default=150_000, help="edges of one pass (default 150000)")
    parser.add_argument("--check-one-pass", action="store_true",
                        help="compare chunked and one-pass predictions on the smallest size")
    parser.add_argument("--tag", default="", help="suffix of the result file")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--check", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.model, args.worker, args.max_edges, args.check)))
        return
    rows = []
    for k, atoms in enumerate(sorted(args.atoms)):
        n_cells = max(1, round((atoms / 2) ** 0.5))
        command = [sys.executable, __file__, "-m", args.model, "--worker", str(n_cells), "--max-edges",
                   str(args.max_edges)] + (["--check"] if args.check_one_pass and k == 0 else [])
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"predict_large: {n_cells}x{n_cells} failed")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["process_seconds"] = round(time.perf_counter() - started, 1)
        rows.append(row)
        print(f"{row['atoms']:>7d} atoms {row['edges']:>9d} edges: graph {row['graph_seconds']:.1f} s, model "
              f"{row['model_seconds']:.1f} s, dpredict {row['dpredict_seconds']:.1f} s, peak RSS "
              f"{row['peak_rss_MiB']:.0f} MiB" + (f", chunked - one pass {row['one_pass_vs_chunked_max_abs_eV']:.2e} eV"
                                                 if "one_pass_vs_chunked_max_abs_eV" in row else ""), flush=True)
    path = write_result("predict_large" + (f"-{args.tag}" if args.tag else ""),
                        {"machine": machine_info(), "model": args.model, "max_edges": args.max_edges, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
