"""deeph_tf.plotting and every figure of the package: PNGs written, the user's matplotlib backend untouched."""
from __future__ import annotations

import numpy as np
import pytest

from deeph_tf.plotting import ParityPanel, plot_parity

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session", autouse=True)
def quiet_capped_tensorflow():
    """Overrides tests/conftest.py's fixture of the same name: these tests never import TensorFlow."""
    yield


@pytest.fixture
def svg_backend():
    """The user's choice of a non-Agg backend; restored afterwards."""
    import matplotlib

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    yield "svg"
    matplotlib.use(before)


def _band_errors():
    from deeph_tf.infer.electronic import BandErrors

    k = np.linspace(0, 0.5, 5)
    energies = np.stack([np.cos(2 * np.pi * k) - 1.0, np.cos(2 * np.pi * k) + 2.0], axis=1)
    return BandErrors(name="toy", k_source="k-path", k_frac=np.column_stack([k, 0 * k, 0 * k]), distance=k,
                      tick_distance=[0.0, 0.5], tick_labels=["G", "X"], energies_ref_eV=energies,
                      energies_pred_eV=energies + 0.01, fermi_energy_eV=0.5, fermi_source="info.json", window_eV=2.0)


def _energy_results(rng):
    from deeph_tf.infer.force_field_eval import EnergyResults

    forces = [rng.normal(size=(3, 3)) for _ in range(4)]
    return EnergyResults(names=list("abcd"), natoms=[3] * 4, energy_ref=list(rng.normal(size=4)),
                         energy_pred=list(rng.normal(size=4)), forces_ref=forces,
                         forces_pred=[f + 0.1 for f in forces], virial_ref=[None] * 4, virial_pred=[None] * 4)


def _lcurve(path):
    from deeph_tf.train.lcurve import LcurveWriter

    with LcurveWriter(path, ["loss"]) as writer:
        for step in (0, 10, 20):
            writer.write(step, {"loss": 1.0 / (step + 1)}, {"loss": 2.0 / (step + 1)}, lr=1e-3)
    return path


def _figures(tmp_path, rng):
    """(name, function writing one PNG and returning its path) for every figure of the package."""
    from deeph_tf.infer.electronic import plot_bands
    from deeph_tf.infer.evaluate import plot_block_parity
    from deeph_tf.infer.force_field_eval import plot_energy_parity
    from deeph_tf.train.lcurve import plot_lcurve

    pairs = [(rng.normal(size=50), rng.normal(size=50)) for _ in range(2)]
    return [
        ("parity", lambda: plot_parity([ParityPanel("force", rng.normal(size=30), rng.normal(size=30), "eV/A")],
                                       tmp_path / "parity.png", title="t", error_histogram=True)),
        ("dtest block parity", lambda: plot_block_parity(pairs, tmp_path / "blocks.png")),
        ("dtest energy parity", lambda: plot_energy_parity(_energy_results(rng), tmp_path / "energy.png")),
        ("bands", lambda: plot_bands(_band_errors(), tmp_path / "bands.png")),
        ("learning curve", lambda: plot_lcurve(_lcurve(tmp_path / "lcurve.out"), tmp_path / "lcurve.png")),
    ]


def test_every_figure_leaves_the_backend_alone(tmp_path, rng, svg_backend):
    import matplotlib

    for name, draw in _figures(tmp_path, rng):
        png = draw()
        assert png.read_bytes()[:8] == PNG_SIGNATURE, name
        assert matplotlib.get_backend() == svg_backend, f"{name} changed the backend"
    assert not list(tmp_path.glob(".*.tmp"))


def test_parity_panels_check_their_values(tmp_path):
    with pytest.raises(ValueError, match="force: 3 reference values but 2 predicted"):
        plot_parity([ParityPanel("force", np.zeros(3), np.zeros(2))], tmp_path / "p.png")
    with pytest.raises(ValueError, match="energy: no values"):
        plot_parity([ParityPanel("energy", np.zeros(0), np.zeros(0))], tmp_path / "p.png")
    with pytest.raises(ValueError, match="no panels"):
        plot_parity([], tmp_path / "p.png")
    assert not (tmp_path / "p.png").exists()
