"""The merge patch of a reconcile's status change, in time proportional to what it touched.

`RunState` copies a stage entry the first time it is handed out to change
(`RunState.stage`), and entries change in no other way, so every entry outside
`RunState.touched_stages` is the very object the run was read with. The patch is
therefore that of the status without its stage entries, plus the diff of the touched
entries alone: the same patch `merge_patch_between` finds by walking every entry.
"""

from __future__ import annotations

from typing import Any

from cyclone.engine.core.runstate import RunState
from cyclone.kube.patching import merge_patch_between


def status_changes(state: RunState) -> dict[str, Any]:
    """``merge_patch_between(run status, working status)`` of ``state``."""
    before = state.run.get("status") or {}
    after = state.status
    old_stages, new_stages = before.get("stages"), after.get("stages")
    if not isinstance(old_stages, dict) or not isinstance(new_stages, dict):
        return merge_patch_between(before, after)
    changes = merge_patch_between(
        {key: value for key, value in before.items() if key != "stages"},
        {key: value for key, value in after.items() if key != "stages"})
    touched = state.touched_stages
    old_part = {name: old_stages[name] for name in touched if name in old_stages}
    new_part = {name: new_stages[name] for name in touched if name in new_stages}
    if len(old_stages) - len(old_part) != len(new_stages) - len(new_part):
        return merge_patch_between(before, after)
    stages = merge_patch_between(old_part, new_part)
    if stages:
        changes["stages"] = stages
    return changes
