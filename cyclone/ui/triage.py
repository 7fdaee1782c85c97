"""Failure triage of a run: where it failed, why, the first error-looking log lines, and
what changed since the last green run of its workflow.

Pure: the caller passes the run, its workflow, the last green run (or None), a function
that gives the log lines of a stage, and optionally the current Stage objects and the
failing stage's pod.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cyclone.api import keys
from cyclone.engine.core.phases import CANCELLED, FAILED, REASON_UPSTREAM_FAILED
from cyclone.ui.dag_view import stage_phase
from cyclone.ui.insights import run_name, stage_statuses
from cyclone.ui.run_summary import commit_of, parameters_of, variables_of
from cyclone.ui.templating import parse_time

LogLines = Callable[[str], Iterable[str]]
"""Stage name → the lines of its workload container's stored log (none when there is no
log)."""

ERROR_WORDS = re.compile(
    r"error|fail|fatal|exception|panic|traceback|denied|not found", re.IGNORECASE)
CONTEXT_LINES = 2
MAX_EXCERPT_LINES = 20
FALLBACK_LINES = 10
MAX_LINE_CHARS = 500
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_CONTAINER_FAILURE = re.compile(
    r'container "(?P<container>[^"]+)" failed: (?P<reason>[^()]*?) '
    r"\(exit code (?P<code>-?\d+|None)\)")
STAGE_SPECS_ANNOTATION = keys.ANNOTATION_STAGE_SPECS
"""Where a run may record the specs of the Stages it ran with (JSON: name → spec)."""


@dataclass(frozen=True)
class LogLine:
    number: int
    """1-based, as the stage panel's `#L<n>` anchors count."""
    text: str
    match: bool


@dataclass(frozen=True)
class Change:
    name: str
    before: str | None
    """None: not set in the earlier run."""
    after: str | None
    """None: not set in this run."""


@dataclass(frozen=True)
class SpecDiff:
    stage: str
    diff: str
    """A unified diff of the two specs as indented JSON."""


@dataclass(frozen=True)
class Triage:
    stage: str | None
    """The first failing stage (by finish time); None when no stage failed."""
    reason: str
    message: str
    container: str | None = None
    exit_code: int | None = None
    log: list[LogLine] = field(default_factory=list)
    log_matched: bool = False
    """Whether the excerpt is error-looking lines (else the log's last lines)."""
    last_green: str | None = None
    commit: tuple[str, str] | None = None
    """(last green run's, this run's) when they differ."""
    parameters: list[Change] = field(default_factory=list)
    variables: list[Change] = field(default_factory=list)
    spec_diffs: list[SpecDiff] = field(default_factory=list)
    spec_note: str = ""

    @property
    def headline(self) -> str:
        cause = self.reason or "Failed"
        if self.stage is None:
            return f"Failed: {self.message or cause}"
        return f"Failed at {self.stage}: {cause}"

    @property
    def unchanged(self) -> bool:
        """Nothing differs from the last green run (as far as the runs tell)."""
        return not (self.commit or self.parameters or self.variables or self.spec_diffs)


def _trivial(name: str, entry: Mapping[str, Any], workflow: Mapping[str, Any] | None) -> bool:
    if entry.get("trivial"):
        return True
    for item in ((workflow or {}).get("spec") or {}).get("stages") or []:
        if isinstance(item, dict) and item.get("name") == name:
            return bool(item.get("trivial"))
    return False


def first_failure(run: Mapping[str, Any], workflow: Mapping[str, Any] | None = None
                  ) -> str | None:
    """The stage whose failure failed the run: the first by finish time among the Failed
    ones (a trivial stage's failure fails no run, so it comes after the others; a stage
    cancelled because an upstream failed is an effect, not a cause). With no Failed stage
    a Cancelled one (a timeout) is taken."""
    late = datetime.max.replace(tzinfo=UTC)
    ranked = []
    for name, entry in stage_statuses(run).items():
        status = entry.get("status") or {}
        phase = status.get("phase")
        if phase not in (FAILED, CANCELLED) or status.get("reason") == REASON_UPSTREAM_FAILED:
            continue
        ended = parse_time(status.get("lastTransitionTime")) or late
        ranked.append((phase != FAILED, _trivial(name, entry, workflow), ended, name))
    return min(ranked)[3] if ranked else None


def clean_line(line: str) -> str:
    """A log line as text: no ANSI escapes, no line end, cut to a readable length."""
    text = _ANSI.sub("", line).rstrip("\r\n")
    return text if len(text) <= MAX_LINE_CHARS else text[:MAX_LINE_CHARS] + "…"


def log_excerpt(lines: Iterable[str], *, context: int = CONTEXT_LINES,
                limit: int = MAX_EXCERPT_LINES, fallback: int = FALLBACK_LINES
                ) -> tuple[list[LogLine], bool]:
    """The first error-looking lines with `context` lines around each, at most `limit`
    lines in all; without any, the last `fallback` lines. The flag says which."""
    picked: dict[int, LogLine] = {}
    before: deque[tuple[int, str]] = deque(maxlen=max(context, 0))
    tail: deque[tuple[int, str]] = deque(maxlen=max(fallback, 0))
    after_left = 0
    for number, raw in enumerate(lines, start=1):
        text = clean_line(raw)
        tail.append((number, text))
        matched = bool(ERROR_WORDS.search(text))
        if matched and len(picked) < limit:
            for n, t in before:
                if len(picked) < limit:
                    picked.setdefault(n, LogLine(n, t, False))
            picked[number] = LogLine(number, text, True)
            after_left = context
        elif after_left and len(picked) < limit:
            picked[number] = LogLine(number, text, False)
            after_left -= 1
        elif len(picked) >= limit and not after_left:
            break
        before.append((number, text))
    if picked:
        return [picked[n] for n in sorted(picked)][:limit], True
    return [LogLine(n, t, False) for n, t in tail], False


