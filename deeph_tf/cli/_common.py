"""Shared pieces of the command-line front ends (no TensorFlow import here)."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Optional, Sequence

from deeph_tf._version import __version__

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: The format of every log line (stderr, -l files, a TOML run's dtrain.log).
LOG_FORMAT, LOG_DATEFMT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S"

#: Exit codes of every command (see :mod:`deeph_tf.cli`).
EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2
#: Errors in what the user gave: the input (``ConfigError``), data (``DataFormatError``),
#: checkpoints and reports (``CheckpointError``, ``ReportError``), all ValueErrors; and paths
#: that do not exist, exist already, are of the wrong kind or may not be read.
BAD_INPUT_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
                    PermissionError)


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    value = float(text)
    if not value > 0.0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """--version, -v/--log-level and -l/--log-path, as in DeePMD-kit."""
    parser.add_argument("--version", action="version", version=f"deeph_tf {__version__}")
    parser.add_argument(
        "-v",
        "--log-level",
        choices=LOG_LEVELS,
        default="INFO",
        type=str.upper,
        help="logging level (default: %(default)s)",
    )
    parser.add_argument("-l", "--log-path", default=None, help="also write the log to this file")


def level_given(argv: Sequence[str]) -> bool:
    """Whether -v/--log-level is on the command line (it then wins over a TOML's system.log_level)."""
    probe = argparse.ArgumentParser(add_help=False)
    probe.add_argument("-v", "--log-level")
    known, _ = probe.parse_known_args(list(argv))
    return known.log_level is not None


def configure_logging(level: str = "INFO", log_path: Optional[str] = None, quiet: bool = False,
                      prefix: str = "") -> None:
    """Log to stderr (and ``log_path``) with timestamps; quiet TensorFlow's C++ logs.

    ``quiet`` (a non-logging worker of a multi-worker run) keeps errors only; ``prefix``
    starts every line (e.g. the worker's rank).
    """
    import os

    if quiet:
        level = "ERROR"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if level == "DEBUG" else "2")
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path))
    logging.basicConfig(
        level=getattr(logging, level),
        format=prefix.replace("%", "%%") + LOG_FORMAT,
        datefmt=LOG_DATEFMT,
        handlers=handlers,
        force=True,
    )


def run_command(prog: str, parser: argparse.ArgumentParser, argv: Optional[Sequence[str]],
                work: Callable[[argparse.Namespace], Optional[int]]) -> int:
    """Parse ``argv``, configure logging, run ``work(args)`` (each command's ``_run``): every ``main``.

    A fatal error is logged once (stderr and the ``-l`` file) by the logger ``prog``; the
    exit code is 2 for bad input (:data:`BAD_INPUT_ERRORS`), 1 for runtime failures (a
    diverged training, anything unexpected: its traceback at debug level), else what
    ``work`` returns (None: 0).
    """
    args = parser.parse_args(argv)
    configure_logging(args.log_level, args.log_path)
    logger = logging.getLogger(prog)
    try:
        code = work(args)
    except BAD_INPUT_ERRORS as error:
        logger.error("%s", error)
        logger.debug("details", exc_info=True)
        return EXIT_BAD_INPUT
    except RuntimeError as error:
        logger.error("%s", error)
        logger.debug("details", exc_info=True)
        return EXIT_FAILURE
    except Exception as error:  # noqa: BLE001 - the one place that turns a failure into an exit code
        logger.error("unexpected %s: %s (run with -v DEBUG for the traceback)", type(error).__name__, error)
        logger.debug("traceback", exc_info=True)
        return EXIT_FAILURE
    return EXIT_OK if code is None else int(code)
