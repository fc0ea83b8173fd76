"""The training report: record I/O, the per-epoch table against lcurve.out, targets, figures, dreport.

No TensorFlow: this module overrides the suite's autouse TensorFlow fixture.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deeph_tf.train import report as report_module
from deeph_tf.train.report import figures as report_figures
from deeph_tf.train.report import markdown as report_markdown
from deeph_tf.artifacts.checkpoint import Checkpoint, CheckpointManager
from deeph_tf.train.lcurve import LcurveWriter, read_lcurve
from deeph_tf.train.report import (
    RECORD_FORMAT,
    RECORD_NAME,
    REPORT_NAME,
    ReportError,
    epoch_rows,
    read_training_record,
    write_report,
    write_training_record,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
METRICS = ("loss", "rmse_e", "rmse_f")


@pytest.fixture(scope="session", autouse=True)
def quiet_capped_tensorflow():
    """Overrides tests/conftest.py's fixture of the same name: these tests never import TensorFlow."""
    yield


def metric_values(step: int) -> tuple:
    """(validation, training) values with many digits, so the %.2e rounding matters."""
    val = {"loss": 3.14159 / (step + 1), "rmse_e": 0.0123456 * math.exp(-step / 300), "rmse_f": 0.987654 / (1 + step / 7)}
    trn = {"loss": 2.71828 / (step + 1), "rmse_e": 0.0111111 * math.exp(-step / 250), "rmse_f": 0.876543 / (1 + step / 9)}
    if step == 75:
        val["rmse_e"] = math.nan  # a metric that was not computed at one step
    return val, trn


def lr_at(step: int) -> float:
    return 1e-3 * 0.93 ** (step // 50)


def write_lcurve(path: Path, steps) -> dict:
    """lcurve.out through LcurveWriter; returns step -> {column: exact value written}."""
    exact = {}
    with LcurveWriter(path, list(METRICS)) as writer:
        for step in steps:
            val, trn = metric_values(step)
            writer.write(step, val, trn, lr=lr_at(step))
            row = {f"{m}_val": val[m] for m in METRICS}
            row.update({f"{m}_trn": trn[m] for m in METRICS})
            row["lr"] = lr_at(step)
            exact[step] = row
    return exact


def make_record(epoch_steps, steps_per_epoch=30.0, **changes) -> dict:
    epochs = [{"epoch": k + 1, "step": step, "seconds": 10.0 + 0.1 * k, "elapsed": (k + 1) * 10.0,
               "peak_rss_mib": 2000.0 + k, "peak_device_mib": None} for k, step in enumerate(epoch_steps)]
    record = {
        "format": RECORD_FORMAT,
        "version": "0.1.0",
        "target": "energy_force",
        "config": {
            "model": {"preset": "light", "precision": "float32", "cutoff": 6.0, "target": "energy_force"},
            "loss": {"type": "ener", "start_pref_e": 0.02, "limit_pref_e": 1.0, "start_pref_f": 1000, "limit_pref_f": 1.0},
            "learning_rate": {"type": "exp", "start_lr": 1e-3, "stop_lr": 1e-6, "decay_steps": 50},
            "optimizer": {"type": "adam"},
            "training": {"training_data": {"systems": "dft", "batch_size": 8},
                         "validation_data": {"systems": ["val_a", "val_b"]}, "numb_steps": 600, "seed": 1},
        },
        "lcurve": "lcurve.out",
        "dataset": {"train": {"structures": 240, "atoms": 720}, "validate": {"structures": 20, "atoms": 60},
                    "test": {"structures": 40, "atoms": 120}},
        "parameters": 251234,
        "steps_per_epoch": steps_per_epoch,
        "epochs": epochs,
        "last_step": epoch_steps[-1] if epoch_steps else 0,
        "seconds": 250.1,
        "peak_rss_mib": 2100.0,
        "peak_device_mib": None,
        "final": {"subset": "validate", "structures": 20,
                  "metrics": {"rmse_e": 0.0021, "mae_e": 0.0015, "rmse_f": 0.05, "mae_f": 0.03},
                  "units": {"rmse_e": "eV/atom", "mae_e": "eV/atom", "rmse_f": "eV/A", "mae_f": "eV/A"}},
        "targets": {"rmse_f": 0.1, "mae_e": 0.001, "rmse_v": 0.5},
        "parity": "parity.npz",
        "comparisons": [{"name": "student vs teacher", "subset": "validate", "structures": 20,
                         "metrics": {"rmse_f": 0.02}, "units": {"rmse_f": "eV/A"}}],
    }
    record.update(changes)
    return record


def write_parity(path: Path, rng) -> None:
    energy = rng.normal(size=20)
    force = rng.normal(size=(20, 3, 3))
    np.savez(path, energy_per_atom_reference=energy, energy_per_atom_predicted=energy + 0.01 * rng.normal(size=20),
             energy_per_atom_unit=np.array("eV/atom"),
             force_reference=force, force_predicted=force + 0.05 * rng.normal(size=force.shape))


@pytest.fixture
def run_folder(tmp_path, rng):
    """A finished run: lcurve.out every 25 steps to 600, 20 epochs of 30 steps, parity.npz, the record."""
    exact = write_lcurve(tmp_path / "lcurve.out", range(0, 601, 25))
    write_parity(tmp_path / "parity.npz", rng)
    record = make_record(list(range(30, 601, 30)))
    write_training_record(tmp_path, record)
    return tmp_path, record, exact


def section(markdown: str, title: str) -> str:
    """The text of one '## ' section."""
    start = markdown.index(f"## {title}\n")
    end = markdown.find("\n## ", start + 1)
    return markdown[start: end if end >= 0 else len(markdown)]


def parse_table(text: str) -> tuple:
    """(columns, rows) of the first markdown table in ``text``."""
    lines = []
    for line in text.splitlines():
        if line.startswith("|"):
            lines.append(line)
        elif lines:
            break
    split = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]
    return split[0], split[2:]


