"""The SDK against the REST server beside the engine, on the embedded cluster and on a real
kube-apiserver: the diamond example and a `@script` workflow with a trigger are applied,
run, followed and read back; what the server refuses comes back as one line naming the field."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from engine.harness import BACKENDS
from engine.served import served_env
from support.sandboxes import kill_containers_under

from cyclone.sdk import APIError, Client, CronTrigger, Run, StageChange, Workflow, emit, script

pytestmark = pytest.mark.asyncio(loop_scope="module")
EXAMPLE = Path(__file__).parents[2] / "examples" / "sdk" / "diamond.py"


@script
def announce():
    emit(version="3.1")


@script
def count_words(text, repeat: int = 1):
    words = len(text.split()) * repeat
    print(f"{words} words")
    emit(words=words)


def diamond() -> Workflow:
    spec = importlib.util.spec_from_file_location("sdk_example_diamond_backends", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.diamond("sdk")


@dataclass
class Driven:
    backend: str
    applied: list[str]
    diamond: Run
    words: Run
    changes: list[StageChange]
    refused: APIError


def drive(base_url: str, token: str) -> tuple[list[str], Run, Run, list[StageChange], APIError]:
    """What a user's program does, in a thread of its own (the SDK is synchronous)."""
    client = Client(server=base_url, token=token, tenant="system")
    dag = diamond()
    with Workflow("words", project="sdk") as words_wf:
        release = announce()
        count_words(text=release.outputs.version + " is out now")
        CronTrigger("words-nightly", "0 3 * * *", disabled=True)
    applied = client.apply("sdk", dag, words_wf)
    first = client.run(dag, timeout="5m")
    second = client.run(words_wf, parameters={"count-words": {"repeat": "2"}})
    changes = list(first.watch())
    first.wait(timeout=60)
    second.wait(timeout=60)
    try:
        client.apply("sdk", {"apiVersion": "cyclone.dev/v1alpha1", "kind": "Workflow",
                             "metadata": {"name": "ghost"},
                             "spec": {"stages": [{"name": "no-such-stage"}]}})
    except APIError as err:
        refused = err
    else:
        raise AssertionError("the server accepted a workflow of a missing stage")
    return applied, first, second, changes, refused


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def driven(request, tmp_path_factory) -> AsyncIterator[Driven]:
    data_dir = tmp_path_factory.mktemp(f"sdk-{request.param}")
    async with served_env(data_dir, request.param) as served:
        found = await asyncio.to_thread(drive, served.base_url, served.admin_token)
        yield Driven(request.param, *found)
    kill_containers_under(data_dir)


async def test_apply_creates_the_project_then_every_object_in_apply_order(driven: Driven
                                                                          ) -> None:
    assert driven.applied == [
        "project/sdk created", "stage/version created", "stage/build-linux created",
        "stage/build-mac created", "stage/report created", "stage/announce created",
        "stage/count-words created", "workflow/diamond created", "workflow/words created",
        "workflowtrigger/words-nightly created"]


async def test_the_diamond_runs_to_the_same_outputs_on_each_cluster(driven: Driven) -> None:
    run = driven.diamond
    assert run.phase == "Succeeded", (driven.backend, run.state.get("status"))
    version = run.outputs("version")["version"]
    assert run.outputs("report") == {"release": f"app-{version}-linux,app-{version}-mac"}
    finished = [c.stage for c in driven.changes if c.phase == "Succeeded"]
    assert sorted(finished) == ["build-linux", "build-mac", "report", "version"]
    assert finished[0] == "version" and finished[-1] == "report"


async def test_a_script_stage_gets_an_upstream_output_and_a_run_parameter_as_arguments(
        driven: Driven) -> None:
    run = driven.words
    assert run.phase == "Succeeded", (driven.backend, run.state.get("status"))
    assert run.stages() == {"announce": "Succeeded", "count-words": "Succeeded"}
    assert run.outputs("count-words") == {"words": "8"}


async def test_a_refusal_of_the_server_is_one_line_naming_the_field(driven: Driven) -> None:
    refused = driven.refused
    assert refused.status == 422
    assert refused.message.startswith("Workflow 'ghost': ")
    assert "spec.stages[0].name" in refused.message and "no-such-stage" in refused.message
    assert "\n" not in refused.message
