"""A DeepH-pack inference TOML -> the arguments of ``dpredict``.

The structures are ``<inputs_dir>/dft/<sid>/`` (POSCAR, info.json, overlap.h5: DeepH-pack's
graph type S), the predictions go to ``<outputs_dir>/<timestamp>/dft/<sid>/hamiltonian_pred.h5``,
and the model is a run folder (``model.model_dir``, with load_model_type / load_model_epoch,
as :mod:`.continued`) or a frozen model.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional

from deeph_tf.config.deeph_pack.continued import saved_model
from deeph_tf.config.deeph_pack.reader import INFER_KIND, PathLike, TomlInput, read_toml
from deeph_tf.config.deeph_pack.system import FLOAT_TYPES, Runtime, run_folder, runtime

PI = "process.infer"


@dataclass
class PredictPlan:
    """The dpredict arguments an inference TOML stands for."""

    toml: TomlInput
    runtime: Runtime
    model: str
    inputs_dir: str
    output_dir: str
    batch_size: int
    data_dir_depth: int
    #: dpredict's --graph: the pairs of overlap.h5, as DeepH-pack's inference graphs.
    graph: str = "overlap"
    #: model.precision the TOML's float_type stands for (checked against the model's).
    precision: str = "float32"

    def as_json(self) -> Dict[str, Any]:
        out = asdict(self)
        out.pop("toml")
        return out


def _inert_data_keys(toml: TomlInput) -> None:
    graph_type = toml["data.graph.graph_type"]
    if graph_type == "Sap":
        raise toml.refuse("data.graph.graph_type", "overlap-shape-only graphs are not implemented: dpredict takes "
                          "the pairs and values of overlap.h5; use \"S\"")
    if graph_type not in ("S", "H", "HS", "Rho"):
        raise toml.refuse("data.graph.graph_type", "expected \"S\" (or \"H\", \"HS\", \"Rho\", whose labels "
                          "prediction does not read)")
    toml.note(f"data.graph.graph_type = {graph_type!r}: the atom pairs and overlap of each structure's overlap.h5 "
              "(dpredict --graph overlap)" + ("" if graph_type == "S" else "; its labels are not read"))
    if toml["data.graph.only_save_graph"]:
        raise toml.refuse("data.graph.only_save_graph", "dpredict builds its graphs in memory and keeps none; "
                          "use false (dgraph builds training graphs)")
    if toml["data.graph.common_orbital_types"]:
        raise toml.refuse("data.graph.common_orbital_types", "prediction uses the model's orbital layout; use \"\"")
    for key, why in (("data.graph.dataset_name", "a graph-file name; dpredict keeps no graph files"),
                     ("data.graph.storage_type", "dpredict holds one batch of graphs in memory at a time"),
                     ("data.graph.parallel_num", "graphs are built one structure at a time; they do not depend on it"),
                     ("system.random_seed", "prediction draws no random numbers"),
                     (f"{PI}.multi_way_jit_num", "prediction is not XLA-compiled, so it has no shape classes")):
        toml.note(f"{key} = {toml[key]!r}: unused, {why}")


def convert_infer(toml: TomlInput, now: Optional[_dt.datetime] = None) -> PredictPlan:
    """Map a checked inference TOML onto dpredict's arguments (refusing what dpredict cannot honour)."""
    settings = runtime(toml)
    _inert_data_keys(toml)
    if toml[f"{PI}.output_type"] != "h5":
        raise toml.refuse(f"{PI}.output_type", "dpredict writes HDF5 (hamiltonian_pred.h5); use \"h5\"")
    if toml[f"{PI}.output_into"] != "to_output":
        raise toml.refuse(f"{PI}.output_into", "dpredict writes below the output folder; use \"to_output\"")
    toml.note(f"{PI}.output_into = \"to_output\": <outputs_dir>/<timestamp>/dft/<sid>/")
    if not toml[f"{PI}.target_symmetrize"]:
        raise toml.refuse(f"{PI}.target_symmetrize", "deeph_tf's predictions are always exactly Hermitian (the "
                          "model symmetrizes its blocks); use true")
    toml.note(f"{PI}.target_symmetrize = true: deeph_tf's model symmetrizes every prediction")
    batch = toml[f"{PI}.dataloader.batch_size"]
    if batch < 1:
        raise toml.refuse(f"{PI}.dataloader.batch_size", "expected an integer >= 1")
    if toml["data.dft.data_dir_depth"] < 0:
        raise toml.refuse("data.dft.data_dir_depth", "expected an integer >= 0")
    toml.note(f"system.float_type = {toml['system.float_type']!r}: checked against the model's precision (dpredict "
              f"runs a model in the precision it was trained in); TF32 matmuls "
              f"{'allowed' if settings.tf32 else 'off'}")
    output = run_folder(toml, now)
    if output is None:
        raise toml.refuse("data.outputs_dir", "required: the predictions go to <outputs_dir>/<timestamp>/")
    model, _ = saved_model(toml, "model.model_dir", "model.load_model_type", "model.load_model_epoch")
    return PredictPlan(toml, settings, str(model), toml["data.inputs_dir"], str(output), batch,
                       toml["data.dft.data_dir_depth"], precision=FLOAT_TYPES[toml["system.float_type"]][0])


def load_infer_toml(path: PathLike, now: Optional[_dt.datetime] = None) -> PredictPlan:
    """Read, check and convert a DeepH-pack inference TOML (see :func:`convert_infer`)."""
    return convert_infer(read_toml(path, INFER_KIND), now)
