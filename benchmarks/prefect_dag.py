"""One DAG of `true` subprocesses as a Prefect 3 flow, timed; run by dag_overhead.py.

    python benchmarks/prefect_dag.py DAG.json --reps 3

The DAG file maps each stage to the stages it depends on. Each stage is a Prefect task
that runs `true` in a subprocess; a task is submitted with its dependencies' futures as
`wait_for`, on the default task runner (a thread pool). The API is Prefect's own
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


def build_flow(graph: dict[str, list[str]]):
    from prefect import flow, task

    @task(name="stage")
    def stage() -> None:
        subprocess.run(["true"], check=True)

    @flow(name="dag", log_prints=False)
    def dag() -> None:
        futures = {}
        for name, depends in graph.items():
            futures[name] = stage.with_options(name=name).submit(
                wait_for=[futures[d] for d in depends]
            )
        for future in futures.values():
            future.wait()
        failed = [name for name, future in futures.items() if future.state.is_failed()]
        if failed:
            raise RuntimeError(f"stages failed: {failed[:5]}")

    return dag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dag", type=Path)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    graph = json.loads(args.dag.read_text())

    import prefect

    build_flow({"warm-up": []})()
    dag = build_flow(graph)
    seconds = []
    for _ in range(args.reps):
        started = time.perf_counter()
        dag()
        seconds.append(time.perf_counter() - started)
    print(json.dumps({"seconds": seconds, "version": prefect.__version__}), flush=True)


if __name__ == "__main__":
    main()
