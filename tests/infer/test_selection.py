"""deeph_tf.infer.selection: one split-file matching rule for block models and force fields."""
from __future__ import annotations

import json
import logging

import pytest

from deeph_tf.infer.selection import select_by_split, select_structures
from conftest import REPO_ROOT

MOLECULES = REPO_ROOT / "tests" / "fixtures" / "mixed_molecules"
ITEMS = [("batch_0/water-000001", "a"), ("batch_0/water-000002", "b"), ("batch_1/water-000003", "c"),
         ("methane-000004", "d")]


@pytest.fixture(scope="session", autouse=True)
def quiet_capped_tensorflow():
    """Overrides tests/conftest.py's fixture of the same name: these tests never import TensorFlow."""
    yield


def _split(tmp_path, **subsets):
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"train": [], "validate": [], "test": [], **subsets}))
    return path


def test_without_a_split_every_item_then_the_first_n():
    assert select_by_split(ITEMS) == ITEMS
    assert select_by_split(ITEMS, numb_test=2) == ITEMS[:2]
    assert select_by_split(ITEMS, numb_test=0) == ITEMS and select_by_split(ITEMS, numb_test=-1) == ITEMS


def test_ids_match_whole_by_folder_name_or_with_a_dft_prefix(tmp_path):
    split = _split(tmp_path, test=["batch_0/water-000002", "water-000003", "dft/methane-000004"],
                   validate=["dft/batch_0/water-000001"])
    assert [item for _, item in select_by_split(ITEMS, split, "test")] == ["b", "c", "d"]  # input order kept
    assert [item for _, item in select_by_split(ITEMS, split, "validate")] == ["a"]
    assert [item for _, item in select_by_split(ITEMS, split, "test", numb_test=2)] == ["b", "c"]


def test_a_wrong_subset_or_no_match_is_an_error_naming_the_ids(tmp_path):
    split = _split(tmp_path, test=["water-999999", "ethane-000001"])
    with pytest.raises(ValueError, match=r"no subset 'holdout' \(has \['test', 'train', 'validate'\]\)"):
        select_by_split(ITEMS, split, "holdout")
    with pytest.raises(ValueError, match=r"none of the 2 'test' structures \('ethane-000001', 'water-999999'\) "
                                         r"is in the inputs"):
        select_by_split(ITEMS, split, "test")
    with pytest.raises(FileNotFoundError):
        select_by_split(ITEMS, tmp_path / "missing.json", "test")


def test_ids_not_found_are_logged_by_name(tmp_path, caplog):
    split = _split(tmp_path, test=["methane-000004", "water-999999"])
    with caplog.at_level(logging.WARNING, logger="deeph_tf.infer.selection"):
        assert select_by_split(ITEMS, split, "test", where="in DATA") == [ITEMS[3]]
    assert "1 of the 'test' structures are not in DATA: 'water-999999'" in caplog.text


def test_structure_folders_under_an_inputs_folder(tmp_path):
    split = _split(tmp_path, test=["methane-000000", "dft/ammonia-000001"])
    chosen = select_structures(MOLECULES, 0, split, "test")
    assert [sid for sid, _ in chosen] == ["ammonia-000001", "methane-000000"]
    assert all(folder.name == sid and (folder / "POSCAR").is_file() for sid, folder in chosen)
    with pytest.raises(ValueError, match=f"is under {MOLECULES}"):
        select_structures(MOLECULES, 0, _split(tmp_path, test=["nothing"]), "test")
