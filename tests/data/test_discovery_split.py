"""Structure discovery (systems, dft/ with data_dir_depth) and dataset splits."""
import json
import shutil

import pytest

from conftest import WATER
from deeph_tf.data.discovery import discover_systems, find_structure_folders
from deeph_tf.data.split import make_split, write_split


def test_dft_folder_depths(tmp_path):
    inputs = tmp_path / "inputs"
    for path in ("dft/a/b/s1", "dft/a/c/s2", "dft/d/e/s3"):
        shutil.copytree(WATER / "0", inputs / path)
    root, found = find_structure_folders(inputs, data_dir_depth=2)
    assert root == inputs / "dft" and [sid for sid, _ in found] == ["a/b/s1", "a/c/s2", "d/e/s3"]
    with pytest.raises(ValueError, match="exactly 0 level"):
        find_structure_folders(inputs, data_dir_depth=0)
    root, found = find_structure_folders(inputs, data_dir_depth=None)  # recursive
    assert len(found) == 3
    with pytest.raises(FileNotFoundError):
        find_structure_folders(tmp_path / "missing")


def test_systems_list_and_duplicate_ids(tmp_path):
    for name in ("x/s1", "y/s1"):
        shutil.copytree(WATER / "0", tmp_path / name)
    systems = discover_systems([tmp_path / "x" / "s1"])
    assert systems[0].structures[0][0] == "s1"
    with pytest.raises(ValueError, match="appears twice"):
        discover_systems([tmp_path / "x", tmp_path / "y"], data_dir_depth=None)


def test_split_by_fractions_counts_and_file(tmp_path):
    ids = [f"s{k}" for k in range(10)]
    split = make_split(ids, {"train": 0.8, "validate": 0.1, "test": 0.1, "seed": 2})
    assert [len(split[k]) for k in ("train", "validate", "test")] == [8, 1, 1]
    assert sorted(sum(split.values(), [])) == sorted(ids)
    assert make_split(ids, {"train": 0.8, "validate": 0.1, "test": 0.1, "seed": 2}) == split
    assert [len(v) for v in make_split(ids, {"train": 3, "validate": 2, "test": 0}).values()] == [3, 2, 0]
    with pytest.raises(ValueError, match="only 10"):
        make_split(ids, {"train": 9, "validate": 2, "test": 0})
    write_split(split, tmp_path / "split.json")
    assert make_split(ids, {"file": str(tmp_path / "split.json")}) == split
    (tmp_path / "bad.json").write_text(json.dumps({"train": ["s1"], "test": ["s1"]}))
    with pytest.raises(ValueError, match="both train and test"):
        make_split(ids, {"file": str(tmp_path / "bad.json")})
