"""Talking to a Cyclone server: apply objects, start runs, follow them, read their results.

`Client` reaches the server the way the CLI does (`cyclone.cli.client`): explicit
arguments, then ``CYCLONE_SERVER``/``CYCLONE_TENANT``/``CYCLONE_TOKEN``/``CYCLONE_CONTEXT``,
then the CLI's current context (the one `cyclone up` writes). Every failure is an
`APIError` with one line for a person.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

from cyclone.api import keys
from cyclone.api.common import TERMINAL_PHASES
from cyclone.cli.client import CliError, CycloneClient
from cyclone.cli.config import ConfigError, resolve_settings
from cyclone.cli.objects import APPLY_ORDER, apply_object
from cyclone.cli.watch import run_phase, run_states
from cyclone.sdk.manifest import Manifested, Value, manifests_of
from cyclone.sdk.runs import RunRequest, StageParameters
from cyclone.sdk.stage import Stage
from cyclone.sdk.workflow import Workflow


class APIError(Exception):
    """The server refused a request, or could not be reached; `message` is one line,
    `status` the HTTP status (None when there was no answer)."""

    def __init__(self, message: str, status: int | None = None,
                 causes: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.causes = list(causes)


class RunTimeout(TimeoutError):
    """`Run.wait` gave up before the run ended."""


@contextmanager
def _api_errors() -> Iterator[None]:
    try:
        yield
    except CliError as err:
        raise APIError(err.message, err.status, err.causes) from None
    except ConfigError as err:
        raise APIError(err.message) from None


@dataclass(frozen=True)
class StageChange:
    """A stage of a watched run reached `phase` (with the stage's reason and message)."""

    stage: str
    phase: str
    reason: str = ""
    message: str = ""

    def __str__(self) -> str:
        return f"{self.stage}: {self.phase}" + (f" ({self.reason})" if self.reason else "")


def _stage_entries(run: Mapping[str, Any]) -> dict[str, Any]:
    return dict((run.get("status") or {}).get("stages") or {})


class Run:
    """A WorkflowRun on the server: follow it (`watch`, `wait`) and read its results."""

    def __init__(self, client: Client, project: str, workflow: str, name: str,
                 state: Mapping[str, Any] | None = None) -> None:
        self.client = client
        self.project = project
        self.workflow = workflow
        self.name = name
        self.path = f"/projects/{project}/workflows/{workflow}/workflowruns/{name}"
        self._state: dict[str, Any] = dict(state or {})

    @property
    def state(self) -> dict[str, Any]:
        """The run object as last read (`refresh` reads it again)."""
        return self._state

    def refresh(self) -> dict[str, Any]:
        """Read the run from the server."""
        with _api_errors():
            self._state = self.client.http.get(self.path)
        return self._state

    @property
    def phase(self) -> str:
        """The run's overall phase, read from the server until it is terminal."""
        if run_phase(self._state) not in TERMINAL_PHASES:
            self.refresh()
        return run_phase(self._state)

    @property
    def done(self) -> bool:
        return self.phase in TERMINAL_PHASES

    def stages(self) -> dict[str, str]:
        """Each stage's phase, as last read."""
        return {name: ((entry.get("status") or {}).get("phase") or "Pending")
                for name, entry in _stage_entries(self._state).items()}

    def _states(self, heartbeat: float | None) -> Generator[dict[str, Any], None, None]:
        with _api_errors():
            for state in run_states(self.client.http, self.path, heartbeat=heartbeat):
                self._state = state
                yield state

    def watch(self, *, echo: bool | TextIO = False) -> Iterator[StageChange]:
        """Each change of a stage's phase (from Pending on) until the run ends, from the
        server's run stream (reconnecting where it left off). `echo` prints each change
        too (to stdout for True, or to the given file)."""
        out = sys.stdout if echo is True else (echo or None)
        seen: dict[str, str] = {}
        for state in self._states(heartbeat=None):
            for name, entry in _stage_entries(state).items():
                status = entry.get("status") or {}
                phase = status.get("phase") or "Pending"
                if seen.get(name, "Pending") != phase:
                    seen[name] = phase
                    change = StageChange(name, phase, status.get("reason") or "",
                                         status.get("message") or "")
                    if out is not None:
                        print(change, file=out, flush=True)
                    yield change
            if run_phase(state) in TERMINAL_PHASES:
                if out is not None:
                    print(f"workflowrun {self.name}: {run_phase(state)}", file=out, flush=True)
                return

    def wait(self, timeout: float | None = None) -> str:
        """Follow the run until it ends; its final phase. `RunTimeout` after `timeout`
        seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if run_phase(self._state) in TERMINAL_PHASES:
            return run_phase(self._state)
        states = self._states(heartbeat=1.0)
        try:
            for state in states:
                if run_phase(state) in TERMINAL_PHASES:
                    return run_phase(state)
                if deadline is not None and time.monotonic() > deadline:
                    break
        finally:
            states.close()
        if run_phase(self.refresh()) in TERMINAL_PHASES:
            return run_phase(self._state)
        waited = f"after {timeout:g}s" if timeout is not None else "when its stream ended"
        raise RunTimeout(f"workflowrun {self.name} still {run_phase(self._state)} {waited}")

    def outputs(self, stage: Stage | str) -> dict[str, str]:
        """A stage's results (``key:value`` lines it wrote), as last read."""
        name = stage if isinstance(stage, str) else stage.name
        entry = _stage_entries(self._state).get(name) or _stage_entries(self.refresh()).get(
            name)
        if entry is None:
            raise KeyError(f"workflowrun {self.name} has no stage {name!r}")
        return {o["key"]: o.get("value") for o in entry.get("outputs") or []}

    def logs(self, stage: Stage | str | None = None, container: str | None = None) -> str:
        """A stage's log (the workload container's, or `container`'s), whole: a running
        stage is followed until it ends. Without `stage`, every stored log of the run, each
        under a ``==> stage <==`` header."""
        with _api_errors():
            if stage is None:
                return str(self.client.http.text(f"{self.path}/logs", container=container))
            name = stage if isinstance(stage, str) else stage.name
            return str(self.client.http.text(f"{self.path}/logstream", stage=name,
                                             container=container))

    def stop(self, *, force: bool = False) -> None:
        """End the run `Cancelled` (its pods get their grace period unless `force`)."""
        with _api_errors():
            self.client.http.request("PUT", f"{self.path}/stop",
                                     params={"force": "true"} if force else None)

    def __repr__(self) -> str:
        return f"Run({self.name!r}, phase={run_phase(self._state)!r})"


class Client:
    """A Cyclone server, as one tenant. Without arguments it uses the environment and
    then the CLI's current context (`cyclone up` writes one)."""

    def __init__(self, server: str | None = None, token: str | None = None,
                 tenant: str | None = None, *, context: str | None = None,
                 timeout: float = 30.0) -> None:
        with _api_errors():
            settings = resolve_settings(
                server or os.environ.get("CYCLONE_SERVER"),
                tenant or os.environ.get("CYCLONE_TENANT"),
                token or os.environ.get("CYCLONE_TOKEN"),
                context or os.environ.get("CYCLONE_CONTEXT"))
        self.http = CycloneClient(settings, timeout=timeout)

    @classmethod
    def from_context(cls, name: str | None = None) -> Client:
        """The CLI's context `name` (else its current one)."""
        return cls(context=name)

    @property
    def server(self) -> str:
        return self.http.settings.server

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def apply(self, project: str, *objects: Manifested | Mapping[str, Any],
              dry_run: bool = False) -> list[str]:
        """Create or update `objects` (Workflows bring their stages, resources and
        triggers) in `project`, creating the project when it does not exist; one line per
        object saying what happened. A WorkflowRun is created, never changed."""
        manifests = sorted(manifests_of(objects), key=_apply_rank)
        done: list[str] = []
        with _api_errors():
            if not any(m.get("kind") == "Project" for m in manifests):
                done += self._ensure_project(project, dry_run)
            for manifest in manifests:
                if manifest.get("kind") != "Project":
                    labels = manifest.setdefault("metadata", {}).setdefault("labels", {})
                    labels[keys.LABEL_PROJECT] = project
                done.append(apply_object(self.http, manifest, project, None, dry_run=dry_run))
        return done

    def _ensure_project(self, project: str, dry_run: bool) -> list[str]:
        try:
            self.http.get(f"/projects/{project}")
            return []
        except CliError as err:
            if err.status != 404:
                raise
        return [apply_object(self.http, {"apiVersion": keys.API_VERSION, "kind": "Project",
                                         "metadata": {"name": project}, "spec": {}},
                             None, None, dry_run=dry_run)]

    def run(self, workflow: Workflow | str | RunRequest, *, project: str | None = None,
            parameters: StageParameters | None = None,
            variables: Mapping[str, Value] | None = None,
            start_stages: Sequence[Stage | str] = (), end_stages: Sequence[Stage | str] = (),
            timeout: str | None = None, name: str | None = None) -> Run:
        """Start a run of `workflow` (or create the given `RunRequest`); its `Run`."""
        request = workflow if isinstance(workflow, RunRequest) else RunRequest(
            workflow, name=name, parameters=parameters, variables=variables,
            start_stages=start_stages, end_stages=end_stages, timeout=timeout,
            project=project)
        project = project or request.project
        if not project:
            raise APIError(f"workflowrun {request.name}: no project (pass project=)")
        body = request.to_dict(project)
        body["metadata"].pop("labels", None)
        with _api_errors():
            created = self.http.post(
                f"/projects/{project}/workflows/{request.workflow}/workflowruns", body)
        return Run(self, project, request.workflow, created["metadata"]["name"], created)

    def get_run(self, name: str, *, project: str, workflow: str) -> Run:
        """An existing run."""
        run = Run(self, project, workflow, name)
        run.refresh()
        return run


def _apply_rank(manifest: Mapping[str, Any]) -> int:
    kind = str(manifest.get("kind", ""))
    return APPLY_ORDER.index(kind) if kind in APPLY_ORDER else len(APPLY_ORDER)
