"""The end of a ``dtrain`` run: final evaluation, parity.npz, training_record.json and report.md."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np

from deeph_tf._version import __version__
from deeph_tf.atomic_io import atomic_path
from deeph_tf.train.epochs import EpochClock
from deeph_tf.train.final_eval import evaluate_subset, peak_memory_mib
from deeph_tf.train.report import write_report, write_training_record

logger = logging.getLogger(__name__)

PARITY_NAME = "parity.npz"


def write_run_report(config: dict, model, graph_set, index: dict, compilations: int, epochs: EpochClock,
                     lcurve_path: Path, n_params: int, last_step: int, seconds: float,
                     comparisons: Optional[Callable[..., List[dict]]] = None) -> Path:
    """Evaluate ``model`` on the validation subset (the training one without validation) and write
    parity.npz, training_record.json and report.md next to the checkpoints; returns the report."""
    training = config["training"]
    folder = Path(training["save_ckpt"]).parent
    counts = index["subsets"]
    subset = "validate" if counts.get("validate", {}).get("counts", {}).get("structures", 0) else "train"
    batch_size = (training.get("validation_data") or training["training_data"])["batch_size"]
    target = config["model"]["target"]
    metrics, units, parity, n_structures = evaluate_subset(model, graph_set, subset, batch_size, target)
    with atomic_path(folder / PARITY_NAME) as tmp:
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
        "parity": PARITY_NAME,
        "comparisons": compared,
        "compilations": compilations,
    }
    write_training_record(folder, record)
    report = write_report(folder, record=record, plots=training["plots"])
    logger.info("final %s metrics: %s; report: %s", subset,
                ", ".join(f"{k} {v:.4g} {units.get(k, '')}".strip() for k, v in metrics.items()), report)
    return report
