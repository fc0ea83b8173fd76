"""What a ``dtrain`` run starts from: the model it continues or initializes from, the graphs
(built in that model's orbital layout), the batch iterators of this worker, and the model.

See :mod:`deeph_tf.train.trainer` for the semantics of ``restart``, ``init_model`` and
``init_frz_model``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from deeph_tf.artifacts.checkpoint import Checkpoint, read_checkpoint, resolve_checkpoint
from deeph_tf.artifacts.loader import CHECKPOINT, FROZEN, load_model, model_from_checkpoint
from deeph_tf.data import keys
from deeph_tf.data.layout import OrbitalLayout
from deeph_tf.elements import atomic_number
from deeph_tf.data.pipeline import GraphSet
from deeph_tf.data.shards import build_from_config
from deeph_tf.model.builder import build_energy_model, build_model, is_energy_config
from deeph_tf.model.network import model_inputs
from deeph_tf.model.statistics import compute_statistics
from deeph_tf.model.transfer import check_extension, extend_model

logger = logging.getLogger(__name__)


@dataclass
class StartingModel:
    """The model a run starts from (``restart``, ``init_model`` or ``init_frz_model``)."""

    source: str
    model: Any
    model_config: Dict[str, Any]
    layout: Dict[str, Any]
    #: The whole checkpoint of a restart (optimizer state, schedule, step); None otherwise.
    checkpoint: Optional[Checkpoint] = None
    #: The starting model's own training-data summary (empty for models saved before it existed).
    data_summary: Dict[str, Any] = field(default_factory=dict)
    kind: str = "checkpoint"
    step: int = 0


def starting_model(restart, init_model, init_frz_model) -> Optional[StartingModel]:
    """The built model (with its weights) the run starts from, or None for a fresh model."""
    if restart:
        path = resolve_checkpoint(restart)
        ckpt = read_checkpoint(path)
        return StartingModel(str(path), model_from_checkpoint(ckpt), ckpt.model_config, ckpt.layout, ckpt,
                             data_summary=ckpt.extra.get("training_data") or {}, step=ckpt.step)
    if init_model or init_frz_model:
        model, metadata = load_model(init_model or init_frz_model, kind=CHECKPOINT if init_model else FROZEN)
        return StartingModel(metadata["source"], model, metadata["model_config"], metadata["layout"],
                             data_summary=metadata.get("training_data") or {}, kind=metadata["kind"],
                             step=int(metadata.get("step") or 0))
    return None


def training_data_summary(config: dict, index: dict, start: Optional[StartingModel]) -> Dict[str, Any]:
    """What a run trains on, for its checkpoints: the systems, the structures/atoms/edges of each
    subset, the elements, and the chain of models it started from (pretraining first)."""
    training = config["training"]
    lineage = list(start.data_summary.get("lineage", [])) if start is not None else []
    if start is not None and start.checkpoint is None:  # -i/-f/--finetune: a new stage
        lineage.append({"model": start.source, "kind": start.kind, "step": start.step,
                        "systems": start.data_summary.get("systems"),
                        "elements": start.data_summary.get("elements")})
    return {
        "systems": training["training_data"]["systems"],
        "validation_systems": (training.get("validation_data") or {}).get("systems"),
        "subsets": {name: subset.get("counts", {}) for name, subset in index["subsets"].items()},
        "elements": list(index.get("layout", {}).get("elements_orbital_map", {}) or index.get("elements", [])),
        "graph_fingerprint": index.get("fingerprint"),
        "lineage": lineage,
    }


def lock_layout(config: dict, layout: Dict[str, Any], source: str) -> None:
    """Build the new data's graphs in (an extension of) the layout of the model we start from.

    Hamiltonian-type models: the graphs' layout is the union of the model's and the data's
    (:func:`prepare_graphs` passes the model's layout on), so data with a subset of the model's
    elements, or with new ones, fit; a configured ``training.dataset.elements`` list is
    extended by the model's. Force fields keep the model's element list.
    """
    model_layout = OrbitalLayout.from_dict(layout)
    dataset = config["training"]["dataset"]
    given = dataset.get("elements")
    if config["model"]["target"] == "energy_force":
        if given is not None and list(given) != list(model_layout.elements):
            raise ValueError(f"training.dataset.elements is {given}, but the model from {source} has {list(model_layout.elements)}")
        dataset["elements"] = list(model_layout.elements)
        return
    if given is not None:
        dataset["elements"] = sorted(set(given) | set(model_layout.elements), key=atomic_number)


def prepare_graphs(config: dict, workers, start: Optional[StartingModel],
                   train_only: Sequence[Tuple[str, Optional[str]]]) -> Tuple[GraphSet, dict]:
    """(graph set, index) of the input's data plus ``train_only`` systems (built by rank 0),
    checked against the model target and the starting model."""
    training = config["training"]
    energy_force = config["model"]["target"] == "energy_force"
    base_layout = start.layout if start is not None and not energy_force else None
    index = (build_from_config(config, train_only=list(train_only), base_layout=base_layout)
             if workers.is_root else None)
    workers.barrier()
    graph_set = GraphSet(training["dataset"]["graph_dir"])
    if index is None:
        index = graph_set.index
    if start is not None and graph_set.layout.to_dict() != start.layout:
        added = check_extension(OrbitalLayout.from_dict(start.layout), graph_set.layout, start.source)
        if start.checkpoint is not None:
            raise ValueError(f"the new data add the element(s) {added} to the model from {start.source}: a restart (-r) "
                             "continues the same model and optimizer; use -i, -f or --finetune to fine-tune onto new elements")
    if not index["subsets"]["train"]["counts"]["structures"]:
        raise ValueError("no training structures (check training.training_data.systems and training.dataset.split)")
    operator = config["model"]["target"]
    if energy_force != keys.is_energy_force(graph_set.operators):
        raise ValueError(f"model.target is {operator!r} but the graphs in {graph_set.graph_dir} are "
                         f"{'force-field' if not energy_force else 'block'} graphs; use another training.dataset.graph_dir")
    if start is not None and is_energy_config(start.model_config) != energy_force:
        raise ValueError(f"model.target is {operator!r} but the model from {start.source} is a "
                         f"{'force field' if is_energy_config(start.model_config) else 'Hamiltonian-type model'}")
    if not energy_force and operator not in graph_set.operators:
        raise ValueError(f"model.target is {operator!r} but the graphs hold {list(graph_set.operators)}; "
                         "add it to training.dataset.targets")
    if start is not None and not energy_force:
        data_spinful = graph_set.spinful and operator in keys.SPIN_OPERATORS
        model_spinful = bool(start.model_config.get("spinful", False))
        if data_spinful != model_spinful:
            kinds = {True: "spinful (spin-orbit)", False: "spinless"}
            raise ValueError(f"the model from {start.source} predicts {kinds[model_spinful]} blocks but the data in "
                             f"{graph_set.graph_dir} are {kinds[data_spinful]}; start a new model or use data of its kind")
    return graph_set, index


def has_subset(index: dict, subset: str) -> bool:
    """Whether the index's ``subset`` holds any structure."""
    return index["subsets"].get(subset, {}).get("counts", {}).get("structures", 0) > 0


def starting_weights(start: StartingModel, config: dict, graph_set: GraphSet):
    """The starting model, extended onto the graphs' new elements if they have any
    (:func:`deeph_tf.model.transfer.extend_model`)."""
    if graph_set.layout.to_dict() == start.layout:
        return start.model
    if start.model_config.get("spinful", False):
        raise ValueError(f"the data add elements to the spinful model from {start.source}: extending a spinful model "
                         "onto new elements is not supported yet; train a new model or use data of its elements")
    statistics = compute_statistics(graph_set, operator=config["model"]["target"])
    return extend_model(start.model, OrbitalLayout.from_dict(start.layout), graph_set.layout, statistics, start.source)


def new_model(config: dict, graph_set: GraphSet, index: dict, first_batch: dict):
    """A fresh model of the input's ``model`` section, built on ``first_batch``."""
    if config["model"]["target"] == "energy_force":
        model = build_energy_model(config["model"], index["energy_statistics"], index["cutoff"])
    else:
        statistics = compute_statistics(graph_set, operator=config["model"]["target"])
        model = build_model(config["model"], graph_set.layout, statistics)
    model(model_inputs(first_batch))
    return model


def mix_extra_systems(training_data: dict, graph_set: GraphSet, n_extra: int, input_share: Optional[float]) -> None:
    """Set ``training_data.sys_probs``: ``input_share`` of the batches from the input's systems,
    the rest from the ``n_extra`` training-only systems (the last ones), each part by size."""
    systems = graph_set.systems("train")
    n_input = len(systems) - n_extra
    if input_share is None or n_input <= 0:
        if input_share is not None and n_input <= 0 and input_share > 0:
            logger.warning("distillation.dft_weight is %g but there are no DFT-labelled training structures", input_share)
        return
    sizes = {k: sum(len(s["n_atoms"]) for s in graph_set.shards("train") if s["system"] == k) for k in systems}
    own, extra = systems[:n_input], systems[n_input:]
    probs = [input_share * sizes[k] / sum(sizes[j] for j in own) for k in own]
    probs += [(1 - input_share) * sizes[k] / sum(sizes[j] for j in extra) for k in extra]
    training_data["sys_probs"] = probs
    logger.info("distillation: %.0f%% of the batches from DFT labels, %.0f%% from the teacher's",
                100 * input_share, 100 * (1 - input_share))


def batch_iterators(graph_set: GraphSet, training: dict, workers, seed: int, start_step: int, has_validation: bool):
    """(training batches, validation batches or None, validation batches per display) of this worker.

    Training data are sharded over the workers (each needs a part of every system); the
    shuffle seed depends on (seed, rank, start step), so a restart does not replay the
    first epochs. Validation is sharded when every system can be, else rank 0 validates all.
    """
    if workers.size > 1:
        short = systems_smaller_than(graph_set, "train", workers.size)
        if short:
            raise ValueError(f"training system(s) {short} have fewer structures than the {workers.size} workers; "
                             "every worker needs its own part of every system")
    validation_sharded = has_validation and not systems_smaller_than(graph_set, "validate", workers.size)
    validates_here = has_validation and (validation_sharded or workers.is_root)
    train_data, options = training["training_data"], training["dataset"]
    common = {"num_buckets": options["num_buckets"], "storage": options["storage"]}
    train_ds, _ = graph_set.dataset(
        "train", train_data["batch_size"], shuffle=True, repeat=True,
        seed=seed + 1009 * workers.rank + 104729 * start_step, shuffle_buffer=options["shuffle_buffer"],
        worker_index=workers.rank, num_workers=workers.size,
        auto_prob=train_data["auto_prob"], sys_probs=train_data["sys_probs"], **common,
    )
    if not validates_here:
        return iter(train_ds), None, 0
    valid_data = training["validation_data"] or {"batch_size": train_data["batch_size"], "auto_prob": "prob_sys_size",
                                                   "sys_probs": None,
                                                   "numb_btch": training.get("validation_numb_btch", 1)}
    valid_ds, _ = graph_set.dataset(
        "validate", valid_data["batch_size"], shuffle=False, repeat=True, seed=seed,
        worker_index=workers.rank if validation_sharded else 0, num_workers=workers.size if validation_sharded else 1,
        auto_prob=valid_data["auto_prob"], sys_probs=valid_data["sys_probs"], **common,
    )
    return iter(train_ds), iter(valid_ds), int(valid_data.get("numb_btch", 1))


def systems_smaller_than(graph_set: GraphSet, subset: str, size: int) -> List[int]:
    """Systems of ``subset`` with fewer than ``size`` structures (cannot give every worker a part)."""
    counts: Dict[int, int] = {}
    for shard in graph_set.index["subsets"].get(subset, {}).get("shards", []):
        counts[shard["system"]] = counts.get(shard["system"], 0) + len(shard["n_atoms"])
    return sorted(system for system, n in counts.items() if n < size)
