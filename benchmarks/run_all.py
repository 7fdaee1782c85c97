"""Run every benchmark in turn, print its tables, then every target beside its figure
(`make bench`).

    python benchmarks/run_all.py [--quick] [--only dag_overhead,throughput,scale]
        [--json-dir DIR] [--targets-only]

Each benchmark runs in its own process (so peak memory and caches are its own); the
defaults measure at the sizes the targets of the scale work name (a 5,000-stage DAG, a
10,000-stage run, 2,000 runs on the real apiserver), which takes the better part of an
hour on 2 cores. `--quick` passes `--quick` to each for a smoke run of about two
minutes. Each writes its raw figures with `--json` (into DIR, else a temporary
directory), which the final table of targets (`targets.py`) reads; a benchmark that is
missing or fails leaves its targets "not measured". Its printed lines are kept beside,
as `<name>.out`, so `--targets-only --json-dir DIR` prints the targets of benchmarks run
apart into one DIR.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from targets import Outcome, targets_table

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["dag_overhead", "throughput", "scale", "run_listing", "cli_startup", "ui_layout",
              "ui_run_detail", "ui_runs_list", "ui_log_viewer", "acceleration"]


def run_benchmark(name: str, quick: bool, json_file: Path) -> tuple[int, Outcome]:
    """Run one benchmark, its output shown as it comes; its exit status and what it left."""
    command = [sys.executable, str(HERE / f"{name}.py"), "--json", str(json_file)]
    if quick:
        command.append("--quick")
    lines = []
    with subprocess.Popen(command, cwd=HERE, stdout=subprocess.PIPE, text=True,
                          bufsize=1) as process:
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            lines.append(line.rstrip("\n"))
    json_file.with_suffix(".out").write_text("\n".join(lines) + "\n")
    return process.returncode, Outcome(read_figures(json_file), tuple(lines))


def kept_outcomes(json_dir: Path, names: list[str]) -> dict[str, Outcome]:
    """What earlier runs left in `json_dir`: each benchmark's figures and printed lines."""
    outcomes = {}
    for name in names:
        figures = read_figures(json_dir / f"{name}.json")
        try:
            lines = tuple((json_dir / f"{name}.out").read_text().splitlines())
        except OSError:
            lines = ()
        if figures is not None or lines:
            outcomes[name] = Outcome(figures, lines)
    return outcomes


def read_figures(json_file: Path) -> object:
    try:
        return json.loads(json_file.read_text())
    except (OSError, ValueError):
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one repetition")
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help="comma-separated benchmarks to run")
    parser.add_argument("--json-dir", type=Path, help="write each benchmark's raw figures here")
    parser.add_argument("--targets-only", action="store_true",
                        help="run nothing: print the targets from the figures kept in "
                        "--json-dir (benchmarks run apart, e.g. with --only, into one dir)")
    args = parser.parse_args()
    if args.targets_only:
        if args.json_dir is None:
            parser.error("--targets-only reads the figures of --json-dir")
        print(targets_table(kept_outcomes(args.json_dir, BENCHMARKS)))
        return 0
    failed, missing = [], []
    outcomes: dict[str, Outcome] = {}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cyclone-bench-figures-") as scratch:
        json_dir = args.json_dir or Path(scratch)
        json_dir.mkdir(parents=True, exist_ok=True)
        for name in [n for n in args.only.split(",") if n]:
            if not (HERE / f"{name}.py").is_file():
                print(f"== {name}: no benchmarks/{name}.py, skipped\n", flush=True)
                missing.append(name)
                continue
            print(f"== {name}", flush=True)
            started = time.perf_counter()
            code, outcomes[name] = run_benchmark(name, args.quick, json_dir / f"{name}.json")
            print(f"== {name}: {time.perf_counter() - started:.0f}s"
                  f"{'' if code == 0 else f' (exit {code})'}\n", flush=True)
            if code != 0:
                failed.append(name)
    print("== targets\n" + targets_table(outcomes) + "\n")
    print(f"all benchmarks: {time.perf_counter() - began:.0f}s"
          f"{'; failed: ' + ', '.join(failed) if failed else ''}"
          f"{'; missing: ' + ', '.join(missing) if missing else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
