"""`cyclone get workflowruns` reads runs a page at a time (`--chunk-size`) and prints them
as the whole list would."""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path

import httpx
import pytest

from cli.test_objects_cli import MANIFESTS, write
from cyclone.api import keys
from cyclone.cli.client import CycloneClient
from cyclone.cli.config import CliSettings
from cyclone.cli.paging import paged_items
from cyclone.kube.errors import AlreadyExists

from .conftest import ADMIN_TOKEN

NS = keys.tenant_namespace(keys.DEFAULT_TENANT)
RUNS = "/projects/demo/workflows/ci/workflowruns"
NAMES = ["r-3", "r-1", "r-6", "r-0", "r-5", "r-2", "r-4"]


class CountingTransport(httpx.HTTPTransport):
    """The real transport, remembering the query of every request."""

    def __init__(self) -> None:
        super().__init__()
        self.queries: list[dict[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.queries.append(dict(request.url.params))
        return super().handle_request(request)


@pytest.fixture
def runs(cyclone, live_server, tmp_path: Path) -> list[str]:
    """The runs of workflow `ci` (the server lives as long as the module)."""
    result = cyclone("apply", "-f", write(tmp_path, MANIFESTS))
    assert result.exit_code == 0, result.output
    for name in NAMES:
        with suppress(AlreadyExists):
                live_server.call(live_server.cluster.create({
                "apiVersion": keys.API_VERSION, "kind": "WorkflowRun",
                "metadata": {"name": name, "namespace": NS, "labels": {
                    keys.LABEL_PROJECT: "demo", keys.LABEL_WORKFLOW: "ci"}},
                "spec": {"workflowRef": {"apiVersion": keys.API_VERSION, "kind": "Workflow",
                                         "name": "ci", "namespace": NS}}}))
    return NAMES


def test_chunked_listing_prints_what_one_request_prints(cyclone, runs):
    whole = cyclone("get", "wfr", "-p", "demo", "-w", "ci", "--chunk-size", "0", "-o", "name")
    assert whole.exit_code == 0, whole.output
    for size in ("2", "500"):
        chunked = cyclone("get", "wfr", "-p", "demo", "-w", "ci", "--chunk-size", size,
                          "-o", "name")
        assert chunked.exit_code == 0, chunked.output
        assert chunked.output == whole.output
    assert sorted(whole.output.split()) == sorted(f"workflowrun/{n}" for n in runs)


def test_pages_are_read_with_limit_and_continue_until_the_last(live_server, runs):
    transport = CountingTransport()
    client = CycloneClient(CliSettings(server=live_server.url, token=ADMIN_TOKEN),
                           transport=transport)
    listed = paged_items(client, RUNS, 3)
    assert [q.get("limit") for q in transport.queries] == ["3", "3", "3"]
    assert transport.queries[0]["continue"] == ""
    assert all(q["continue"] for q in transport.queries[1:])
    assert [run["metadata"]["name"] for run in listed] == [
        run["metadata"]["name"] for run in client.items(RUNS)]
    assert sorted(run["metadata"]["name"] for run in listed) == sorted(runs)


def test_a_list_that_does_not_page_is_read_whole(live_server, runs):
    """A route (or an older server) that answers the whole list, with `metadata.total`."""
    client = CycloneClient(CliSettings(server=live_server.url, token=ADMIN_TOKEN))
    assert paged_items(client, "/projects/demo/stages", 1) == client.items(
        "/projects/demo/stages")