def lcurve_text_rows(path: Path) -> tuple:
    """(columns, {step: {column: token as written}}) straight from the text of lcurve.out."""
    lines = path.read_text().splitlines()
    columns = lines[0].lstrip("#").split()
    rows = {}
    for line in lines[1:]:
        tokens = line.split()
        rows[int(tokens[0])] = dict(zip(columns, tokens))
    return columns, rows


def expected_lcurve_step(epoch_step: int, lcurve_steps) -> int:
    return max(s for s in lcurve_steps if s <= epoch_step)


# --------------------------------------------------------------------------- the record


def test_record_round_trip_and_missing_keys(tmp_path):
    record = make_record([30, 60], parameters=np.int64(12))
    path = write_training_record(tmp_path, record)
    assert path == tmp_path / RECORD_NAME
    loaded = read_training_record(tmp_path)
    assert loaded["parameters"] == 12 and loaded["epochs"][1]["step"] == 60
    assert read_training_record(path) == loaded
    assert not list(tmp_path.glob(".*.tmp"))

    bad = dict(record)
    del bad["last_step"]
    (tmp_path / RECORD_NAME).write_text(json.dumps(bad, default=int))
    with pytest.raises(ReportError, match=r"training_record\.json: missing key\(s\) 'last_step'"):
        read_training_record(tmp_path)
    with pytest.raises(ReportError, match="'last_step'"):
        write_training_record(tmp_path / "other", bad)
    assert not (tmp_path / "other" / RECORD_NAME).exists()

    bad = make_record([30])
    del bad["epochs"][0]["seconds"]
    with pytest.raises(ReportError, match=r"epochs\[0\] lacks 'seconds'"):
        write_training_record(tmp_path, bad)
    bad = make_record([30])
    del bad["final"]["units"]
    with pytest.raises(ReportError, match="'final' lacks 'units'"):
        write_training_record(tmp_path, bad)
    bad = make_record([30])
    bad["epochs"][0]["step"] = None
    with pytest.raises(ReportError, match=r"epochs\[0\]\.step must be a number"):
        write_training_record(tmp_path, bad)
    with pytest.raises(ReportError, match="format"):
        write_training_record(tmp_path, make_record([30], format="something/2"))
    with pytest.raises(ReportError, match=r"nowhere.*no such training record"):
        read_training_record(tmp_path / "nowhere")


# --------------------------------------------------------------------------- the per-epoch table


