"""Console scripts exist and answer --help without importing TensorFlow."""
import shutil
import subprocess
import sys

import pytest

COMMANDS = ["dtrain", "dfreeze", "dtest", "dgraph", "dinspect", "dreport", "dpredict", "dband"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_does_not_import_tensorflow(command):
    code = (
        "import sys\n"
        f"from deeph_tf.cli import {command}\n"
        "try:\n"
        f"    {command}.main(['--help'])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "assert 'tensorflow' not in sys.modules, 'TensorFlow imported at parse time'\n"
        "assert 'keras' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout and command in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_console_script_is_installed(command):
    path = shutil.which(command) or str(__import__("pathlib").Path(sys.executable).parent / command)
    result = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"usage: {command}" in result.stdout


def test_dtrain_flags_follow_deepmd():
    from deeph_tf.cli import dtrain

    args = dtrain.build_parser().parse_args(["input.json", "-r", "model.ckpt", "-o", "norm.json", "-v", "debug"])
    assert (args.INPUT, args.restart, args.output, args.log_level) == ("input.json", "model.ckpt", "norm.json", "DEBUG")
    with pytest.raises(SystemExit):
        dtrain.build_parser().parse_args(["input.json", "-r", "a", "-i", "b"])  # mutually exclusive
