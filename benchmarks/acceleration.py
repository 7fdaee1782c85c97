"""Acceleration caches: the same dependency-heavy pip install, cold and from the cache.

    python benchmarks/acceleration.py [--packages 8] [--modules 40] [--reps 1] [--quick]
        [--json FILE]

A local package index (PEP 503, served on 127.0.0.1 by this process, no internet) holds
`--packages` source distributions, each `--modules` generated modules built with the
setuptools backend, and the setuptools and wheel wheels their isolated builds need (from
/usr/share/python-wheels: Debian's python3-setuptools-whl and python3-wheel-whl). One
stage runs, on Cyclone as `cyclone up` composes it (embedded cluster, node agent with the
host runtime, engine), in bubblewrap:

    python3 -m pip install --target /tmp/site --index-url http://127.0.0.1:PORT/simple ...

Every pip download and every wheel built from a source distribution is cached in pip's
cache, which is `$XDG_CACHE_HOME/pip` = `/root/.cache/pip`. Per repetition, in a fresh
data dir, four runs of that stage follow each other:

- `plain 1`, `plain 2`: runs without the acceleration label: nothing persists, each is
  cold — the baseline;
- `cached 1`: the first run labelled `workflowrun.cyclone.dev/acceleration: "true"`:
  cold too, and it fills `caches/bench/cache/pip` on the tenant PVC;
- `cached 2`: the second labelled run, which finds what the first cached.

Timed from the WorkflowRun's creation until the engine's cache shows it Succeeded. Prints
the medians and the ratios of `cached 2` to `cached 1` and to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import http.server
import io
import json
import shutil
import tarfile
import tempfile
import threading
import time
from pathlib import Path

from common import (
    NAMESPACE,
    machine,
    median,
    overall_phase,
    run_manifest,
    stage_manifest,
    table,
    wait_in_cache,
    workflow_manifest,
)

from cyclone.api import keys
from cyclone.engine.core.acceleration import LABEL_ACCELERATION
from cyclone.up import UpContext, UpOptions, up

PROJECT = "bench"
SYSTEM_WHEELS = Path("/usr/share/python-wheels")
BUILD_TOOLS = ("setuptools", "wheel")
"""What setuptools' isolated builds install from the index (Debian's python3-*-whl)."""
RUNS = (("plain 1", False), ("plain 2", False), ("cached 1", True), ("cached 2", True))


def _sdist(name: str, modules: int) -> tuple[str, bytes]:
    """A source distribution of `name` 1.0 with `modules` generated modules."""
    package = name.replace("-", "_")
    root = f"{package}-1.0"
    files = {
        "pyproject.toml": (
            '[build-system]\nrequires = ["setuptools>=40"]\n'
            'build-backend = "setuptools.build_meta"\n\n'
            f'[project]\nname = "{name}"\nversion = "1.0"\n\n'
            f'[tool.setuptools]\npackages = ["{package}"]\n'),
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{package}/__init__.py": "",
    }
    for index in range(modules):
        body = "\n".join(f"def f{index}_{i}(x):\n    return x * {i} + {index}\n"
                         for i in range(200))
        files[f"{package}/m{index:03d}.py"] = body
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{root}/{path}")
            info.size = len(data)
            info.mtime = 1_700_000_000
            archive.addfile(info, io.BytesIO(data))
    return f"{root}.tar.gz", buffer.getvalue()


def build_index(root: Path, packages: int, modules: int) -> list[str]:
    """A PEP 503 index under `root` (`simple/`, `files/`); the names of its packages."""
    files = root / "files"
    files.mkdir(parents=True)
    entries: dict[str, list[str]] = {}
    names = [f"benchdep-{i:02d}" for i in range(packages)]
    for name in names:
        filename, data = _sdist(name, modules)
        (files / filename).write_bytes(data)
        entries[name] = [filename]
    for tool in BUILD_TOOLS:
        for wheel in sorted(SYSTEM_WHEELS.glob(f"{tool}-*.whl")):
            shutil.copy(wheel, files / wheel.name)
            entries.setdefault(tool, []).append(wheel.name)
        if tool not in entries:
            raise SystemExit(f"no {tool} wheel in {SYSTEM_WHEELS} (apt-get install "
                             f"python3-{tool}-whl): the source builds need it offline")
    for name, filenames in entries.items():
        page = root / "simple" / name
        page.mkdir(parents=True)
        links = "".join(
            f'<a href="../../files/{f}#sha256='
            f'{hashlib.sha256((files / f).read_bytes()).hexdigest()}">{f}</a>\n'
            for f in filenames)
        (page / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>")
    return names


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve_index(root: Path):
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    finally:
        server.shutdown()
        server.server_close()


def install_script(index_url: str, names: list[str]) -> str:
    return (f"python3 -m pip install --disable-pip-version-check --no-input -q "
            f"--target /tmp/site --index-url {index_url} {' '.join(names)} && "
            f"python3 -c 'import sys; sys.path.insert(0, \"/tmp/site\"); "
            f"import {names[-1].replace('-', '_')}.m000'")


def _last_log(data_dir: Path) -> str:
    logs = sorted(data_dir.rglob("main.log"), key=lambda p: p.stat().st_mtime)
    return logs[-1].read_text()[-3000:] if logs else "(no log)"


class _Finished(Exception):
    def __init__(self, seconds: dict[str, float]) -> None:
        super().__init__(seconds)
        self.seconds = seconds


async def _time_runs(ctx: UpContext, script: str, limit: float) -> None:
    """The `serve` hook of `up`: the stage and workflow, then the four runs in turn."""
    await ctx.engine.ready.wait()
    await ctx.cluster.create(stage_manifest("install", ("sh", "-c", script)))
    flow = workflow_manifest("deps", {"install": []})
    flow["metadata"]["labels"] = {keys.LABEL_PROJECT: PROJECT}
    await ctx.cluster.create(flow)
    caches = ctx.engine.caches
    await wait_in_cache(caches.workflows, lambda: caches.workflows.get(NAMESPACE, "deps")
                        is not None, 60)
    seconds: dict[str, float] = {}
    for index, (label, accelerated) in enumerate(RUNS):
        name = f"deps-{index}"
        run = run_manifest(name, "deps")
        run["metadata"]["labels"] = {keys.LABEL_PROJECT: PROJECT}
        if accelerated:
            run["metadata"]["labels"][LABEL_ACCELERATION] = "true"
        started = time.perf_counter()
        await ctx.cluster.create(run)
        await wait_in_cache(caches.runs, lambda n=name: overall_phase(
            caches.runs.get(NAMESPACE, n)) in ("Succeeded", "Failed", "Cancelled"), limit)
        seconds[label] = time.perf_counter() - started
        found = caches.runs.get(NAMESPACE, name)
        if overall_phase(found) != "Succeeded":
            tail = await asyncio.to_thread(_last_log, Path(ctx.data_dir))
            raise RuntimeError(f"run {label} ended {overall_phase(found)}:\n{tail}")
    raise _Finished(seconds)


def run_cyclone(script: str, workdir: Path, timeout: float) -> dict[str, float]:
    options = UpOptions(data_dir=str(workdir / "cyclone"), runtime="host")

    async def main() -> dict[str, float]:
        finished: list[dict[str, float]] = []
        try:
            await up(options, serve=lambda ctx: _time_runs(ctx, script, timeout))
        except* _Finished as group:
            finished += [e.seconds for e in group.exceptions]  # type: ignore[attr-defined]
        if not finished:
            raise RuntimeError("cyclone up ended before the runs did")
        return finished[0]

    with contextlib.redirect_stdout(io.StringIO()):
        return asyncio.run(main())


def _times(value: float, base: float) -> str:
    """`value / base` as `0.05x` (the ratios here are often well below 0.1)."""
    return f"{value / base:.2f}x" if base else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=8,
                        help="source distributions installed (default 8)")
    parser.add_argument("--modules", type=int, default=40,
                        help="generated modules per distribution (default 40)")
    parser.add_argument("--reps", type=int, default=1, help="repetitions (default 1)")
    parser.add_argument("--quick", action="store_true", help="4 packages, one repetition")
    parser.add_argument("--timeout", type=float, default=600, help="per run, seconds")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    if args.quick:
        args.packages, args.reps = 4, 1
    print(f"machine: {machine()}")
    results: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="cyclone-bench-accel-") as tmp:
        workdir = Path(tmp)
        names = build_index(workdir / "index", args.packages, args.modules)
        with serve_index(workdir / "index") as index_url:
            script = install_script(index_url, names)
            for rep in range(args.reps):
                rep_dir = workdir / f"rep-{rep}"
                rep_dir.mkdir()
                results.append(run_cyclone(script, rep_dir, args.timeout))
                print(f"  repetition {rep + 1}: " + ", ".join(
                    f"{k} {v:.2f}s" for k, v in results[-1].items()), flush=True)
    figures = {label: median([r[label] for r in results]) for label, _ in RUNS}
    baseline = median([figures["plain 1"], figures["plain 2"]])
    print(f"\nAcceleration caches: pip install of {args.packages} source distributions "
          f"({args.modules} modules each) from a local index, one stage")
    print(table(
        ["run", "seconds", "vs cached 1", "vs baseline"],
        [[label, figures[label], _times(figures[label], figures["cached 1"]),
          _times(figures[label], baseline)] for label, _ in RUNS]))
    print(f"medians of {args.reps} repetitions; baseline = median of the two unlabelled "
          f"runs ({baseline:.2f}s); cached 2 / cached 1 = "
          f"{figures['cached 2'] / figures['cached 1']:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"runs": results, "medians": figures}, indent=1))


if __name__ == "__main__":
    main()