def test_epoch_table_matches_lcurve_exactly(run_folder):
    folder, record, exact = run_folder
    output = write_report(folder)
    assert output == folder / REPORT_NAME
    markdown = output.read_text()
    columns, rows = parse_table(section(markdown, "Per-epoch table"))
    lcurve_columns, lcurve_rows = lcurve_text_rows(folder / "lcurve.out")
    metric_columns = [c for c in lcurve_columns if c not in ("step", "lr")]
    assert metric_columns == ["loss_val", "loss_trn", "rmse_e_val", "rmse_e_trn", "rmse_f_val", "rmse_f_trn"]
    assert columns == ["epoch", "step", "lcurve step", *metric_columns, "lr", "seconds", "peak RSS (MiB)"]
    assert len(rows) == len(record["epochs"]) == 20
    data = np.genfromtxt(folder / "lcurve.out", names=True)
    for row, entry in zip(rows, record["epochs"]):
        cells = dict(zip(columns, row))
        assert int(cells["epoch"]) == entry["epoch"] and int(cells["step"]) == entry["step"]
        lstep = int(cells["lcurve step"])
        assert lstep == expected_lcurve_step(entry["step"], lcurve_rows)
        index = int(np.flatnonzero(data["step"] == lstep)[0])
        for column in metric_columns + ["lr"]:
            assert cells[column] == lcurve_rows[lstep][column], (entry, column)  # as formatted
            value, written = float(cells[column]), exact[lstep][column]
            parsed = float(data[column][index])
            if math.isnan(written):
                assert math.isnan(value) and math.isnan(parsed)
                continue
            assert value == parsed  # as genfromtxt parses lcurve.out
            rel = 5e-3 if column != "lr" else 5e-2  # half a unit of the last printed digit
            assert value == pytest.approx(written, rel=rel)
        assert float(cells["seconds"]) == pytest.approx(entry["seconds"])
        assert float(cells["peak RSS (MiB)"]) == pytest.approx(entry["peak_rss_mib"])
    # the nan entry (rmse_e_val at step 75) shows up as lcurve.out writes it
    assert any(dict(zip(columns, r))["lcurve step"] == "75" and dict(zip(columns, r))["rmse_e_val"] == "nan" for r in rows)


def test_epoch_selection_rule(tmp_path):
    write_lcurve(tmp_path / "lcurve.out", [0, 25, 50, 75, 100])
    table = read_lcurve(tmp_path / "lcurve.out")
    record = make_record([10, 20, 24, 25, 49, 50, 51, 130], steps_per_epoch=10.0)
    result = epoch_rows(record, table)
    by_column = [dict(zip(result.columns, row)) for row in result.rows]
    assert [r["lcurve step"] for r in by_column] == ["0", "0", "0", "25", "25", "50", "50", "100"]
    assert [r["step"] for r in by_column] == ["10", "20", "24", "25", "49", "50", "51", "130"]
    assert any("largest step <=" in note for note in result.notes)

    # an lcurve.out starting after an epoch's end (a restarted run): empty lcurve cells
    write_lcurve(tmp_path / "late.out", [100, 200])
    result = epoch_rows(make_record([50, 150]), read_lcurve(tmp_path / "late.out"))
    first, second = (dict(zip(result.columns, row)) for row in result.rows)
    assert first["lcurve step"] == "" and first["loss_val"] == "" and first["seconds"] != ""
    assert second["lcurve step"] == "100"


def test_more_than_50_epochs_are_subsampled(tmp_path):
    write_lcurve(tmp_path / "lcurve.out", range(0, 1201, 10))
    record = make_record(list(range(10, 1201, 10)), steps_per_epoch=10.0)  # 120 epochs
    write_training_record(tmp_path, record)
    markdown = write_report(tmp_path, plots=False).read_text()
    text = section(markdown, "Per-epoch table")
    assert "Showing 50 of 120 epochs" in text
    columns, rows = parse_table(text)
    epochs = [int(dict(zip(columns, r))["epoch"]) for r in rows]
    assert len(epochs) == 50 and len(set(epochs)) == 50
    assert epochs[0] == 1 and epochs[-1] == 120 and epochs == sorted(epochs)
    gaps = np.diff(epochs)
    assert gaps.min() >= 2 and gaps.max() <= 3  # evenly spaced

    few = epoch_rows(make_record([10, 20]), read_lcurve(tmp_path / "lcurve.out"))
    assert len(few.rows) == 2 and not any(note.startswith("Showing") for note in few.notes)


# --------------------------------------------------------------------------- the other sections


