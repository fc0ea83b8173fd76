#!/usr/bin/env python
"""Write docs/input.md, the reference of every training-input key, from deeph_tf/schemas/input.schema.json.

    python tools/gen_input_docs.py            # (re)write docs/input.md
    python tools/gen_input_docs.py --check    # exit 1 if docs/input.md is out of date

The schema is the single source: edit descriptions and defaults there, then rerun this.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deeph_tf.config import schema_doc_markdown

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "input.md"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT, help="default: %(default)s")
    parser.add_argument("--check", action="store_true", help="only check that the file is up to date")
    args = parser.parse_args(argv)
    text = schema_doc_markdown()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
        if current != text:
            print(f"{args.output} is out of date; run python tools/gen_input_docs.py", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