def container_failure(message: str | None, pod: Mapping[str, Any] | None = None
                      ) -> tuple[str | None, int | None, str | None]:
    """(container, exit code, reason) of the failed container: from the pod's container
    statuses when given, else from the stage message the engine wrote."""
    statuses = (pod or {}).get("status") or {}
    for entry in [*(statuses.get("initContainerStatuses") or []),
                  *(statuses.get("containerStatuses") or [])]:
        terminated = ((entry or {}).get("state") or {}).get("terminated") or {}
        code = terminated.get("exitCode")
        if isinstance(code, int) and code != 0:
            return entry.get("name"), code, terminated.get("reason")
    found = _CONTAINER_FAILURE.search(message or "")
    if found is None:
        return None, None, None
    code = found.group("code")
    return (found.group("container"), None if code == "None" else int(code),
            found.group("reason").strip() or None)


def _changes(before: Iterable[tuple[str, str]], after: Iterable[tuple[str, str]]
             ) -> list[Change]:
    old, new = dict(before), dict(after)
    return [Change(name, old.get(name), new.get(name))
            for name in sorted(old.keys() | new.keys()) if old.get(name) != new.get(name)]


def parameter_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    """Run parameters (as `owner/name`) that differ between two runs."""
    def flat(run: Mapping[str, Any]) -> list[tuple[str, str]]:
        return [(f"{owner}/{name}", value) for owner, name, value in parameters_of(dict(run))]
    return _changes(flat(before), flat(after))


def variable_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    return _changes(variables_of(dict(before)), variables_of(dict(after)))


def recorded_stage_specs(run: Mapping[str, Any]) -> dict[str, Any] | None:
    """The stage specs a run recorded it ran with; None when it recorded none."""
    raw = ((run.get("metadata") or {}).get("annotations") or {}).get(STAGE_SPECS_ANNOTATION)
    if not raw:
        return None
    try:
        specs = json.loads(raw)
    except ValueError:
        return None
    return specs if isinstance(specs, dict) else None


def _spec_text(spec: Any) -> list[str]:
    if spec is None:
        return []
    return json.dumps(spec, indent=2, sort_keys=True, default=str).splitlines(keepends=True)


def spec_diffs(before: Mapping[str, Any], after: Mapping[str, Any],
               names: Iterable[str] | None = None) -> list[SpecDiff]:
    """A unified diff per stage whose spec differs (a stage on one side only included)."""
    result = []
    for name in sorted(set(names) if names is not None else before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        diff = "".join(difflib.unified_diff(_spec_text(old), _spec_text(new),
                                            f"{name} (last green)", f"{name} (this run)"))
        result.append(SpecDiff(name, diff))
    return result


def _stage_specs_since(run: Mapping[str, Any], last_green: Mapping[str, Any],
                       stages: Mapping[str, Mapping[str, Any]] | None
                       ) -> tuple[list[SpecDiff], str]:
    green_specs = recorded_stage_specs(last_green)
    run_specs = recorded_stage_specs(run)
    if green_specs is not None and run_specs is not None:
        return spec_diffs(green_specs, run_specs), ""
    current = {name: (obj or {}).get("spec") for name, obj in (stages or {}).items()}
    if green_specs is not None and current:
        return (spec_diffs(green_specs, current, green_specs.keys() | current.keys()),
                "This run does not record the stage specs it ran with: the last green run's "
                "are compared with the current Stage objects.")
    if not current:
        return [], "The runs do not record the stage specs they ran with."
    edited = sorted(name for name, obj in (stages or {}).items()
                    if int(((obj or {}).get("metadata") or {}).get("generation") or 1) > 1)
    note = ("The runs do not record the stage specs they ran with, so spec changes cannot "
            "be shown.")
    if edited:
        note += " Stages edited since they were created: " + ", ".join(edited) + "."
    return [], note


def triage(run: Mapping[str, Any], workflow: Mapping[str, Any] | None,
           last_green: Mapping[str, Any] | None, log_lines: LogLines, *,
           stages: Mapping[str, Mapping[str, Any]] | None = None,
           pod: Mapping[str, Any] | None = None) -> Triage:
    """What a person needs first about a failed run.

    `stages` are the current Stage objects of the workflow by name (for the spec
    comparison when the runs record no specs); `pod` is the failing stage's pod while it
    still exists (its containers' termination).
    """
    stage = first_failure(run, workflow)
    overall = (run.get("status") or {}).get("overall") or {}
    if stage is None:
        reason, message = overall.get("reason") or "", overall.get("message") or ""
        container = code = None
        excerpt, matched = [], False
    else:
        status = stage_statuses(run)[stage].get("status") or {}
        message = status.get("message") or ""
        container, code, container_reason = container_failure(message, pod)
        reason = container_reason or status.get("reason") or stage_phase(
            stage_statuses(run)[stage])
        if code is not None:
            reason = f"{reason} (exit code {code})"
        excerpt, matched = log_excerpt(log_lines(stage))
    found = Triage(stage, reason, message, container, code, excerpt, matched)
    if last_green is None:
        return found
    diffs, note = _stage_specs_since(run, last_green, stages)
    old_commit, new_commit = commit_of(dict(last_green)), commit_of(dict(run))
    return Triage(
        stage, reason, message, container, code, excerpt, matched,
        last_green=run_name(last_green),
        commit=(old_commit, new_commit) if old_commit != new_commit else None,
        parameters=parameter_changes(last_green, run),
        variables=variable_changes(last_green, run),
        spec_diffs=diffs, spec_note=note)
