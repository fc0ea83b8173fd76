"""Fine-tuning a pretrained (universal) model vs training from scratch, at equal step budgets.

For every budget B (``--budgets``), two runs of the same input (``--input``, e.g. the
graphene demo's): from scratch, and ``dtrain --finetune PRETRAINED``; each run has its own
learning-rate schedule over its B steps (a budget, as "fine-tuned for 10% of the steps").
Every run is then scored by ``dtest`` on the input's test split, as is the pretrained model
itself (one-shot). ``--finetune-lr-scale S`` multiplies the fine-tuned runs' learning rates
(start and stop) by S, as DeepH-pack's universal fine-tuning input starts lower than its
from-scratch one (3e-4 against 1e-3); their folders are ``finetune-B-lrS``. The fine-tuned runs
change the on-site bias by statistic first (DeePMD's default, ``training.finetune_bias``);
``--finetune-bias keep`` runs them without it (folders ``...-keep``; give ``--work`` of the
main run to share its from-scratch runs). Runs are resumable (a finished run's ``run.json`` is reused).

Writes ``benchmarks/results/NAME.json`` (per run: steps, epochs, wall seconds, H MAE raw and
gauge-corrected, band / orbital-energy errors) and ``NAME.png`` (error vs steps, both curves,
one-shot and the largest from-scratch budget as lines), and prints a table.

Usage::

    python benchmarks/finetune_curve.py --pretrained examples/universal/pretrain/frozen_model \\
        --input examples/graphene/input.json --budgets 16 48 160 360 1000 3600 --name finetune_graphene
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
logger = logging.getLogger("finetune_curve")


def warmup_cosine(start_lr: float, steps: int) -> dict:
    """DeepH-pack's universal fine-tuning schedule over a budget of ``steps``: linear warmup from
    0.1 x ``start_lr`` over 5% of the steps (its 1200 of 24000), then cosine decay to 1e-3 x
    ``start_lr`` (init_scale 0.1, end_scale 1e-3)."""
    return {"type": "warmup_cosine", "start_lr": start_lr, "stop_lr": start_lr * 1e-3,
            "warmup_steps": max(1, round(0.05 * steps)), "warmup_start_lr": 0.1 * start_lr}


def run_input(base: dict, base_dir: Path, steps: int, graph_dir: Path, lr_scale: float = 1.0,
              schedule: str = "input") -> dict:
    """The input of one budget: ``base`` with absolute data paths, ``steps`` steps, checkpoint at the end,
    and the learning rates (start and stop) times ``lr_scale``. ``schedule`` "input": the input's
    schedule (an exponential decay is stretched over the budget); "warmup_cosine": :func:`warmup_cosine`
    peaking at the input's start_lr times ``lr_scale``."""
    config = json.loads(json.dumps(base))
    training = config["training"]
    systems = training["training_data"]["systems"]
    training["training_data"]["systems"] = ([str((base_dir / s).resolve()) for s in systems]
                                            if isinstance(systems, list) else str((base_dir / systems).resolve()))
    split = training.get("dataset", {}).get("split")
    if isinstance(split, str):
        training["dataset"]["split"] = str((base_dir / split).resolve())
    training["dataset"]["graph_dir"] = str(graph_dir)
    training.update(numb_steps=int(steps), disp_freq=max(1, int(steps) // 8), save_freq=int(steps), plots=False)
    learning_rate = config.get("learning_rate", {})
    if learning_rate.get("type", "exp") == "exp":  # decay over the budget, as the base input does over its steps
        base_steps = max(1, int(base["training"].get("numb_steps", steps)))
        learning_rate["decay_steps"] = max(1, round(learning_rate.get("decay_steps", 100) * steps / base_steps))
    if schedule == "warmup_cosine":
        config["learning_rate"] = warmup_cosine(learning_rate.get("start_lr", 1e-3) * lr_scale, int(steps))
    elif schedule != "input":
        raise ValueError(f"unknown schedule {schedule!r}: expected 'input' or 'warmup_cosine'")
    elif lr_scale != 1.0:
        for key in ("start_lr", "stop_lr"):
            if key in learning_rate:
                learning_rate[key] = learning_rate[key] * lr_scale
    return config


def command(args: List[str], cwd: Path, log: Path) -> float:
    """Run a deeph_tf command in ``cwd`` (log to ``log``); wall seconds."""
    start = time.perf_counter()
    with open(log, "a") as handle:
        result = subprocess.run(args, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, env=_env())
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed in {cwd} (see {log})")
    return time.perf_counter() - start


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("CUDA_VISIBLE_DEVICES", "")
    return env


def scores(summary_path: Path) -> dict:
    """The headline numbers of a dtest summary (meV)."""
    summary = json.loads(summary_path.read_text())
    blocks, physics = summary["blocks"], summary.get("physics", {})
    return {"h_mae_meV": blocks["mae_raw_meV"], "h_mae_gauge_meV": blocks.get("mae_gauge_meV"), **physics}


def score(model: Path, data: Path, split: Path, folder: Path, band_window: float, subset: str = "test") -> dict:
    """``dtest`` of ``model`` on one subset of ``split`` (cached in ``folder/SUBSET.summary.json``)."""
    prefix = folder / subset
    summary = Path(f"{prefix}.summary.json")
    if not summary.is_file():
        command([sys.executable, "-m", "deeph_tf.cli.dtest", "-m", str(model), "-s", str(data), "--split", str(split),
                 "--subset", subset, "--band-window", str(band_window), "-d", str(prefix)], folder, folder / "dtest.log")
    return scores(summary)


def validation_scores(model: Path, data: Path, split: Path, folder: Path, band_window: float) -> dict:
    """The validation subset's headline numbers, keys prefixed ``validate_`` (to choose a recipe
    without looking at the test split)."""
    return {f"validate_{key}": value for key, value in score(model, data, split, folder, band_window, "validate").items()}


def one_run(mode: str, steps: int, base: dict, base_dir: Path, work: Path, pretrained: Optional[Path],
            band_window: float, data: Path, lr_scale: float = 1.0, bias: str = "change-by-statistic",
            schedule: str = "input") -> dict:
    name = f"{mode}-{steps}" if lr_scale == 1.0 else f"{mode}-{steps}-lr{lr_scale:g}"
    name += "-cos" if schedule == "warmup_cosine" else ""
    keep = mode == "finetune" and bias == "keep"
    folder = work / (name + "-keep" if keep else name)
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / "run.json"
    split = work / f"graphs-{mode}" / "split.json"
    if done.is_file():
        row = json.loads(done.read_text())
        if "validate_h_mae_meV" not in row:  # a run of an older version of this script
            row.update(validation_scores(folder / "model.ckpt", data, split, folder, band_window))
            done.write_text(json.dumps(row, indent=1))
        return row
    config = run_input(base, base_dir, steps, work / f"graphs-{mode}", lr_scale, schedule)
    if mode == "finetune":
        config["training"]["finetune_bias"] = bias
    (folder / "input.json").write_text(json.dumps(config, indent=1))
    args = [sys.executable, "-m", "deeph_tf.cli.dtrain", "input.json"]
    if mode == "finetune":
        args += ["--finetune", str(pretrained)]
    seconds = command(args, folder, folder / "dtrain.log")
    row = {"mode": mode, "steps": steps, "lr_scale": lr_scale, "schedule": schedule, "train_seconds": seconds,
           **({"finetune_bias": bias} if mode == "finetune" else {}),
           **score(folder / "model.ckpt", data, split, folder, band_window),
           **validation_scores(folder / "model.ckpt", data, split, folder, band_window)}
    done.write_text(json.dumps(row, indent=1))
    return row


def physics_error(row: dict) -> float:
    """Band MAE (crystals) or orbital-energy MAE (molecules), meV; NaN if neither was scored."""
    return row.get("band_mae_meV", row.get("orbital_energy_mae_meV", math.nan))


def plot(rows: List[dict], one_shot: dict, path: Path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.4))
    FigureCanvasAgg(figure)
    axis = figure.add_subplot(1, 1, 1)
    for mode, style in (("scratch", "o-"), ("finetune", "s-")):
        points = sorted((r["steps"], r["h_mae_meV"]) for r in rows if r["mode"] == mode)
        if points:
            axis.plot(*zip(*points), style, label="from scratch" if mode == "scratch" else "fine-tuned from universal")
    axis.axhline(one_shot["h_mae_meV"], color="gray", linestyle="--", label="universal, one-shot")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("training steps (budget)")
    axis.set_ylabel("Hamiltonian MAE on the test split (meV)")
    axis.set_title(title)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    figure.savefig(tmp, dpi=120)
    os.replace(tmp, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pretrained", type=Path, required=True, help="the universal model (frozen or checkpoint)")
    parser.add_argument("--input", type=Path, required=True, help="the target's training input (its data and split)")
    parser.add_argument("--budgets", type=int, nargs="+", default=[16, 48, 160, 360, 1000, 3600])
    parser.add_argument("--modes", nargs="+", default=["scratch", "finetune"], choices=["scratch", "finetune"])
    parser.add_argument("--band-window", type=float, default=2.0, help="eV around E_F for band errors")
    parser.add_argument("--finetune-lr-scale", type=float, default=1.0,
                        help="fine-tuned runs use the input's start_lr and stop_lr times this (DeepH-pack's universal "
                             "fine-tuning TOML: 3e-4, about 0.3x its from-scratch 1e-3); 1: the same schedule as scratch")
    parser.add_argument("--finetune-bias", choices=["change-by-statistic", "keep"], default="change-by-statistic",
                        help="training.finetune_bias of the fine-tuned runs (keep: folders finetune-B[-lrS]-keep)")
    parser.add_argument("--finetune-schedule", choices=["input", "warmup_cosine"], default="input",
                        help="learning-rate schedule of the fine-tuned runs: the input's (exp: decay stretched over "
                             "the budget) or DeepH-pack's universal fine-tuning warmup_cosine (5%% warmup from 0.1x, "
                             "cosine to 1e-3x; folders ...-cos)")
    parser.add_argument("--scratch-schedule", choices=["input", "warmup_cosine"], default="input",
                        help="the same for the from-scratch runs")
    parser.add_argument("--work", type=Path, default=None, help="run folders (default benchmarks/work/NAME)")
    parser.add_argument("--name", default="finetune_curve", help="results/NAME.json and NAME.png")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    base_dir = args.input.resolve().parent
    base = json.loads(args.input.read_text())
    work = (args.work or REPO / "benchmarks" / "work" / args.name).resolve()
    work.mkdir(parents=True, exist_ok=True)
    systems = base["training"]["training_data"]["systems"]
    data = (base_dir / (systems if isinstance(systems, str) else systems[0])).resolve()
    n_train = base["training"]["dataset"].get("split", {}).get("train")
    batch = base["training"]["training_data"].get("batch_size", 1)
    rows = []
    for steps in args.budgets:
        for mode in args.modes:
            logger.info("%s, %d steps ...", mode, steps)
            scale = args.finetune_lr_scale if mode == "finetune" else 1.0
            schedule = args.finetune_schedule if mode == "finetune" else args.scratch_schedule
            row = one_run(mode, steps, base, base_dir, work, args.pretrained.resolve(), args.band_window, data, scale,
                          args.finetune_bias, schedule)
            if isinstance(n_train, int) and isinstance(batch, int):
                row["epochs"] = steps * batch / n_train
            logger.info("%s %5d steps: H MAE %.3f meV (%.0f s)", mode, steps, row["h_mae_meV"], row["train_seconds"])
            rows.append(row)
    one_shot_dir = work / "one_shot"
    one_shot_dir.mkdir(exist_ok=True)
    split = work / f"graphs-{args.modes[0]}" / "split.json"
    one_shot = score(args.pretrained.resolve(), data, split, one_shot_dir, args.band_window)
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "fine-tuning vs from scratch at equal step budgets", "pretrained": str(args.pretrained),
              "input": str(args.input), "finetune_lr_scale": args.finetune_lr_scale,
              "finetune_bias": args.finetune_bias, "finetune_schedule": args.finetune_schedule,
              "scratch_schedule": args.scratch_schedule, "one_shot": one_shot, "runs": rows,
              "machine": {"cores": os.cpu_count(), "load_average": list(os.getloadavg())}}
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=1) + "\n")
    plot(rows, one_shot, RESULTS / f"{args.name}.png", f"{args.input.parent.name}: fine-tuning vs from scratch")
    print(f"one-shot: H MAE {one_shot['h_mae_meV']:.3f} meV, bands / orbital energies {physics_error(one_shot):.2f} meV")
    print(f"{'steps':>6} {'epochs':>7} {'scratch H':>10} {'finetune H':>11} {'scratch eig':>12} {'finetune eig':>13}"
          f" {'scratch val H':>14} {'finetune val H':>15}")
    for steps in args.budgets:
        by_mode = {r["mode"]: r for r in rows if r["steps"] == steps}
        s, f = by_mode.get("scratch", {}), by_mode.get("finetune", {})
        epochs = (s or f).get("epochs", math.nan)
        print(f"{steps:>6} {epochs:>7.1f} {s.get('h_mae_meV', math.nan):>10.3f} {f.get('h_mae_meV', math.nan):>11.3f} "
              f"{physics_error(s):>12.2f} {physics_error(f):>13.2f} {s.get('validate_h_mae_meV', math.nan):>14.3f} "
              f"{f.get('validate_h_mae_meV', math.nan):>15.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
