"""A DeepH-pack training TOML -> a deeph_tf training input (then normalized by the schema).

:func:`convert_train` maps every key (:mod:`.keys`) onto the schema with DeepH-pack's meaning,
or refuses it naming the key, why, and what to use instead; keys that change nothing computed
are accepted and the reason is noted (the commands log the notes at INFO).
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from deeph_tf.config.deeph_pack import continued, process
from deeph_tf.config.deeph_pack.reader import TRAIN_KIND, PathLike, TomlInput, read_toml
from deeph_tf.config.deeph_pack.system import Runtime, precision, run_folder, runtime
from deeph_tf.config.errors import ConfigError, show_value
from deeph_tf.config.normalize import normalize

ADV = "model.advanced"
#: net_type -> model.preset
PRESETS = {"normal": "light", "sparrow": "light", "accurate": "accurate", "eagle": "accurate"}
#: graph_type -> (training.dataset.targets, the target_type it serves)
GRAPH_TYPES = {"H": (["hamiltonian"], "H"), "HS": (["hamiltonian"], "H"), "Rho": (["density_matrix"], "Rho")}
TARGET_TYPES = {"H": "hamiltonian", "Rho": "density_matrix"}
LOG_NAME = "dtrain.log"


@dataclass
class TrainPlan:
    """What ``dtrain FILE.toml`` does: the normalized input and how the run starts and where it writes."""

    toml: TomlInput
    config: Dict[str, Any]
    runtime: Runtime
    #: ``<outputs_dir>/<timestamp>`` (None: the working directory).
    run_dir: Optional[Path]
    only_save_graph: bool = False
    #: (restart | init_model | init_frz_model, path) from [process.train.continued], or None.
    start: Optional[Tuple[str, str]] = None
    sources: Dict[str, str] = field(default_factory=dict)

    @property
    def output(self) -> str:
        """Where out.json goes."""
        return str(self.run_dir / "out.json") if self.run_dir else "out.json"

    @property
    def log_file(self) -> Optional[Path]:
        return self.run_dir / LOG_NAME if self.run_dir else None


def _data(toml: TomlInput, config: Dict[str, Any], sources: Dict[str, str]) -> None:
    inputs = Path(toml["data.inputs_dir"])
    training = config["training"]
    training["training_data"] = {"systems": str(inputs / "dft")}
    sources["training.training_data.systems"] = "data.inputs_dir"
    graph_type, target_type = toml["data.graph.graph_type"], toml["model.target_type"]
    if graph_type == "S":
        raise toml.refuse("data.graph.graph_type", "the graphs would hold only the overlap, nothing to train on; "
                          "use \"H\" or \"HS\" (target_type \"H\") or \"Rho\" (target_type \"Rho\"); \"S\" is for "
                          "inference (dpredict)")
    if graph_type == "Sap":
        raise toml.refuse("data.graph.graph_type", "overlap-shape-only graphs are not implemented: deeph_tf's graphs "
                          "carry the overlap values; use \"H\", \"HS\" or \"Rho\"")
    if graph_type not in GRAPH_TYPES:
        raise toml.refuse("data.graph.graph_type", "expected \"H\", \"HS\", \"Rho\", \"S\" or \"Sap\"")
    if target_type not in TARGET_TYPES:
        raise toml.refuse("model.target_type", "expected \"H\" or \"Rho\"")
    targets, serves = GRAPH_TYPES[graph_type]
    if serves != target_type:
        use = '"H" or "HS"' if target_type == "H" else '"Rho"'
        raise toml.refuse("data.graph.graph_type", f"these graphs hold no labels for model.target_type "
                          f"{target_type!r}; use {use}")
    dataset = training["dataset"] = {"data_dir_depth": toml["data.dft.data_dir_depth"], "targets": targets,
                                     "graph_dir": str(inputs / "graph" / toml["data.graph.dataset_name"])}
    sources.update({"training.dataset.data_dir_depth": "data.dft.data_dir_depth",
                    "training.dataset.graph_dir": "data.graph.dataset_name"})
    toml.note(f"data.graph.graph_type = {graph_type!r}: the graphs store {targets[0]} and the overlap (deeph_tf's "
              "graphs always carry the overlap, whose sparsity defines the edges)")
    toml.note(f"data.graph.dataset_name = {toml['data.graph.dataset_name']!r}: the graph folder {dataset['graph_dir']}")
    storage = toml["data.graph.storage_type"]
    if storage not in ("memory", "disk"):
        raise toml.refuse("data.graph.storage_type", "expected \"memory\" or \"disk\"")
    dataset["storage"] = storage
    orbitals = toml["data.graph.common_orbital_types"]
    dataset["common_orbital_types"] = orbitals or None
    sources["training.dataset.common_orbital_types"] = "data.graph.common_orbital_types"
    parallel = toml["data.graph.parallel_num"]
    dataset["num_workers"] = max(parallel, 0)
    toml.note(f"data.graph.parallel_num = {parallel}: graph-building processes "
              + ("chosen from the hardware (one per core)" if parallel <= 0 else str(parallel))
              + "; the graphs do not depend on it")


def _model(toml: TomlInput, config: Dict[str, Any], sources: Dict[str, str], continuing: bool) -> None:
    net_type = toml["model.net_type"]
    if net_type not in PRESETS:
        raise toml.refuse("model.net_type", "expected \"normal\" (= \"sparrow\") or \"accurate\" (= \"eagle\")")
    irreps = toml[f"{ADV}.net_irreps"]
    parity = toml[f"{ADV}.consider_parity"]
    if PRESETS[net_type] == "accurate" and parity and not continuing:
        raise toml.refuse(f"{ADV}.consider_parity", f"must be false with net_type {net_type!r} (all-even irreps, "
                          "DeepH-pack's rule); set consider_parity = false")
    for key, inert in ((f"{ADV}.num_heads", None), (f"{ADV}.enable_bs3b_layer", False),
                       (f"{ADV}.bs3b_orbital_types", None)):
        if toml.given(key) and toml[key] != inert:
            if not continuing:
                raise toml.refuse(key, "the eagle network's attention heads and bs3b layer are not implemented in "
                                  "deeph_tf's network; remove the key (net_type \"accurate\" is deeph_tf's accurate "
                                  "preset) or continue from a deeph_tf model (continued.enable)")
            toml.note(f"{key}: describes the previous model, whose architecture is loaded from its checkpoint")
    model = {"preset": PRESETS[net_type], "irreps_hidden": irreps or None, "num_blocks": toml[f"{ADV}.num_blocks"],
             "parity": parity, "cutoff": toml[f"{ADV}.gaussian_basis_rmax"],
             "target": TARGET_TYPES[toml["model.target_type"]],
             "standardize_gauge": toml[f"{ADV}.standardize_gauge"]}
    model["precision"], config["training"]["dataset"]["dtype"] = precision(toml)
    if not irreps:
        toml.note(f"{ADV}.net_irreps is empty: the {PRESETS[net_type]} preset's irreps")
    toml.note(f"{ADV}.gaussian_basis_rmax = {model['cutoff']:g}: model.cutoff (the radial basis' range; edges "
              "longer than it get no radial information, a warning says so)")
    if model["standardize_gauge"] and toml["data.graph.graph_type"] != "HS":
        raise toml.refuse(f"{ADV}.standardize_gauge", "needs data.graph.graph_type = \"HS\" (the gauge fit uses the "
                          "overlap; DeepH-pack's rule)")
    config["model"] = model
    sources.update({"model.irreps_hidden": f"{ADV}.net_irreps", "model.num_blocks": f"{ADV}.num_blocks",
                    "model.cutoff": f"{ADV}.gaussian_basis_rmax", "model.parity": f"{ADV}.consider_parity"})


def _schema_error(error: ConfigError, toml: TomlInput, sources: Dict[str, str]) -> ConfigError:
    """The schema's message, led by the TOML key the failing path came from."""
    path = error.path or ""
    key = next((sources[p] for p in sorted(sources, key=len, reverse=True)
                if path == p or path.startswith(p + ".") or path.startswith(p + "[")), None)
    if key is None:
        return ConfigError(f"{toml.path}: {error}", path=error.path)
    return ConfigError(f"{toml.path}: {key} = {show_value(toml[key])}: {error}", path=key)


