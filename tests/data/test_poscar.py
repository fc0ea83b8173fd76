"""POSCAR reading (VASP 5 variants) and exact round trips."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from deeph_tf.data import DataFormatError, Poscar, read_poscar, write_poscar

from conftest import requires_shared
from conftest import SHARED_EXAMPLES as SHARED

LATTICE = np.array([[3.0, 0.0, 0.0], [0.5, 4.0, 0.0], [0.2, 0.3, 5.0]])


def write(tmp_path: Path, text: str, name: str = "POSCAR") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def test_cartesian_basic(tmp_path):
    p = read_poscar(write(tmp_path, """
        water
        1.0
          10.0 0.0 0.0
          0.0 10.0 0.0
          0.0 0.0 10.0
        O H
        1 2
        Cartesian
          1.0 2.0 3.0
          1.5 2.0 3.0
          0.5 2.0 3.0
        """))
    assert p.species == ["O", "H", "H"] and p.n_atoms == 3 and p.elements == ["O", "H"]
    assert p.comment == "water"
    np.testing.assert_array_equal(p.lattice, 10 * np.eye(3))
    np.testing.assert_array_equal(p.positions[1], [1.5, 2.0, 3.0])
    assert p.volume == pytest.approx(1000.0)


def test_direct_with_scale(tmp_path):
    p = read_poscar(write(tmp_path, """
        scaled
        2.0
          3.0 0.0 0.0
          0.5 4.0 0.0
          0.2 0.3 5.0
        Si
        2
        Direct
          0.0 0.0 0.0
          0.25 0.5 0.75
        """))
    lattice = 2 * LATTICE
    np.testing.assert_allclose(p.lattice, lattice, rtol=0, atol=1e-15)
    np.testing.assert_allclose(p.positions[1], np.array([0.25, 0.5, 0.75]) @ lattice, atol=1e-14)
    np.testing.assert_allclose(p.fractional_positions()[1], [0.25, 0.5, 0.75], atol=1e-14)


def test_scale_applies_to_cartesian(tmp_path):
    p = read_poscar(write(tmp_path, """
        c
        0.5
          4 0 0
          0 4 0
          0 0 4
        C
        1
        cart
          1 2 3
        """))
    np.testing.assert_array_equal(p.positions[0], [0.5, 1.0, 1.5])
    np.testing.assert_array_equal(p.lattice, 2 * np.eye(3))


def test_negative_scale_is_volume(tmp_path):
    p = read_poscar(write(tmp_path, """
        volume 64
        -64.0
          1 0 0
          0 2 0
          0 0 1
        H
        1
        Direct
          0.5 0.5 0.5
        """))
    assert p.volume == pytest.approx(64.0, rel=1e-14)
    f = (64.0 / 2.0) ** (1 / 3)
    np.testing.assert_allclose(p.lattice, np.diag([f, 2 * f, f]), rtol=1e-14)
    np.testing.assert_allclose(p.positions[0], [f / 2, f, f / 2], rtol=1e-14)


def test_three_scale_factors(tmp_path):
    p = read_poscar(write(tmp_path, """
        per-axis
        1.0 2.0 3.0
          1 0 0
          0 1 0
          0 0 1
        H
        1
        Cartesian
          1 1 1
        """))
    np.testing.assert_array_equal(p.lattice, np.diag([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(p.positions[0], [1.0, 2.0, 3.0])


def test_selective_dynamics_and_trailing_tokens(tmp_path):
    p = read_poscar(write(tmp_path, """
        sd
        1.0
          5 0 0
          0 5 0
          0 0 5
        Mo_pv Te
        1 2
        Selective dynamics
        direct
          0.0 0.0 0.0 T T F
          0.1 0.2 0.3 F F F ! Te1
          0.4 0.5 0.6 T F T Te
        0.0 0.0 0.0
        """))
    assert p.species == ["Mo", "Te", "Te"]
    np.testing.assert_allclose(p.positions[2], [2.0, 2.5, 3.0], atol=1e-15)


def test_kartesisch_and_lowercase_with_labels(tmp_path):
    text = """
        H2 O1
        1.0
          10.0 0.0 0.0
          0.0 10.0 0.0
          0.0 0.0 10.0
        O H
        1 2
        {mode}
           0.1076932074058884    0.2448252508904975    0.4523878459516723 O
           0.6636635912734095    0.1057065860991050   -0.4231070167796068 H
          -0.6072925569309915   -0.0593284428105624    0.1584892705832144 H
        """
    for mode in ["cartesian", "K", "Cartesian"]:
        p = read_poscar(write(tmp_path, text.format(mode=mode)))
        assert p.positions[2, 0] == -0.6072925569309915
    p = read_poscar(write(tmp_path, text.format(mode="Direct")))
    assert p.positions[2, 0] == pytest.approx(-6.072925569309915, abs=1e-14)


@pytest.mark.parametrize("positions_kind", ["cartesian", "direct"])
def test_round_trip_exact(tmp_path, rng, positions_kind):
    lattice = LATTICE * 1.2345678901234567
    frac = rng.random((5, 3))
    positions = frac @ lattice if positions_kind == "direct" else rng.normal(size=(5, 3)) * 7
    original = Poscar(lattice=lattice, species=["O", "H", "H", "O", "C"], positions=positions, comment="x")
    path = tmp_path / "POSCAR"
    write_poscar(path, original)
    back = read_poscar(path)
    assert back.species == original.species  # ungrouped species survive (written as repeated runs)
    np.testing.assert_array_equal(back.lattice, original.lattice)
    np.testing.assert_array_equal(back.positions, original.positions)
    assert back.comment == "x"
    # write -> read -> write is a fixed point
    write_poscar(tmp_path / "POSCAR2", back)
    assert (tmp_path / "POSCAR2").read_text() == path.read_text()


def test_round_trip_after_direct_and_scale(tmp_path):
    path = write(tmp_path, """
        s
        -100.0
          3.0 0.0 0.0
          0.5 4.0 0.0
          0.2 0.3 5.0
        Si C
        1 1
        Direct
          0.1 0.2 0.3
          0.7 0.8 0.9
        """)
    first = read_poscar(path)
    write_poscar(tmp_path / "out", first)
    second = read_poscar(tmp_path / "out")
    np.testing.assert_array_equal(second.lattice, first.lattice)
    np.testing.assert_array_equal(second.positions, first.positions)
    assert abs(second.volume - 100.0) < 1e-12


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "POSCAR"
    good = Poscar(lattice=np.eye(3), species=["H"], positions=[[0.0, 0.0, 0.0]])
    write_poscar(path, good)
    before = path.read_text()

    def boom(self, *args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(Path, "write_text", boom)
    with pytest.raises(OSError, match="simulated"):
        write_poscar(path, Poscar(lattice=2 * np.eye(3), species=["O"], positions=[[1.0, 1.0, 1.0]]))
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["POSCAR"]


def test_poscar_validates_shapes():
    with pytest.raises(ValueError, match="2 species for 1 positions"):
        Poscar(lattice=np.eye(3), species=["H", "H"], positions=[[0, 0, 0]])
    with pytest.raises(ValueError, match="lattice"):
        Poscar(lattice=np.eye(2), species=["H"], positions=[[0, 0, 0]])


GOOD = """comment
1.0
  5 0 0
  0 5 0
  0 0 5
