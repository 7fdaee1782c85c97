"""A diamond DAG runs its stages in dependency order and passes outputs along."""

from __future__ import annotations

import asyncio

import pytest

from cyclone.api import keys

from .gates import Gate, Journal
from .harness import BACKENDS, outputs, shell_stage, stage_status, workflow, workflow_run
from .test_control import gate_script, stage_running

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


def noting(journal: Journal, stage: str, script: str) -> dict:
    """A stage that notes `<stage>-start`, runs `script`, then notes `<stage>-end`."""
    return shell_stage(stage, f"{journal.note(f'{stage}-start')} && {script} && "
                              f"{journal.note(f'{stage}-end')}")


async def noted(journal: Journal, entry: str, within: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while entry not in journal.entries:
        assert loop.time() < deadline, f"{entry} never noted: {journal.entries}"
        await asyncio.sleep(0.02)


async def test_diamond_dag_succeeds_in_dependency_order(env):
    journal, hold_a = Journal(), Gate()
    await env.apply(
        noting(journal, "a", gate_script(hold_a, "echo 'x:from-a' > /cyclone/results/__result__")),
        noting(journal, "b",
               "echo 'y:b-saw-${stages.a.outputs.x}' > /cyclone/results/__result__"),
        noting(journal, "c", "true"),
        noting(journal, "d", "echo \"z:${stages.b.outputs.y}\" > /cyclone/results/__result__"),
        workflow("diamond", [
            {"name": "a"},
            {"name": "b", "depends": ["a"]},
            {"name": "c", "depends": ["a"]},
            {"name": "d", "depends": ["b", "c"]},
        ]),
        workflow_run("diamond-1", "diamond"),
    )
    await env.wait_run("diamond-1", stage_running("a"), within=60)
    await noted(journal, "a-start")
    held = await env.looked_at("diamond-1")
    assert journal.entries == ["a-start"]
    assert [p["metadata"]["labels"][keys.LABEL_STAGE] for p in await env.pods()] == ["a"]
    for name in "bcd":
        assert stage_status(held, name).get("phase") in (None, "Pending"), held["status"]
    hold_a.touch()
    run = await env.wait_phase("diamond-1", "Succeeded", "Failed", within=60)
    assert run["status"]["overall"]["phase"] == "Succeeded", run["status"]
    for name in "abcd":
        assert stage_status(run, name)["phase"] == "Succeeded"
    assert outputs(run, "b") == {"y": "b-saw-from-a"}
    assert outputs(run, "d") == {"z": "b-saw-from-a"}
    order = journal.entries
    assert sorted(order) == sorted(f"{s}-{e}" for s in "abcd" for e in ("start", "end"))
    at = order.index
    for upstream, downstream in (("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")):
        assert at(f"{upstream}-end") < at(f"{downstream}-start"), order
    assert run["status"]["stages"]["d"]["depends"] == ["b", "c"]
