"""``dtest -m MODEL -s INPUTS_DIR [-n N] [-d PREFIX] [-o OUTPUT_DIR]``: errors and predictions."""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

from deeph_tf.cli._common import add_common_arguments, configure_logging, run_not_yet_available


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dtest",
        description="Evaluate a frozen model or checkpoint on DeepH-format structures (inputs/dft/...).",
    )
    parser.add_argument("-m", "--model", required=True, help="frozen model folder or checkpoint")
    parser.add_argument("-s", "--system", required=True, metavar="INPUTS_DIR", help="folder holding dft/")
    parser.add_argument("-n", "--numb-test", type=int, default=0, help="structures to test (0: all)")
    parser.add_argument("-d", "--detail-file", metavar="DETAIL_PREFIX", help="write per-entry detail files")
    parser.add_argument(
        "-o", "--output-dir", metavar="OUTPUT_DIR", help="write OUTPUT_DIR/dft/<sid>/hamiltonian_pred.h5"
    )
    add_common_arguments(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, args.log_path)
    return run_not_yet_available("dtest", "evaluation lands with the dtrain/dfreeze/dtest issue")


if __name__ == "__main__":
    raise SystemExit(main())
