"""The ``dtrain`` loop: graphs -> model -> XLA-compiled steps -> lcurve.out and checkpoints.

DeePMD semantics (CONVENTIONS.md section 2):

- ``numb_steps`` is the absolute target; step t = number of updates done.
- At t = 0 and every ``disp_freq`` steps a row goes to ``lcurve.out``: the loss and MAE of
  the current training batch and of ``numb_btch`` validation batches, and the (unscaled)
  learning rate. The MAE is in the target's unit (eV for the Hamiltonian); ``mae_gauge`` is
  the gauge-corrected MAE (best mu S removed per structure).
- A checkpoint every ``save_freq`` steps and at the end (independent of ``disp_freq``), the
  best model by validation loss (training loss without validation) at display steps.
- ``restart``: weights, optimizer slots, schedule state and step continue; lcurve is
  appended. ``init_model`` / ``init_frz_model``: weights only, step 0, a fresh optimizer and
  schedule, lcurve rewritten. The model's architecture and orbital layout come from the
  checkpoint (the input's ``model`` section is then ignored, with a log line), and the
  graphs of the new data are built in that layout.
- A NaN or Inf loss stops the run with :class:`TrainingDiverged`; the last checkpoint,
  written before the bad step, stays intact.
"""
from __future__ import annotations

import copy
import logging
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from deeph_tf.artifacts.checkpoint import Checkpoint, CheckpointManager, read_checkpoint, resolve_checkpoint
from deeph_tf.artifacts.loader import CHECKPOINT, FROZEN, load_model, model_from_checkpoint

logger = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or Inf."""


@dataclass
class TrainResult:
    """What a finished run reports."""

    last_step: int
    stopped_early: bool
    latest_checkpoint: Optional[Path]
    best_checkpoint: Optional[Path]
    lcurve: Path
    seconds: float
    compilations: int


def _format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@dataclass
class StartingModel:
    """The model a run starts from (``restart``, ``init_model`` or ``init_frz_model``)."""

    source: str
    model: Any
    model_config: Dict[str, Any]
    layout: Dict[str, Any]
    #: The whole checkpoint of a restart (optimizer state, schedule, step); None otherwise.
    checkpoint: Optional[Checkpoint] = None


def _starting_model(restart, init_model, init_frz_model) -> Optional[StartingModel]:
    """The built model (with its weights) the run starts from, or None for a fresh model."""
    if restart:
        path = resolve_checkpoint(restart)
        ckpt = read_checkpoint(path)
        return StartingModel(str(path), model_from_checkpoint(ckpt), ckpt.model_config, ckpt.layout, ckpt)
    if init_model or init_frz_model:
        model, metadata = load_model(init_model or init_frz_model, kind=CHECKPOINT if init_model else FROZEN)
        return StartingModel(metadata["source"], model, metadata["model_config"], metadata["layout"])
    return None


def _lock_layout(config: dict, layout: Dict[str, Any], source: str) -> None:
    """Build the new data's graphs in the layout of the model we start from."""
    from deeph_tf.data.layout import OrbitalLayout

    model_layout = OrbitalLayout.from_dict(layout)
    dataset = config["training"]["dataset"]
    if config["model"]["target"] == "energy_force":
        given = dataset.get("elements")
        if given is not None and list(given) != list(model_layout.elements):
            raise ValueError(f"training.dataset.elements is {given}, but the model from {source} has {list(model_layout.elements)}")
        dataset["elements"] = list(model_layout.elements)
        return
    for key, value in (("elements", list(model_layout.elements)), ("common_orbital_types", model_layout.common_orbital_types)):
        given = dataset.get(key)
        if given is None:
            dataset[key] = value
        elif key == "elements" and list(given) != value:
            raise ValueError(f"training.dataset.elements is {given}, but the model from {source} has {value}")


