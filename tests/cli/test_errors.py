"""One error handler for every command: bad input exits 2, a runtime failure 1; the error is
logged once on stderr and in the -l log file."""
from __future__ import annotations

import importlib
import json
import logging

import pytest

COMMANDS = ["dtrain", "dfreeze", "dtest", "dgraph", "dinspect", "dreport"]


def bad_input_call(command: str, folder):
    """(argv, a piece of the message) of a call with bad input for ``command``."""
    typo = folder / "typo.json"
    typo.write_text(json.dumps({"training": {"training_data": {"systems": "x"}, "numb_stesp": 3}}))
    return {
        "dtrain": ([str(typo)], "did you mean numb_steps?"),
        "dgraph": ([str(typo)], "did you mean numb_steps?"),
        "dfreeze": (["-c", str(folder / "missing.ckpt")], "missing.ckpt: no such checkpoint"),
        "dtest": (["-m", str(folder / "missing.ckpt"), "-s", str(folder)], "missing.ckpt: no such checkpoint"),
        "dinspect": ([str(folder / "no_such_dft")], "no_such_dft"),
        "dreport": ([str(folder)], "no training_record.json"),
    }[command]


def run(command: str, argv, log_path):
    module = importlib.import_module(f"deeph_tf.cli.{command}")
    try:
        return module.main([*argv, "-l", str(log_path)])
    finally:
        logging.getLogger().handlers.clear()  # close the log file before the test reads it


@pytest.mark.parametrize("command", COMMANDS)
def test_bad_input_exits_2_and_is_in_the_log_file(command, tmp_path, capsys):
    argv, message = bad_input_call(command, tmp_path)
    log_path = tmp_path / f"{command}.log"
    assert run(command, argv, log_path) == 2
    logged = log_path.read_text()
    assert message in logged and f"ERROR   {command}: " in logged
    assert capsys.readouterr().err.count(message) == 1  # on stderr once


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("error,kind", [(RuntimeError("the loss became nan"), "the loss became nan"),
                                        (KeyError("surprise"), "unexpected KeyError: 'surprise'")])
def test_runtime_failure_exits_1_with_a_debug_traceback(command, error, kind, tmp_path, monkeypatch, capsys):
    module = importlib.import_module(f"deeph_tf.cli.{command}")

    def fail(args, **options):  # e.g. dtrain's level_given
        raise error

    monkeypatch.setattr(module, "_run", fail)  # each command's work, which main hands to run_command
    log_path = tmp_path / "run.log"
    argv, _ = bad_input_call(command, tmp_path)
    assert run(command, [*argv, "-v", "DEBUG"], log_path) == 1
    logged = log_path.read_text()
    assert kind in logged and "Traceback (most recent call last)" in logged
    assert capsys.readouterr().err.count(f"ERROR   {command}: {kind}") == 1  # logged once (and the traceback)


def test_bad_flags_are_argparse_errors():
    from deeph_tf.cli import dfreeze

    with pytest.raises(SystemExit) as exit:
        dfreeze.main(["--no-such-flag"])
    assert exit.value.code == 2