def test_sections_targets_and_figures(run_folder):
    folder, record, _ = run_folder
    markdown = write_report(folder).read_text()
    for title in ("Configuration", "Data", "Model", "Training", "Per-epoch table", "Final metrics vs targets", "Figures"):
        assert f"## {title}\n" in markdown
    assert markdown.startswith("# Training report: energy_force\n")
    assert "deeph_tf 0.1.0" in markdown

    config = section(markdown, "Configuration")
    for text in ("light", "float32", "ener", "start_pref_f 1000", "limit_pref_e 1", "exp (start_lr 0.001, stop_lr 1e-06",
                 "adam", "| batch size | 8 |", "| numb_steps | 600 |", "| seed | 1 |", "val_a, val_b"):
        assert text in config, text
    _, data_rows = parse_table(section(markdown, "Data"))
    assert data_rows == [["train", "240", "720"], ["validate", "20", "60"], ["test", "40", "120"]]
    assert "251,234" in section(markdown, "Model")
    training = section(markdown, "Training")
    assert "250.1 s (0:04:10)" in training and "2100.0 MiB" in training and "not measured" in training
    assert "10.95 / 10.00 / 11.90 s over 20 full epoch(s)" in training

    final = section(markdown, "Final metrics vs targets")
    _, metric_rows = parse_table(final)
    assert ["`rmse_f`", "0.05", "eV/A"] in metric_rows and ["`mae_e`", "0.0015", "eV/atom"] in metric_rows
    targets = final[final.index("Targets"):]
    _, target_rows = parse_table(targets)
    status = {row[0]: row for row in target_rows}
    assert status["`rmse_f`"][1:] == ["0.05", "0.1", "eV/A", "met"]
    assert status["`mae_e`"][1:] == ["0.0015", "0.001", "eV/atom", "NOT met"]
    assert status["`rmse_v`"][-1].startswith("not computed (available: `rmse_e`, `mae_e`, `rmse_f`, `mae_f`")
    assert "1 of 3 target(s) met" in final
    assert "### student vs teacher" in final and "| `rmse_f` | 0.02 | eV/A |" in final

    figures = section(markdown, "Figures")
    for name in ("report_lcurve.png", "report_parity_energy_per_atom.png", "report_parity_force.png"):
        assert f"]({name})" in figures
        assert (folder / name).read_bytes()[:8] == PNG_SIGNATURE
    assert not list(folder.glob(".*.tmp"))


def test_partial_last_epoch_left_out_of_timing(tmp_path):
    write_lcurve(tmp_path / "lcurve.out", [0, 30, 60])
    record = make_record([30, 60, 65], steps_per_epoch=30.0)
    record["epochs"][-1]["seconds"] = 1.0
    markdown = write_report(tmp_path, record=record, plots=False).read_text()
    assert "over 2 full epoch(s) (the last, partial epoch left out)" in section(markdown, "Training")
    assert "not drawn" in section(markdown, "Figures")
    assert not (tmp_path / "report_lcurve.png").exists()


def test_no_final_metrics_and_no_targets(tmp_path):
    write_lcurve(tmp_path / "lcurve.out", [0, 30])
    record = make_record([30], final=None, targets={"rmse_f": 0.1}, parity=None, comparisons=[])
    final = section(write_report(tmp_path, record=record).read_text(), "Final metrics vs targets")
    assert "No final evaluation" in final
    assert "not computed (available: none)" in final
    record = make_record([30], targets={}, parity=None)
    final = section(write_report(tmp_path, record=record, plots=False).read_text(), "Final metrics vs targets")
    assert "No targets were set" in final


def test_plot_failure_still_writes_the_report(run_folder, monkeypatch):
    folder, _, _ = run_folder

    def broken(*args, **kwargs):
        raise RuntimeError("no renderer today")

    monkeypatch.setattr(report_figures, "plot_lcurve", broken)
    monkeypatch.setattr(report_figures, "plot_parity", broken)
    markdown = write_report(folder).read_text()
    figures = section(markdown, "Figures")
    assert "learning-curve figure could not be drawn: no renderer today" in figures
    assert "force parity figure could not be drawn" in figures
    assert "## Per-epoch table" in markdown and markdown.endswith("\n")
    assert not list(folder.glob(".*.tmp")) and not list(folder.glob("report_*.png"))


