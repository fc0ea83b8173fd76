"""dgraph builds shards from an input file; dinspect summarizes folders and indexes."""
import json

from deeph_tf.cli import dgraph, dinspect


def test_dgraph_then_dinspect(water_dataset, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = {
        "_comment": "comments are dropped",
        "training": {
            "training_data": {"systems": str(water_dataset.parent)},
            "dataset": {"split": {"train": 0.75, "validate": 0.25, "test": 0.0}, "structures_per_shard": 4},
        },
    }
    (tmp_path / "input.json").write_text(json.dumps(config))
    assert dgraph.main(["input.json"]) == 0
    index = json.loads((tmp_path / "graphs" / "index.json").read_text())
    assert index["subsets"]["train"]["counts"]["structures"] == 9
    assert dinspect.main(["graphs"]) == 0
    out = capsys.readouterr().out
    assert "s3p2d1" in out and "structures:            12" in out

    assert dinspect.main([str(water_dataset), "--per-structure"]) == 0
    out = capsys.readouterr().out
    assert "6912 total, 6912 masked" in out and "w11" in out
    assert "(parity ignored)" in out


def test_dgraph_reports_config_errors(tmp_path, capsys):
    (tmp_path / "input.json").write_text(json.dumps({"training": {"training_data": {"systems": "x"}, "dataset": {"storgae": "disk"}}}))
    assert dgraph.main([str(tmp_path / "input.json")]) == 2
    assert "did you mean storage?" in capsys.readouterr().err


def test_dgraph_reports_bad_data(water_dataset, tmp_path, capsys):
    (water_dataset / "w04" / "overlap.h5").write_bytes(b"not hdf5")
    (tmp_path / "input.json").write_text(json.dumps({"training": {"training_data": {"systems": str(water_dataset)}}}))
    assert dgraph.main([str(tmp_path / "input.json"), "--graph-dir", str(tmp_path / "g")]) == 2  # bad input
    err = capsys.readouterr().err
    assert "w04" in err and "overlap.h5" in err
    assert not (tmp_path / "g" / "index.json").exists()
