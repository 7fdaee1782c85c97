"""A working copy of a run's status that the reconcile edits and then writes back once.

Every change goes through `RunState`, which applies the status rules of the core (a
terminal stage status is never overwritten, transition times kept) so that the reconcile
code only says what it observed.
"""

from __future__ import annotations

import copy
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cyclone.api.stagechunks import VERSIONS_KEY
from cyclone.engine.core.phases import PENDING, is_terminal
from cyclone.engine.core.status import apply_stage_status, make_status
from cyclone.engine.core.timefmt import parse_rfc3339


@dataclass
class RunState:
    run: dict
    now: datetime
    status: dict = field(init=False)

    def __post_init__(self) -> None:
        original = self.run.get("status") or {}
        self.status = dict(original)
        self.status["stages"] = dict(original.get("stages") or {})
        self._own: set[str] = set()

    @property
    def name(self) -> str:
        return self.run["metadata"]["name"]

    @property
    def namespace(self) -> str:
        return self.run["metadata"]["namespace"]

    @property
    def spec(self) -> dict:
        return self.run.get("spec") or {}

    @property
    def stages(self) -> dict[str, dict]:
        return self.status["stages"]

    @property
    def overall(self) -> dict:
        return self.status.get("overall") or {}

    @property
    def overall_phase(self) -> str | None:
        return self.overall.get("phase")

    @property
    def changed(self) -> bool:
        original = self.run.get("status") or {}
        return self.status != {**original, "stages": original.get("stages") or {}}

    def stage(self, name: str) -> dict:
        """The status entry of a stage, to change (created without a phase when missing).

        Entries are copied on first access here, so reading ``stages`` stays cheap and
        the run object from the cache is never changed.
        """
        if name not in self._own:
            self.stages[name] = copy.deepcopy(self.stages.get(name) or {})
            self._own.add(name)
        return self.stages[name]

    @property
    def touched_stages(self) -> AbstractSet[str]:
        """The stages whose entries this working copy changed or may have changed (every
        entry handed out by `stage`): the only ones that can differ from the run read."""
        return self._own

    def mutable(self, key: str) -> dict:
        """A top-level status map (e.g. ``notifications``) safe to change."""
        value = dict(self.status.get(key) or {})
        self.status[key] = value
        return value

    def stage_phase(self, name: str) -> str | None:
        return ((self.stages.get(name) or {}).get("status") or {}).get("phase")

    def set_stage(
        self, name: str, phase: str, reason: str | None = None, message: str | None = None
    ) -> bool:
        """Move a stage to a phase; False when its status is terminal already."""
        old = (self.stages.get(name) or {}).get("status")
        if old and is_terminal(old.get("phase")):
            return False
        if old and old.get("phase") == phase and old.get("reason") == reason and (
            old.get("message") == message
        ):
            return True
        entry = self.stage(name)
        entry["status"] = apply_stage_status(
            old, make_status(phase, self.now, reason, message), self.now
        )
        return True

    def set_overall(
        self, phase: str, reason: str | None = None, message: str | None = None
    ) -> None:
        old = self.status.get("overall")
        if old and is_terminal(old.get("phase")):
            return
        if old and old.get("phase") == phase and old.get("reason") == reason and (
            old.get("message") == message
        ):
            return
        new = apply_stage_status(old, make_status(phase, self.now, reason, message), self.now)
        if phase == PENDING:
            new.pop("startTime", None)
        self.status["overall"] = new
        if is_terminal(phase):
            self.status["completionTime"] = new["lastTransitionTime"]
            self.status.pop("queued", None)

    def deadline(self) -> datetime | None:
        value = self.status.get("deadline")
        return parse_rfc3339(value) if value else None

    def non_terminal_stages(self) -> list[str]:
        return [name for name in self.stages if not is_terminal(self.stage_phase(name))]

    def run_with_status(self) -> dict[str, Any]:
        """The run object carrying the working status (for builders, notifications and
        writes), without what the engine notes on a run it assembled from chunks."""
        run = {**self.run, "status": self.status}
        run.pop(VERSIONS_KEY, None)
        return run