def train(
    config: dict,
    *,
    restart: Optional[str] = None,
    init_model: Optional[str] = None,
    init_frz_model: Optional[str] = None,
    output: Optional[str] = "out.json",
    workers=None,
    extra_train_systems: Sequence[Tuple[str, Optional[str]]] = (),
    input_share: Optional[float] = None,
    comparisons: Optional[Callable[[Any, Any, str], List[dict]]] = None,
) -> TrainResult:
    """Train on a normalized input (see :func:`deeph_tf.config.load_input`).

    ``dtrain`` calls this through :func:`deeph_tf.workflows.dtrain.run_dtrain`, which supplies
    the last three arguments for distillation (the input's ``distillation`` section is not read here).

    Args:
        config: the normalized input (not modified).
        restart, init_model, init_frz_model: at most one; see the module docstring.
        output: where to write the normalized input (None: nowhere).
        workers: a :class:`~deeph_tf.train.distributed.Workers` (default: this process alone).
        extra_train_systems: (systems, fmt) trained on besides the input's (training subset
            only: never validated or tested on), e.g. a teacher's labels.
        input_share: with ``extra_train_systems``, the share of batches drawn from the input's
            own systems (None: by size, DeePMD's default).
        comparisons: ``f(model, graph_set, subset) -> [comparison]`` for the report (e.g.
            student vs teacher), called at the end of the run.
    """
    if sum(x is not None for x in (restart, init_model, init_frz_model)) > 1:
        raise ValueError("give at most one of restart, init_model, init_frz_model")
    import keras

    from deeph_tf.config import write_normalized
    from deeph_tf.data import keys
    from deeph_tf.data.pipeline import GraphSet
    from deeph_tf.data.shards import build_from_config
    from deeph_tf.model.builder import build_energy_model, build_model, is_energy_config
    from deeph_tf.model.network import model_inputs
    from deeph_tf.model.statistics import compute_statistics
    from deeph_tf.artifacts.checkpoint import assign_values, variable_values
    from deeph_tf.train.distributed import Workers
    from deeph_tf.train.lcurve import LcurveWriter, plot_lcurve
    from deeph_tf.train.objectives import build_objective
    from deeph_tf.train.optimizers import build_optimizer
    from deeph_tf.train.schedules import build_schedule
    from deeph_tf.train.step import CompiledSteps

    workers = workers or Workers.single()
    config = copy.deepcopy(config)
    training = config["training"]
    if training.get("seed") is None:
        training["seed"] = random.SystemRandom().randrange(2**31)
        logger.info("training.seed is null: using seed %d (recorded in out.json)", training["seed"])
    seed = int(training["seed"])

    start = _starting_model(restart, init_model, init_frz_model)
    source, model_config, layout_dict = (start.source, start.model_config, start.layout) if start else (None, None, None)
    ckpt = start.checkpoint if start else None
    if source is not None:
        _lock_layout(config, layout_dict, source)
        logger.info("model architecture and orbital layout from %s (the input's model section is not used)", source)
    if output and workers.is_root:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        write_normalized(config, output)

    train_only = list(extra_train_systems)
    index = build_from_config(config, train_only=train_only) if workers.is_root else None
    workers.barrier()
    graph_set = GraphSet(training["dataset"]["graph_dir"])
    if index is None:
        index = graph_set.index
    if layout_dict is not None and graph_set.layout.to_dict() != layout_dict:
        raise ValueError(f"the graphs in {graph_set.graph_dir} have the layout {graph_set.layout.to_dict()}, "
                         f"the model from {source} needs {layout_dict}")
    train_counts = index["subsets"]["train"]["counts"]
    if not train_counts["structures"]:
        raise ValueError("no training structures (check training.training_data.systems and training.dataset.split)")
    has_validation = index["subsets"].get("validate", {}).get("counts", {}).get("structures", 0) > 0
    operator = config["model"]["target"]
    energy_force = operator == "energy_force"
    if energy_force != keys.is_energy_force(graph_set.operators):
        raise ValueError(f"model.target is {operator!r} but the graphs in {graph_set.graph_dir} are "
                         f"{'force-field' if not energy_force else 'block'} graphs; use another training.dataset.graph_dir")
    if model_config is not None and is_energy_config(model_config) != energy_force:
        raise ValueError(f"model.target is {operator!r} but the model from {source} is a "
                         f"{'force field' if is_energy_config(model_config) else 'Hamiltonian-type model'}")
    if not energy_force and operator not in graph_set.operators:
        raise ValueError(f"model.target is {operator!r} but the graphs hold {list(graph_set.operators)}; "
                         "add it to training.dataset.targets")

    keras.utils.set_random_seed(seed + 7919 * workers.rank)
    start_step = ckpt.step if restart else 0
    if train_only:
        _mix_extra_systems(training["training_data"], graph_set, len(train_only), input_share)
    train_iter, valid_iter, numb_btch = _batch_iterators(graph_set, training, workers, seed, start_step, has_validation)

    first_batch = next(train_iter)
    if model_config is None:
        if energy_force:
            model = build_energy_model(config["model"], index["energy_statistics"], index["cutoff"])
        else:
            statistics = compute_statistics(graph_set, operator=operator)
            model = build_model(config["model"], graph_set.layout, statistics)
        model(model_inputs(first_batch))
    else:
        model = start.model
    workers.broadcast_variables(model.weights)
    n_params = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    logger.info("model: %d trainable parameters, %s precision, target %s", n_params, config["model"]["precision"], operator)

    numb_steps = int(training["numb_steps"])
    schedule = build_schedule(config["learning_rate"], numb_steps)
    if restart and ckpt.schedule:
        schedule.load_state_dict(ckpt.schedule)
    lr_scale = workers.lr_scale(training["scale_by_worker"])
    optimizer = build_optimizer(config["optimizer"], schedule.lr(start_step) * lr_scale)
    optimizer.build(model.trainable_variables)
    if restart:
        assign_values(optimizer.variables, ckpt.optimizer_variables, "optimizer state", source)
    workers.broadcast_variables(optimizer.variables)
    has_virial = energy_force and index["subsets"]["train"]["counts"].get("virials", 0) > 0
    objective = build_objective(config, config["learning_rate"]["start_lr"], has_virial)
    steps = CompiledSteps(
        model, optimizer, clip_norm=config["optimizer"]["clip_norm"], jit_compile=training["jit_compile"],
        gradient_transform=workers.gradient_transform(), objective=objective,
    )

    metric_names = objective.metric_names
    lcurve_path = Path(training["disp_file"])
    if workers.is_root:
        lcurve_path.parent.mkdir(parents=True, exist_ok=True)
    lcurve = LcurveWriter(lcurve_path, metric_names, mode="a" if restart else "w", restart_step=start_step,
                          validation=has_validation) if workers.is_root else None
    manager = CheckpointManager(training["save_ckpt"], training["max_ckpt_keep"]) if workers.is_root else None
    if manager is not None and restart:
        manager.prune_after(start_step)
    extra = dict(ckpt.extra) if (restart and ckpt.extra) else {}
    best_loss = float(extra.get("best_loss", math.inf))

    def make_checkpoint(step: int) -> Checkpoint:
        return Checkpoint(
            step=step, model_config=model.get_config(), layout=graph_set.layout.to_dict(),
            model_weights=variable_values(model.weights), optimizer_variables=variable_values(optimizer.variables),
            input=config, schedule=schedule.state_dict(), extra={"best_loss": best_loss, "seed": seed},
        )

    sum_names = objective.sum_names

    def summarize(outputs: List[dict]) -> Dict[str, float]:
        total = {k: float(sum(float(o.get(k, 0.0)) for o in outputs)) for k in sum_names}  # zeros without data
        total = workers.allreduce_sums(total)
        return objective.finish(total)

    def evaluate(batch_iter, n_batches: int) -> Dict[str, float]:
        outputs = []
        for _ in range(n_batches if batch_iter is not None else 0):
            result = {k: v.numpy() for k, v in steps.evaluate(next(batch_iter)).items()}
            result["batches"] = 1.0
            outputs.append(result)
        return summarize(outputs)

    disp_freq, save_freq = int(training["disp_freq"]), int(training["save_freq"])
    epochs = EpochClock(_steps_per_epoch(graph_set, training, workers), start_step)
    progress = _progress_bar(numb_steps, start_step, enabled=workers.is_root and training["disp_training"])
    batch = first_batch
    step, stopped_early, started = start_step, False, time.perf_counter()
    timed_from, timed_steps = None, 0
    latest = None
    logger.info("training from step %d to %d (%d training structures%s)", start_step, numb_steps,
                train_counts["structures"],
                f", {index['subsets']['validate']['counts']['structures']} validation" if has_validation else "")
    try:
        while True:
            lr = schedule.lr(step)
            objective.update(lr)  # loss prefactors that follow the lr (ener), for display and the step
            if (step % disp_freq == 0 or step == numb_steps) and not (restart and step == start_step):
                train_metrics = evaluate(iter([batch]), 1)
                valid_metrics = evaluate(valid_iter, numb_btch) if has_validation else None
                if not math.isfinite(train_metrics["loss"]):
                    raise TrainingDiverged(f"step {step}: training loss is {train_metrics['loss']}")
                if lcurve is not None:
                    lcurve.write(step, valid_metrics, train_metrics, lr)
                watched = (valid_metrics or train_metrics)["loss"]
                if workers.is_root and step > start_step and watched < best_loss:
                    best_loss = watched
                    manager.save_best(make_checkpoint(step))
                if training["disp_training"]:
                    _log_display(step, numb_steps, train_metrics, valid_metrics, lr,
                                 timed_from if training["time_training"] else None, timed_steps)
                if step > start_step and hasattr(schedule, "update") and schedule.update(watched):
                    logger.info("step %d: the learning rate reached its minimum and stopped improving; stopping", step)
                    stopped_early = True
            if workers.is_root and (step == numb_steps or stopped_early or (step > start_step and step % save_freq == 0)):
                latest = manager.save(make_checkpoint(step))
            if step >= numb_steps or stopped_early:
                epochs.finish(step)
                break
            optimizer.learning_rate.assign(lr * lr_scale)
            out = steps.train(batch)
            loss_value = float(out["loss"])
            if not math.isfinite(loss_value):
                raise TrainingDiverged(f"step {step + 1}: training loss is {loss_value}")
            step += 1
            epochs.tick(step)
            if timed_from is None and step - start_step >= 2:  # after the first compilations
                timed_from, timed_steps = time.perf_counter(), 0
            elif timed_from is not None:
                timed_steps += 1
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{loss_value:.3g}", refresh=False)
            batch = next(train_iter)
    except TrainingDiverged as error:
        last = manager.latest_path if manager is not None else None
        raise TrainingDiverged(f"{error}; stopping. The last good checkpoint is {last or '(none yet)'}") from None
    finally:
        if progress is not None:
            progress.close()
        if lcurve is not None:
            lcurve.close()
    seconds = time.perf_counter() - started
    if workers.size > 1:
        difference = workers.weights_in_sync(model.weights)
        (logger.info if difference == 0.0 else logger.error)(
            "model weights %s on all %d workers (largest difference %.3g)",
            "identical" if difference == 0.0 else "DIFFER", workers.size, difference)
    compilations = steps.train_traces + steps.eval_traces
    logger.info("finished at step %d in %s; %d XLA compilation(s) (train %d, eval %d)", step, _format_duration(seconds),
                compilations, steps.train_traces, steps.eval_traces)
    if workers.is_root and training["plots"]:
        try:
            png = plot_lcurve(lcurve_path, lcurve_path.with_suffix(".png"))
            logger.info("learning curve: %s", png)
        except Exception as error:  # a plot must never fail a finished run
            logger.warning("could not plot the learning curve: %s", error)
    if workers.is_root and training["report"]:
        try:
            _write_run_report(config, model, graph_set, index, steps, objective, epochs, lcurve_path, n_params, step,
                              seconds, training, comparisons)
        except Exception as error:  # a report must never fail a finished run
            logger.warning("could not write the training report: %s", error, exc_info=logger.isEnabledFor(logging.DEBUG))
    return TrainResult(
        last_step=step, stopped_early=stopped_early, latest_checkpoint=latest,
        best_checkpoint=manager.best_path if manager is not None and manager.best else None,
        lcurve=lcurve_path, seconds=seconds, compilations=compilations,
    )