O H
1 2
Cartesian
  0 0 0
  1 0 0
  0 1 0
"""


def _broken(line_no: int, replacement: str) -> str:
    lines = GOOD.splitlines()
    lines[line_no - 1] = replacement
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("text, fragments", [
    (_broken(2, "one"), ["line 2", "scale factor"]),
    (_broken(2, "0.0"), ["line 2", "scale factor is 0"]),
    (_broken(2, "1.0 2.0"), ["line 2"]),
    (_broken(4, "0 5"), ["line 4", "lattice vector a2"]),
    (_broken(4, "0 x 0"), ["line 4", "lattice vector a2"]),
    (_broken(6, "1 2"), ["line 6", "VASP 4"]),
    (_broken(6, "O 1"), ["line 6", "'1' is not an element symbol"]),
    (_broken(7, "1 two"), ["line 7", "atom counts"]),
    (_broken(7, "1"), ["line 7", "2 non-negative atom counts"]),
    (_broken(8, ""), ["line 8", "'Direct' or 'Cartesian'"]),
    (_broken(10, "1 0"), ["line 10", "coordinates of atom 2 of 3"]),
    (_broken(11, "0 nan 0"), ["line 11", "non-finite"]),
    ("\n".join(GOOD.splitlines()[:10]) + "\n", ["line 11", "file ends early", "atom 3 of 3"]),
    ("\n".join(GOOD.splitlines()[:3]) + "\n", ["line 4", "file ends early"]),
    (_broken(3, "0 0 0"), ["linearly dependent"]),
])
def test_errors_name_file_and_line(tmp_path, text, fragments):
    path = tmp_path / "POSCAR"
    path.write_text(text)
    with pytest.raises(DataFormatError) as info:
        read_poscar(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message


def test_missing_file(tmp_path):
    with pytest.raises(DataFormatError, match="POSCAR not found") as info:
        read_poscar(tmp_path / "POSCAR")
    assert str(tmp_path / "POSCAR") in str(info.value)


@requires_shared
def test_shared_rotated_copy_with_labels():
    """water_rotated/1 uses lowercase 'cartesian' and an element label after each coordinate."""
    p = read_poscar(SHARED / "water_rotated" / "1" / "POSCAR")
    assert p.species == ["O", "H", "H"]
    np.testing.assert_array_equal(p.positions[0], [0.1076932074058884, 0.2448252508904975, 0.4523878459516723])
    np.testing.assert_array_equal(p.lattice, 10 * np.eye(3))