def convert_train(toml: TomlInput, now: Optional[_dt.datetime] = None) -> TrainPlan:
    """Map a checked training TOML onto a normalized deeph_tf input (see the module docstring)."""
    settings = runtime(toml)
    run_dir = run_folder(toml, now)
    config: Dict[str, Any] = {"training": {"seed": toml["system.random_seed"]}}
    sources: Dict[str, str] = {"training.seed": "system.random_seed"}
    _data(toml, config, sources)
    _model(toml, config, sources, continuing=toml[f"{continued.CONTINUED}.enable"])
    process.loss(toml, config, sources)
    process.optimizer(toml, config, sources)
    process.scheduler(toml, config, sources)
    process.dataloader(toml, config, sources)
    process.loop(toml, config, sources)
    training = config["training"]
    if run_dir is not None:
        training["disp_file"] = str(run_dir / "lcurve.out")
        training["save_ckpt"] = str(run_dir / "model" / "model.ckpt")
        toml.note(f"data.outputs_dir: this run's folder is {run_dir} (out.json, lcurve.out, {LOG_NAME}; "
                  "checkpoints and report in model/)")
    try:
        normalized = normalize(config)
    except ConfigError as error:
        raise _schema_error(error, toml, sources) from None
    start = continued.start(toml, normalized)
    return TrainPlan(toml, normalized, settings, run_dir, toml["data.graph.only_save_graph"], start, sources)


def load_train_toml(path: PathLike, now: Optional[_dt.datetime] = None) -> TrainPlan:
    """Read, check and convert a DeepH-pack training TOML (see :func:`convert_train`)."""
    return convert_train(read_toml(path, TRAIN_KIND), now)