def _batch_iterators(graph_set, training: dict, workers, seed: int, start_step: int, has_validation: bool):
    """(training batches, validation batches or None, validation batches per display) of this worker.

    Training data are sharded over the workers (each needs a part of every system); the
    shuffle seed depends on (seed, rank, start step), so a restart does not replay the
    first epochs. Validation is sharded when every system can be, else rank 0 validates all.
    """
    if workers.size > 1:
        short = _systems_smaller_than(graph_set, "train", workers.size)
        if short:
            raise ValueError(f"training system(s) {short} have fewer structures than the {workers.size} workers; "
                             "every worker needs its own part of every system")
    validation_sharded = has_validation and not _systems_smaller_than(graph_set, "validate", workers.size)
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
                                                   "sys_probs": None, "numb_btch": 1}
    valid_ds, _ = graph_set.dataset(
        "validate", valid_data["batch_size"], shuffle=False, repeat=True, seed=seed,
        worker_index=workers.rank if validation_sharded else 0, num_workers=workers.size if validation_sharded else 1,
        auto_prob=valid_data["auto_prob"], sys_probs=valid_data["sys_probs"], **common,
    )
    return iter(train_ds), iter(valid_ds), int(valid_data.get("numb_btch", 1))


def _systems_smaller_than(graph_set, subset: str, size: int) -> List[int]:
    """Systems of ``subset`` with fewer than ``size`` structures (cannot give every worker a part)."""
    counts: Dict[int, int] = {}
    for shard in graph_set.index["subsets"].get(subset, {}).get("shards", []):
        counts[shard["system"]] = counts.get(shard["system"], 0) + len(shard["n_atoms"])
    return sorted(system for system, n in counts.items() if n < size)


