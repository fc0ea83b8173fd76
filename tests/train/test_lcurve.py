"""lcurve.out: DeePMD's format, genfromtxt-readable, restart truncation, the PNG plot."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from deeph_tf.train.lcurve import LcurveWriter, plot_lcurve, read_lcurve

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_rows(path, steps, mode="w", restart_step=None, names=("loss", "mae")):
    with LcurveWriter(path, list(names), mode=mode, restart_step=restart_step) as w:
        for step in steps:
            w.write(step, {"loss": 1.5 / (step + 1), "mae": 2.5 / (step + 1)},  # validation
                    {"loss": 1.0 / (step + 1), "mae": 2.0 / (step + 1)}, lr=1e-3 * 0.9 ** (step // 100))


def test_format_is_deepmds(tmp_path):
    path = tmp_path / "lcurve.out"
    write_rows(path, [0, 1000])
    lines = path.read_text().splitlines()
    columns = "   %11s %11s" % ("loss_val", "loss_trn") + "   %11s %11s" % ("mae_val", "mae_trn")
    assert lines[0] == "#  step" + columns + "         lr"
    assert lines[0].startswith("#  step      loss_val    loss_trn")
    assert lines[1] == "      0" + "      1.50e+00    1.00e+00" + "      2.50e+00    2.00e+00" + "    1.0e-03"
    assert lines[2] == "   1000" + "      1.50e-03    9.99e-04" + "      2.50e-03    2.00e-03" + "    3.5e-04"
    assert len(lines) == 3


def test_genfromtxt_reads_names_and_values(tmp_path):
    path = tmp_path / "lcurve.out"
    write_rows(path, [0, 100, 200])
    data = np.genfromtxt(path, names=True)
    assert data.dtype.names == ("step", "loss_val", "loss_trn", "mae_val", "mae_trn", "lr")
    np.testing.assert_array_equal(data["step"], [0, 100, 200])
    np.testing.assert_allclose(data["loss_trn"], [1.0, 1 / 101, 1 / 201], rtol=1e-2)  # %.2e: 3 digits
    np.testing.assert_allclose(data["lr"], [1e-3, 9e-4, 8.1e-4], rtol=2e-2)
    assert read_lcurve(path).dtype.names == data.dtype.names


def test_read_single_row_and_header_only(tmp_path):
    path = tmp_path / "lcurve.out"
    write_rows(path, [0])
    assert read_lcurve(path).shape == (1,)
    write_rows(path, [])
    data = read_lcurve(path)
    assert data.shape == (0,) and data.dtype.names[0] == "step"


def test_missing_values_and_no_validation(tmp_path):
    path = tmp_path / "lcurve.out"
    with LcurveWriter(path, ["loss", "mae"]) as w:
        w.write(0, None, {"loss": 0.5}, lr=1e-3)  # no validation at this display, mae not computed
    data = read_lcurve(path)
    assert math.isnan(data["loss_val"][0]) and math.isnan(data["mae_trn"][0]) and data["loss_trn"][0] == 0.5

    path = tmp_path / "no_val.out"
    with LcurveWriter(path, ["loss"], validation=False) as w:
        w.write(0, {"loss": 9.0}, {"loss": 0.5}, lr=1e-3)
    assert path.read_text().splitlines() == ["#  step      loss_trn         lr", "      0      5.00e-01    1.0e-03"]
    assert read_lcurve(path).dtype.names == ("step", "loss_trn", "lr")


def test_each_row_is_flushed(tmp_path):
    path = tmp_path / "lcurve.out"
    w = LcurveWriter(path, ["loss"])
    w.write(0, {"loss": 2.0}, {"loss": 1.0}, 1e-3)
    assert len(path.read_text().splitlines()) == 2  # visible before close
    w.close()
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.write(1, {}, {}, 1e-3)


def test_mode_w_replaces_an_existing_file(tmp_path):
    path = tmp_path / "lcurve.out"
    write_rows(path, [0, 100, 200])
    write_rows(path, [0])
    assert read_lcurve(path)["step"].tolist() == [0]
    assert [p.name for p in tmp_path.iterdir()] == ["lcurve.out"]  # no temporary file left


def test_append_drops_rows_after_the_restart_step(tmp_path):
    path = tmp_path / "lcurve.out"
    write_rows(path, [0, 100, 200, 300])
    with path.open("a") as f:
        f.write("    400      1.0e-01")  # a killed run: incomplete last line
    write_rows(path, [300, 400], mode="a", restart_step=200)
    text = path.read_text()
    assert text.count("#") == 1  # header not repeated
    assert read_lcurve(path)["step"].tolist() == [0, 100, 200, 300, 400]
    assert [p.name for p in tmp_path.iterdir()] == ["lcurve.out"]


def test_append_keeps_rows_up_to_and_including_the_restart_step(tmp_path):
    path = tmp_path / "lcurve.out"
    write_rows(path, [0, 100, 200])
    before = path.read_text()
    with LcurveWriter(path, ["loss", "mae"], mode="a", restart_step=200):
        pass
    assert path.read_text() == before  # nothing to drop: untouched
    with LcurveWriter(path, ["loss", "mae"], mode="a"):  # no restart step: keep every complete row
        pass
    assert path.read_text() == before


def test_append_to_missing_file_starts_anew_and_rejects_other_columns(tmp_path):
    path = tmp_path / "lcurve.out"
    write_rows(path, [300], mode="a", restart_step=200)
    assert path.read_text().startswith("#  step")
    assert read_lcurve(path)["step"].tolist() == [300]
    with pytest.raises(ValueError, match="cannot append"):
        LcurveWriter(path, ["rmse"], mode="a", restart_step=300)


@pytest.mark.parametrize("names", [["a-b"], ["1x"], ["step"], ["lr"], ["x", "x"], [""]])
def test_bad_metric_names(tmp_path, names):
    with pytest.raises(ValueError):
        LcurveWriter(tmp_path / "l.out", names)
    with pytest.raises(ValueError):
        LcurveWriter(tmp_path / "l.out", ["ok"], mode="x")


def test_plot_writes_a_png(tmp_path):
    path = tmp_path / "lcurve.out"
    write_rows(path, range(0, 2001, 100))
    png = plot_lcurve(path)
    assert png == tmp_path / "lcurve.png"
    data = png.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) > 1000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (840, 540)  # 7 x 4.5 inches at 120 dpi

    other = plot_lcurve(path, tmp_path / "sub.png")
    assert other.read_bytes()[:8] == PNG_SIGNATURE


def test_plot_without_validation_and_with_one_row(tmp_path):
    path = tmp_path / "lcurve.out"
    with LcurveWriter(path, ["loss"], validation=False) as w:
        w.write(0, None, {"loss": 0.5}, 1e-3)
    assert plot_lcurve(path).read_bytes()[:8] == PNG_SIGNATURE


def test_plot_needs_neither_pyplot_nor_tensorflow(tmp_path):
    path = tmp_path / "lcurve.out"
    write_rows(path, [0, 100])
    code = (
        "import sys; from deeph_tf.train.lcurve import plot_lcurve; "
        f"plot_lcurve({str(path)!r}); "
        "assert not {'matplotlib.pyplot', 'tensorflow'} & set(sys.modules), sorted(sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    assert (tmp_path / "lcurve.png").read_bytes()[:8] == PNG_SIGNATURE
