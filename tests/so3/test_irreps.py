import pytest

from deeph_tf.so3 import Irrep, Irreps, coupled_irreps, irreps_of_block_layout


@pytest.mark.parametrize(
    "text", ["64x0e+32x1o+16x2e", "1x0e", "0e+1o", "8x3o+8x4e", "", "2x5e+1x8o+3x0o"]
)
def test_string_round_trip(text):
    irreps = Irreps(text)
    expected = "+".join(t if "x" in t else f"1x{t}" for t in text.split("+")) if text else ""
    assert str(irreps) == expected
    assert Irreps(str(irreps)) == irreps
    assert eval(repr(irreps), {"Irreps": Irreps}) == irreps


def test_dimensions_and_iteration():
    irreps = Irreps("64x0e+32x1o+16x2e")
    assert irreps.dim == 64 + 96 + 80
    assert irreps.num_irreps == 112
    assert irreps.lmax == 2
    assert [(m.mul, str(m.ir)) for m in irreps] == [(64, "0e"), (32, "1o"), (16, "2e")]
    assert [s.stop - s.start for s in irreps.slices()] == [64, 96, 80]
    assert irreps.count("1o") == 32 and irreps.count("1e") == 0
    assert irreps[1:] == Irreps("32x1o+16x2e")
    assert Irreps("2x1o") + "1x0e" == Irreps("2x1o+1x0e")
    assert Irreps("1x0e") * 3 == Irreps("1x0e+1x0e+1x0e")


def test_simplify_and_sort():
    irreps = Irreps("1x1o+2x1o+0x2e+1x0e+3x0e")
    assert irreps.simplify() == Irreps("3x1o+4x0e")
    sorted_irreps, perm, inv = Irreps("1x2e+1x0e+1x1o+1x1e").sort()
    assert sorted_irreps == Irreps("1x0e+1x1e+1x1o+1x2e")
    original = Irreps("1x2e+1x0e+1x1o+1x1e")
    assert all(sorted_irreps[perm[j]] == original[j] for j in range(len(original)))
    assert all(sorted_irreps[i] == original[inv[i]] for i in range(len(original)))


@pytest.mark.parametrize("bad", ["64x0q", "x1e", "1e+", "-1x0e", "3", "1x-1e"])
def test_parse_errors_quote_the_text(bad):
    with pytest.raises(ValueError, match="invalid irrep"):
        Irreps(bad)


def test_irrep_product_selection_rule():
    assert [str(ir) for ir in Irrep.parse("1o") * Irrep.parse("2e")] == ["1o", "2o", "3o"]
    assert Irrep.parse("3e").dim == 7
    with pytest.raises(ValueError, match="'4x'"):
        Irrep.parse("4x")


def test_orbital_block_irreps():
    assert coupled_irreps(1, 2) == Irreps("1x1o+1x2o+1x3o")
    assert coupled_irreps(1, 1) == Irreps("1x0e+1x1e+1x2e")
    # The example: s3p2d1f1 needs 15x0e+24x1e+22x2e+18x3e+8x4e+3x5e+1x6e (parity ignored).
    shells = [0, 0, 0, 1, 1, 2, 3]
    full = irreps_of_block_layout(shells, shells)
    per_l = {}
    for mul, ir in full:
        per_l[ir.l] = per_l.get(ir.l, 0) + mul
    assert per_l == {0: 15, 1: 24, 2: 22, 3: 18, 4: 8, 5: 3, 6: 1}
    assert full.dim == 21 * 21  # 3 s + 2x3 p + 5 d + 7 f = 21 orbitals
    assert Irreps.spherical_harmonics(3) == Irreps("1x0e+1x1o+1x2e+1x3o")
