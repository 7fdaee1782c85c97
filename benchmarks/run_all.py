"""Run every benchmark in turn and print its tables (`make bench`).

    python benchmarks/run_all.py [--quick] [--only dag_overhead,throughput,scale]
        [--json-dir DIR]

Each benchmark runs in its own process (so peak memory and caches are its own); the
defaults are sized to finish the whole set in under 10 minutes on 2 cores. `--quick`
passes `--quick` to each for a smoke run of about two minutes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["dag_overhead", "throughput", "scale", "ui_layout", "ui_run_detail",
              "ui_runs_list", "ui_log_viewer", "acceleration"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one repetition")
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help="comma-separated benchmarks to run")
    parser.add_argument("--json-dir", type=Path, help="write each benchmark's raw figures here")
    args = parser.parse_args()
    failed = []
    began = time.perf_counter()
    for name in [n for n in args.only.split(",") if n]:
        command = [sys.executable, str(HERE / f"{name}.py")]
        if args.quick:
            command.append("--quick")
        if args.json_dir:
            args.json_dir.mkdir(parents=True, exist_ok=True)
            command += ["--json", str(args.json_dir / f"{name}.json")]
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        result = subprocess.run(command, cwd=HERE)
        print(f"== {name}: {time.perf_counter() - started:.0f}s"
              f"{'' if result.returncode == 0 else f' (exit {result.returncode})'}\n",
              flush=True)
        if result.returncode != 0:
            failed.append(name)
    print(f"all benchmarks: {time.perf_counter() - began:.0f}s"
          f"{'; failed: ' + ', '.join(failed) if failed else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
