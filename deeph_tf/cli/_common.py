"""Shared pieces of the command-line front ends (no TensorFlow import here)."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional

from deeph_tf._version import __version__

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


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
        format=prefix.replace("%", "%%") + "%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        handlers=handlers,
        force=True,
    )
