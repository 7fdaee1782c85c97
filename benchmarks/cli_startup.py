"""How long `cyclone --help` and `cyclone run --help` take, against the 150 ms target,
`python -c pass` and the help of a one-command Typer app, started the same way.

    python benchmarks/cli_startup.py [--runs 21] [--quick] [--json FILE]

Each figure is the median of `--runs` fresh processes. The commands are started in turn
(`python -c pass`, the Typer app, `cyclone --help`, `cyclone run --help`, then again), so
a change of load on the machine falls on all alike. The ratio to `python -c pass` says
what the CLI costs over starting the interpreter; the one-command Typer app (one option,
the same rich help) is the floor of any CLI built on Typer, so what `cyclone` adds over it
is its own. Beside the wall time, the CPU time (user + system) of each process: on a busy
machine it is what the process itself costs. `cyclone` is the console script beside this
interpreter (`python -m cyclone.cli.main` when there is none).

The processes cache bytecode, as an installed CLI does, in a temporary
`PYTHONPYCACHEPREFIX` filled by one warm-up run of each (`PYTHONDONTWRITEBYTECODE` is
dropped: compiling every module at each start would add hundreds of milliseconds to every
figure). Then one `python -X importtime -c "import cyclone.cli.main"` lists the imports
that cost the most: where to look when the figure grows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, median, percentile, ratio, table

TARGET = 0.150
BASELINE = "python -c pass"
FLOOR = "one-command Typer app --help"
HELP_COMMANDS = (("cyclone --help", ["--help"]), ("cyclone run --help", ["run", "--help"]))
TYPER_APP = '''
import typer

app = typer.Typer(help="One command.")


@app.command()
def hello(name: str = typer.Option("world", help="Whom to greet.")) -> None:
    """Say hello."""


@app.command()
def bye() -> None:
    """Say goodbye."""


app()
'''

Timing = tuple[float, float]
"""(wall seconds, CPU seconds) of one process."""


def cyclone_command() -> list[str]:
    script = Path(sys.executable).with_name("cyclone")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "cyclone.cli.main"]


def cached_bytecode_env(prefix: Path) -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "80", "PYTHONPYCACHEPREFIX": str(prefix)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_run(command: list[str], env: dict[str, str]) -> Timing:
    cpu = children_cpu_seconds()
    began = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: "
                           f"{done.stderr.decode(errors='replace')[-500:]}")
    return seconds, children_cpu_seconds() - cpu


def measure(runs: int, env: dict[str, str], workdir: Path) -> dict[str, list[Timing]]:
    typer_app = workdir / "one_command.py"
    typer_app.write_text(TYPER_APP)
    commands = {BASELINE: [sys.executable, "-c", "pass"],
                FLOOR: [sys.executable, str(typer_app), "--help"]}
    commands.update({name: cyclone_command() + argv for name, argv in HELP_COMMANDS})
    for command in commands.values():
        timed_run(command, env)
    times: dict[str, list[Timing]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            times[name].append(timed_run(command, env))
    return times


def costliest_imports(count: int, env: dict[str, str]) -> list[tuple[str, float, float]]:
    """(module, self ms, cumulative ms) of the imports `import cyclone.cli.main` starts
    directly, the costliest first."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import cyclone.cli.main"],
                          capture_output=True, text=True, check=True, env=env)
    found = []
    for line in done.stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if not line.startswith("import time:") or len(fields) != 3 \
                or not fields[0].strip().isdigit():
            continue
        indent = len(fields[2]) - len(fields[2].lstrip(" ")) - 1
        if indent == 2:
            found.append((fields[2].strip(), int(fields[0]) / 1000, int(fields[1]) / 1000))
    found.sort(key=lambda entry: entry[2], reverse=True)
    return found[:count]


def summary(times: dict[str, list[Timing]], runs: int) -> list[dict]:
    def walls(name: str) -> list[float]:
        return [wall for wall, _ in times[name]]

    def cpu(name: str) -> float:
        return median([cpu for _, cpu in times[name]])

    records = []
    for name, _ in HELP_COMMANDS:
        records.append({
            "command": name, "runs": runs, "target_ms": TARGET * 1000,
            "median_ms": median(walls(name)) * 1000,
            "p90_ms": percentile(walls(name), 0.9) * 1000, "cpu_median_ms": cpu(name) * 1000,
            "python_ms": median(walls(BASELINE)) * 1000, "python_cpu_ms": cpu(BASELINE) * 1000,
            "typer_floor_ms": median(walls(FLOOR)) * 1000,
            "typer_floor_cpu_ms": cpu(FLOOR) * 1000,
            "times_ms": [wall * 1000 for wall in walls(name)],
        })
    return records


def print_report(records: list[dict], imports: list[tuple[str, float, float]]) -> None:
    first = records[0]
    print(f"\nCLI start: median of {first['runs']} fresh processes each, COLUMNS=80; CPU = user "
          "+ system time of the process")
    print(table(("command", "median ms", "p90 ms", "CPU ms", "target ms", "target"), [
        (BASELINE, first["python_ms"], "", first["python_cpu_ms"], "", ""),
        (FLOOR, first["typer_floor_ms"], "", first["typer_floor_cpu_ms"], "", ""),
        *((r["command"], r["median_ms"], r["p90_ms"], r["cpu_median_ms"], r["target_ms"],
           "meets" if r["median_ms"] <= r["target_ms"] else "MISSES") for r in records),
    ]))
    print(table(("command", "ratio to python", "CPU ratio to python",
                 "CPU over the Typer app ms"), [(
        r["command"], ratio(r["median_ms"], r["python_ms"]),
        ratio(r["cpu_median_ms"], r["python_cpu_ms"]),
        r["cpu_median_ms"] - r["typer_floor_cpu_ms"],
    ) for r in records]))
    print("\nCostliest imports of `import cyclone.cli.main` (python -X importtime, one run)")
    print(table(("module", "self ms", "cumulative ms"), imports))
    for r in records:
        print(f"{r['command']}: {r['median_ms']:.0f} ms (target ≤ {r['target_ms']:.0f} ms; "
              f"python -c pass {r['python_ms']:.0f} ms, {ratio(r['median_ms'], r['python_ms'])}"
              f"; one-command Typer app {r['typer_floor_ms']:.0f} ms; "
              f"CPU {r['cpu_median_ms']:.0f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="processes per command")
    parser.add_argument("--quick", action="store_true", help="7 processes per command")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    if args.quick:
        args.runs = 7
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="cyclone-bench-cli-") as tmp:
        workdir = Path(tmp)
        env = cached_bytecode_env(workdir / "pycache")
        times = measure(args.runs, env, workdir)
        imports = costliest_imports(8, env)
    records = summary(times, args.runs)
    print_report(records, imports)
    if args.json:
        args.json.write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