def _progress_bar(total: int, start: int, enabled: bool):
    """A tqdm bar on a terminal (stderr is a TTY), else None."""
    if not enabled or not sys.stderr.isatty() or total <= start:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=start, unit="step", dynamic_ncols=True, leave=False)


def _log_display(step, numb_steps, train_metrics, valid_metrics, lr, timed_from, timed_steps) -> None:
    parts = [f"step {step:7d}"]
    for name, value in train_metrics.items():
        shown = f"{name}_trn {value:.3e}"
        if valid_metrics is not None:
            shown = f"{name}_val {valid_metrics[name]:.3e}  " + shown
        parts.append(shown)
    parts.append(f"lr {lr:.2e}")
    if timed_from is not None and timed_steps > 0:
        per_step = (time.perf_counter() - timed_from) / timed_steps
        parts.append(f"{per_step * 1e3:.1f} ms/step, ETA {_format_duration(per_step * (numb_steps - step))}")
    logger.info("  ".join(parts))


class EpochClock:
    """Epoch boundaries (every ``steps_per_epoch`` updates), wall time and peak memory at each.

    An epoch is one pass over the training structures: training structures / (batch size x
    workers) updates, possibly fractional; epoch k ends at the first step >= k * steps_per_epoch.
    """

    def __init__(self, steps_per_epoch: float, start_step: int = 0):
        self.steps_per_epoch = max(float(steps_per_epoch), 1e-9)
        self.started = self.last = time.perf_counter()
        self.epochs: List[dict] = []
        self._next = int(start_step // self.steps_per_epoch) + 1

    def _record(self, step: int, epoch: float) -> None:
        from deeph_tf.train.final_eval import peak_memory_mib

        now = time.perf_counter()
        rss, device = peak_memory_mib()
        self.epochs.append({"epoch": epoch, "step": int(step), "seconds": now - self.last, "elapsed": now - self.started,
                            "peak_rss_mib": rss, "peak_device_mib": device})
        self.last = now

    def tick(self, step: int) -> None:
        """Call after every update; records the epochs that ended at ``step``."""
        while step >= math.ceil(self._next * self.steps_per_epoch - 1e-9):
            self._record(step, self._next)
            self._next += 1

    def finish(self, step: int) -> None:
        """Record a last, partial epoch if training stopped inside one."""
        if not self.epochs or self.epochs[-1]["step"] < step:
            self._record(step, round(step / self.steps_per_epoch, 3))


def _steps_per_epoch(graph_set, training: dict, workers) -> float:
    """Updates per pass over the training structures (per-system batch sizes, all workers)."""
    from deeph_tf.data.pipeline import resolve_batch_size

    shards = graph_set.shards("train")
    systems = sorted({s["system"] for s in shards})
    atoms = [[n for s in shards if s["system"] == k for n in s["n_atoms"]] for k in systems]
    sizes = resolve_batch_size(training["training_data"]["batch_size"], atoms)
    return sum(len(a) / b for a, b in zip(atoms, sizes)) / max(workers.size, 1)


def _mix_extra_systems(training_data: dict, graph_set, n_extra: int, input_share: Optional[float]) -> None:
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


def _write_run_report(config, model, graph_set, index, steps, objective, epochs: EpochClock, lcurve_path: Path,
                      n_params: int, last_step: int, seconds: float, training: dict, comparisons) -> Path:
    """Final evaluation, training_record.json, parity.npz and report.md next to the checkpoints."""
    import numpy as np

    from deeph_tf._version import __version__
    from deeph_tf.atomic_io import atomic_path
    from deeph_tf.train.final_eval import evaluate_subset, peak_memory_mib
    from deeph_tf.train.report import write_report, write_training_record

    folder = Path(training["save_ckpt"]).parent
    counts = index["subsets"]
    subset = "validate" if counts.get("validate", {}).get("counts", {}).get("structures", 0) else "train"
    batch_size = (training.get("validation_data") or training["training_data"])["batch_size"]
    target = config["model"]["target"]
    metrics, units, parity, n_structures = evaluate_subset(model, graph_set, subset, batch_size, target)
    parity_name = "parity.npz"
    with atomic_path(folder / parity_name) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **parity)
    compared = comparisons(model, graph_set, subset) if comparisons is not None else []
    rss, device = peak_memory_mib()
    record = {
        "format": "deeph_tf.training_record/1",
        "version": __version__,
        "target": target,
        "config": config,
        "lcurve": str(lcurve_path.resolve()),
        "dataset": {name: {"structures": c["counts"]["structures"], "atoms": c["counts"]["atoms"]} for name, c in counts.items()},
        "parameters": n_params,
        "steps_per_epoch": epochs.steps_per_epoch,
        "epochs": epochs.epochs,
        "last_step": last_step,
        "seconds": seconds,
        "peak_rss_mib": rss,
        "peak_device_mib": device,
        "final": {"subset": subset, "structures": n_structures, "metrics": metrics, "units": units},
        "targets": dict(config.get("targets") or {}),
        "parity": parity_name,
        "comparisons": compared,
        "compilations": steps.train_traces + steps.eval_traces,
    }
    write_training_record(folder, record)
    report = write_report(folder, record=record, plots=training["plots"])
    logger.info("final %s metrics: %s; report: %s", subset,
                ", ".join(f"{k} {v:.4g} {units.get(k, '')}".strip() for k, v in metrics.items()), report)
    return report
