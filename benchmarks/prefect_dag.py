"""One DAG of `true` subprocesses as a Prefect 3 flow, timed; run by dag_overhead.py.

    python benchmarks/prefect_dag.py DAG.json --reps 3 [--command JSON]

The DAG file maps each stage to the stages it depends on. Each stage is a Prefect task
that runs `true` (or `--command`, a JSON argv: dag_overhead.py gives the sandbox of a
Cyclone stage container) in a subprocess; a task is submitted
with its dependencies' futures as `wait_for`, on the default task runner (a thread pool),
and the results are awaited once at the end. The API is Prefect's own
ephemeral server (a local subprocess with its SQLite database under `PREFECT_HOME`),
which dag_overhead.py points at a temporary directory. A warm-up flow starts the server
before any timing. Prints one JSON line: `{"seconds": [...], "version": ...}`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

TRUE = ["true"]


def build_flow(graph: dict[str, list[str]], command: list[str]):
    """The DAG as a competent user writes it: one task, each stage submitted with its
    dependencies' futures as `wait_for`, the results awaited once at the end."""
    from prefect import flow, task

    @task(name="stage")
    def stage(name: str) -> str:
        subprocess.run(command, check=True)
        return name

    @flow(name="dag", log_prints=False)
    def dag() -> None:
        futures = {}
        for name, depends in graph.items():
            futures[name] = stage.submit(name, wait_for=[futures[d] for d in depends])
        for future in futures.values():
            future.result()

    return dag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dag", type=Path)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--command", type=json.loads, default=TRUE,
                        help="the argv each task runs, as JSON (default: true)")
    args = parser.parse_args()
    graph = json.loads(args.dag.read_text())
    command = args.command

    import prefect

    build_flow({"warm-up": []}, command)()
    dag = build_flow(graph, command)
    seconds = []
    for _ in range(args.reps):
        started = time.perf_counter()
        dag()
        seconds.append(time.perf_counter() - started)
    print(json.dumps({"seconds": seconds, "version": prefect.__version__}), flush=True)


if __name__ == "__main__":
    main()