def test_report_is_written_atomically(run_folder, monkeypatch):
    folder, _, _ = run_folder
    (folder / REPORT_NAME).write_text("the previous report\n")

    def broken(*args, **kwargs):
        raise RuntimeError("interrupted while building the report")

    monkeypatch.setattr(report_markdown, "metrics_section", broken)
    with pytest.raises(RuntimeError, match="interrupted"):
        write_report(folder)
    assert (folder / REPORT_NAME).read_text() == "the previous report\n"
    assert not list(folder.glob(".*.tmp"))

    monkeypatch.setattr(report_markdown, "atomic_write_text", broken)
    (folder / REPORT_NAME).unlink()
    with pytest.raises(RuntimeError):
        write_report(folder, plots=False)
    assert not (folder / REPORT_NAME).exists()


def test_output_elsewhere_and_missing_lcurve(run_folder, tmp_path_factory):
    folder, record, _ = run_folder
    elsewhere = tmp_path_factory.mktemp("out") / "sub" / "my_report.md"
    path = write_report(folder, output=elsewhere)
    assert path == elsewhere and path.is_file()
    assert (elsewhere.parent / "report_lcurve.png").is_file()
    (folder / "lcurve.out").unlink()
    markdown = write_report(folder, plots=True).read_text()
    assert "lcurve.out could not be read" in markdown and "not found" in markdown


# --------------------------------------------------------------------------- dreport


def run_dreport(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "deeph_tf.cli.dreport", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_dreport_cli(run_folder, tmp_path_factory):
    folder, _, _ = run_folder
    result = run_dreport(folder, "-v", "WARNING")
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == folder / REPORT_NAME
    assert "## Per-epoch table" in (folder / REPORT_NAME).read_text()
    assert (folder / "report_parity_force.png").is_file()

    other = tmp_path_factory.mktemp("elsewhere") / "r.md"
    result = run_dreport(folder, "-o", other, "--no-plots")
    assert result.returncode == 0, result.stderr and other.is_file()

    empty = tmp_path_factory.mktemp("empty")
    result = run_dreport(empty)
    assert result.returncode == 2  # bad input (deeph_tf.cli exit codes)
    assert "no training_record.json" in result.stderr
    assert "dtrain writes it at the end of a run" in result.stderr and "--partial" in result.stderr
    assert not (empty / REPORT_NAME).exists()

    result = run_dreport(empty, "--partial")
    assert result.returncode == 2 and "no checkpoint found" in result.stderr


def test_dreport_partial_from_checkpoint(tmp_path):
    steps = list(range(0, 401, 50))
    write_lcurve(tmp_path / "lcurve.out", steps)
    config = make_record([30])["config"]
    config["training"]["disp_file"] = "lcurve.out"
    manager = CheckpointManager(tmp_path / "model.ckpt")
    for step in (200, 400):
        manager.save(Checkpoint(step=step, model_config={"target": "energy_force"}, layout={},
                                model_weights=[np.zeros((3, 4), np.float32), np.ones(4, np.float32)], input=config))
    result = run_dreport(tmp_path, "--partial", "--no-plots")
    assert result.returncode == 0, result.stderr
    markdown = (tmp_path / REPORT_NAME).read_text()
    assert "**Partial report**" in markdown and "model.ckpt-400.h5" in markdown and "(step 400)" in markdown
    assert "| model preset | light |" in markdown
    assert "No final evaluation" in markdown
    text = section(markdown, "Per-epoch table")
    assert "No per-epoch timing" in text
    columns, rows = parse_table(text)
    _, lcurve_rows = lcurve_text_rows(tmp_path / "lcurve.out")
    assert [int(dict(zip(columns, r))["lcurve step"]) for r in rows] == steps
    for row in rows:
        cells = dict(zip(columns, row))
        assert cells["epoch"] == "" and cells["seconds"] == "" and cells["peak RSS (MiB)"] == ""
        for column in ("loss_val", "rmse_f_trn", "lr"):
            assert cells[column] == lcurve_rows[int(cells["step"])][column]
    assert not (tmp_path / RECORD_NAME).exists()

    # with plots, in-process
    path = report_module.report_from_folder(tmp_path, partial=True)
    assert (tmp_path / "report_lcurve.png").read_bytes()[:8] == PNG_SIGNATURE and path.is_file()


def test_no_tensorflow_import():
    code = ("import sys, deeph_tf.train.report, deeph_tf.cli.dreport; "
            "deeph_tf.cli.dreport.build_parser().parse_args(['.']); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
