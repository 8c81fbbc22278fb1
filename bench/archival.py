"""Archive-grade in and out (issue 24): `make bench-archival`.

    python -m bench.archival --out bench-results/archival [--parts master grain ...]

Each part of the issue measures itself in its own module, `bench/archival_<part>.py`,
with `measure(out_dir) -> dict` and `markdown(result) -> str`; this driver runs the parts
asked for (all by default), one after the other on a quiet machine, and writes
OUT/results.json (every part's figures) and OUT/results.md (every part's section). A part
that fails is reported with its error and the driver exits 1 after the others have run,
so one broken part never hides the rest's figures.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench.report import write_results

PARTS = ("master", "photos", "interlace", "grain", "collection")


def _run_part(name: str, out: Path) -> tuple[dict[str, Any], str]:
    module = importlib.import_module(f"bench.archival_{name}")
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    result = module.measure(folder)
    result["seconds"] = round(time.monotonic() - began, 1)
    return result, module.markdown(result)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results/archival"))
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"parts": {}, "targets": []}
    sections, failed = ["# Archive-grade in and out (`make bench-archival`)\n"], []
    for name in args.parts:
        print(f"bench-archival: {name}", flush=True)
        try:
            result, section = _run_part(name, args.out)
        except Exception as exc:  # one part's failure must not hide the others' figures
            failed.append(name)
            result, section = {"error": f"{type(exc).__name__}: {exc}"}, f"## {name}\n\nFAILED: {exc}\n"
            traceback.print_exc()
        report["parts"][name] = result
        report["targets"] += result.get("targets", [])
        sections.append(section)
    write_results(args.out, report, "\n".join(sections), print)
    if failed:
        print(f"bench-archival: parts that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
