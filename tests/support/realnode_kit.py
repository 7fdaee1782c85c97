"""Helpers of the real-node tier: `cyclone up --kubeconfig` run as a user runs it (a process of
its own, so it can be SIGKILLed and started again), its CLI and REST API, the runs of a
workflow through any Cyclone server, and a watch that records every Cyclone pod the cluster
ever held (to count duplicates after a crash). The flows run through a server (the seed's
steps, the README's CI example) are in `realnode_flows`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from cyclone import __version__
from cyclone.api import keys
from cyclone.engine.core.podbuilder import ANNOTATION_ATTEMPT
from cyclone.kube import kinds
from support.control_plane import _die_with_parent
from support.live_up import free_port

STAGE_IMAGE = f"cyclone/toolbox:{__version__}"
"""The stage image of the tier: the node has no registry, and this one is imported."""

EXAMPLES = Path(__file__).parents[2] / "examples"
FINISHED = ("Succeeded", "Failed", "Cancelled")


def example(name: str) -> str:
    """An example manifest with the node's stage image instead of the registry's."""
    return (EXAMPLES / name).read_text().replace("alpine:3.20", STAGE_IMAGE)


def overall(run: dict) -> dict:
    return (run.get("status") or {}).get("overall") or {}


def stage_status(run: dict, stage: str) -> dict:
    return (((run.get("status") or {}).get("stages") or {}).get(stage) or {}).get("status") or {}


def outputs(run: dict, stage: str) -> dict[str, str]:
    entry = ((run.get("status") or {}).get("stages") or {}).get(stage) or {}
    return {o["key"]: o.get("value") or "" for o in entry.get("outputs") or []}


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.3) -> Any:
    """The first truthy value of `check()` within `timeout` seconds, or an AssertionError
    naming `what` and the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout:.0f}s; last seen: {last!r}")
        time.sleep(interval)


class ServerClient:
    """The REST API and the `cyclone` CLI of a server at `url` with the admin `token`; the
    CLI runs with `env()` (the context and credentials of the subclass)."""

    url: str
    token: str

    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def api(self, tenant: str = keys.DEFAULT_TENANT) -> httpx.Client:
        """An admin client of the REST API, acting in `tenant`."""
        return httpx.Client(base_url=f"{self.url}/apis/v1alpha1", timeout=30, headers={
            "Authorization": f"Bearer {self.token}", "X-Tenant": tenant})

    def cli(self, *args: str, input: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        """`cyclone ARGS…` as the user runs it."""
        return subprocess.run(
            [sys.executable, "-m", "cyclone.cli.main", *args], input=input,
            capture_output=True, text=True, timeout=timeout, env=self.env())

    def cli_ok(self, *args: str, input: str | None = None, timeout: float = 120) -> str:
        result = self.cli(*args, input=input, timeout=timeout)
        assert result.returncode == 0, (
            f"cyclone {' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}")
        return result.stdout


@dataclass
class UpProcess(ServerClient):
    """`cyclone up --kubeconfig K --local-path-provisioner` as a child process.

    It listens on `host` (the node's bridge address, so that the pods reach the server for
    artifact uploads and callbacks), keeps its state in `data_dir` and writes its CLI
    context to ``data_dir/cli-config.yaml``. Its output goes to ``data_dir/up.log``.
    """

    data_dir: Path
    kubeconfig: Path
    host: str
    extra_args: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "up.log"

    @property
    def token(self) -> str:
        return (self.data_dir / "admin-token").read_text().strip()

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("CYCLONE_SERVER", "CYCLONE_TENANT", "CYCLONE_TOKEN")}
        env["CYCLONE_CONFIG"] = str(self.data_dir / "cli-config.yaml")
        return env

    def write_engine_config(self, values: dict) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.data_dir / "engine.json").write_text(json.dumps(values))

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "cyclone.cli.main", "up",
                "--kubeconfig", str(self.kubeconfig), "--local-path-provisioner",
                "--data-dir", str(self.data_dir), "--host", self.host,
                "--port", str(self.port), *self.extra_args]

    def start(self, timeout: float = 90) -> None:
        """Start the process and wait until its API answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.starts += 1
        with self.log_path.open("a") as log:
            log.write(f"--- start {self.starts}\n")
            log.flush()
            self.process = subprocess.Popen(
                self.argv(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env(), preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthcheck", timeout=1).status_code == 200:
                    return
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"cyclone up did not start:\n{self.log_tail()}")
            time.sleep(0.2)

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def kill(self) -> None:
        """SIGKILL: nothing of the process gets to run any more."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        """SIGTERM (a clean stop), SIGKILL when it takes longer than 20 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()



