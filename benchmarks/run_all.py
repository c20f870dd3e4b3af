"""Run every ``bench_*.py`` script here, one after the other.

Each script runs in its own process (as ``python benchmarks/bench_x.py``), so
one benchmark's threads, caches and memory never touch the next. Every script
runs even when an earlier one fails (a missed target exits non-zero); the
summary lists each outcome and the run exits non-zero if any failed.
``--quick`` is passed through to every script, whose smoke-test tables then
go to ``results/quick/`` so that they never overwrite the results of a full
run.

Run: ``python benchmarks/run_all.py`` (what ``make bench`` does) or
``python benchmarks/run_all.py --quick``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke-test every script")
    parser.add_argument(
        "--only", help="comma-separated script names (e.g. bench_fashion,bench_scaling)"
    )
    args = parser.parse_args(argv)
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        wanted = {name.removesuffix(".py") for name in args.only.split(",")}
        unknown = wanted - {script.stem for script in scripts}
        if unknown:
            parser.error(f"--only: no script named {sorted(unknown)}")
        scripts = [script for script in scripts if script.stem in wanted]

    summary = []  # (script, seconds, status)
    failed = False
    for script in scripts:
        command = [sys.executable, str(script)]
        if args.quick:
            name = script.stem.removeprefix("bench_")
            command += [
                "--quick",
                "--out",
                str(HERE / "results" / "quick" / f"{name}.md"),
            ]
        print(f"\n=== {' '.join(command)}", flush=True)
        start = time.perf_counter()
        code = subprocess.call(command, cwd=HERE.parent)
        seconds = time.perf_counter() - start
        summary.append(
            (script.name, seconds, "ok" if code == 0 else f"FAILED ({code})")
        )
        failed = failed or code != 0

    print("\n=== summary")
    for name, seconds, status in summary:
        print(f"{name:32s} {seconds:8.1f} s  {status}")
    print(f"results in {HERE / 'results'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
