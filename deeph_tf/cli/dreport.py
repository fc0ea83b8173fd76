"""``dreport [FOLDER] [-o report.md] [--partial] [--no-plots]``: a run's training report."""
from __future__ import annotations

import argparse
import logging
from typing import Optional, Sequence

from deeph_tf.cli._common import add_common_arguments, run_command

logger = logging.getLogger("dreport")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dreport",
        description="Write report.md (configuration, data, timing, per-epoch table from lcurve.out, final "
        "metrics against the input's targets) with PNG figures, from the training_record.json that dtrain "
        "writes into the run folder at the end of a run.",
    )
    parser.add_argument("folder", nargs="?", default=".", metavar="FOLDER",
                        help="run folder holding training_record.json (default: %(default)s)")
    parser.add_argument("-o", "--output", default=None, metavar="REPORT_MD",
                        help="the report file; figures go next to it (default: FOLDER/report.md)")
    parser.add_argument("--partial", action="store_true",
                        help="without training_record.json (a run killed before its end): build the report "
                        "from lcurve.out and the latest checkpoint's input alone")
    parser.add_argument("--no-plots", action="store_true", help="do not draw the PNG figures")
    add_common_arguments(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_command("dreport", build_parser(), argv, _run)


def _run(args: argparse.Namespace) -> int:
    from deeph_tf.train.report import report_from_folder

    output = report_from_folder(args.folder, output=args.output, partial=args.partial, plots=not args.no_plots)
    print(output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