class CycloneServer(Protocol):
    """A Cyclone server the tier drives: `cyclone up` or one installed in the cluster."""

    def api(self, tenant: str = keys.DEFAULT_TENANT) -> httpx.Client:
        """An admin client of the REST API, acting in `tenant`."""
        ...

    def cli(self, *args: str, input: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        """`cyclone ARGS…` pointed at this server."""
        ...

    def cli_ok(self, *args: str, input: str | None = None, timeout: float = 120) -> str:
        ...


class RunsOf:
    """The runs of one workflow through the REST API."""

    def __init__(self, up: CycloneServer, project: str, workflow: str,
                 tenant: str = keys.DEFAULT_TENANT) -> None:
        self.up, self.tenant, self.workflow = up, tenant, workflow
        self.path = f"/projects/{project}/workflows/{workflow}/workflowruns"

    def start(self, name: str, variables: dict[str, str] | None = None) -> None:
        from cyclone.cli.runs import run_body

        pairs = [f"{k}={v}" for k, v in (variables or {}).items()]
        body = run_body(self.workflow, name, pairs, [])
        with self.up.api(self.tenant) as http:
            response = http.post(self.path, json=body)
        assert response.status_code == 201, response.text

    def get(self, name: str) -> dict:
        with self.up.api(self.tenant) as http:
            response = http.get(f"{self.path}/{name}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait(self, name: str, check: Callable[[dict], bool], timeout: float = 120,
             what: str = "") -> dict:
        last: dict = {}

        def seen() -> dict | None:
            nonlocal last
            last = self.get(name)
            return last if check(last) else None

        try:
            return wait_for(seen, timeout, what or f"run {name}")
        except AssertionError:
            raise AssertionError(f"{what or 'the awaited state'} of run {name} not within "
                                 f"{timeout:.0f}s; its status: {last.get('status')}") from None

    def finished(self, name: str, timeout: float = 120) -> dict:
        return self.wait(name, lambda r: overall(r).get("phase") in FINISHED, timeout,
                         "the end")

    def logs(self, name: str, stage: str) -> str:
        with self.up.api(self.tenant) as http:
            response = http.get(f"{self.path}/{name}/logs", params={"stage": stage})
        return response.text if response.status_code == 200 else ""

    def put(self, name: str, action: str, **params: str) -> None:
        with self.up.api(self.tenant) as http:
            response = http.put(f"{self.path}/{name}/{action}", params=params or None)
        assert response.status_code == 200, response.text


@dataclass(frozen=True)
class SeenPod:
    namespace: str
    name: str
    uid: str
    kind: str
    run: str
    stage: str
    attempt: str
    image: str


class PodLedger:
    """Every pod with Cyclone's pod-kind label the cluster held while the ledger ran, from
    a list and a watch (so pods deleted before anyone looks are counted too)."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self._pods: dict[str, SeenPod] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._listed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-ledger", daemon=True)

    def __enter__(self) -> PodLedger:
        self._thread.start()
        if not self._listed.wait(30):
            raise RuntimeError("the pod ledger could not list the cluster's pods")
        return self

    def __exit__(self, *_: object) -> None:
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(10)

    def pods(self, run: str | None = None, kind: str | None = None) -> list[SeenPod]:
        with self._lock:
            return [p for p in self._pods.values()
                    if (run is None or p.run == run) and (kind is None or p.kind == kind)]

    def _record(self, pod: dict) -> None:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        seen = SeenPod(meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", ""),
                       labels.get(keys.LABEL_POD_KIND, ""),
                       labels.get(keys.LABEL_WORKFLOWRUN, ""), labels.get(keys.LABEL_STAGE, ""),
                       (meta.get("annotations") or {}).get(ANNOTATION_ATTEMPT, ""),
                       ((pod.get("spec") or {}).get("containers") or [{}])[0].get("image", ""))
        with self._lock:
            self._pods.setdefault(seen.uid, seen)

    def _run(self) -> None:
        async def main() -> None:
            from cyclone.kube.remote import RemoteCluster

            self._task = asyncio.current_task()
            cluster = RemoteCluster.from_kubeconfig(self.kubeconfig)
            try:
                while True:
                    listed = await cluster.list(kinds.POD, None,
                                                label_selector=keys.LABEL_POD_KIND)
                    for pod in listed.items:
                        self._record(pod)
                    self._listed.set()
                    with contextlib.suppress(Exception):
                        async for event in cluster.watch(
                                kinds.POD, None, label_selector=keys.LABEL_POD_KIND,
                                resource_version=listed.resource_version,
                                timeout_seconds=600):
                            if event.type in ("ADDED", "MODIFIED", "DELETED"):
                                self._record(event.object)
            finally:
                await cluster.close()

        self._loop = asyncio.new_event_loop()
        with contextlib.suppress(asyncio.CancelledError):
            self._loop.run_until_complete(main())
        self._loop.close()
