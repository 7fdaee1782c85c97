"""Which test files share a pytest-xdist worker.

Files go to workers whole (`--dist loadfile`), except the browser tests and the real-node
tests, which share one worker and so never run at the same time: the real node adds its
CNI bridge and a veth per pod to the host's network, and Chromium answers every address
change on the host by failing its requests in flight with `net::ERR_NETWORK_CHANGED`,
a failure of neither the page nor the server.
"""

from __future__ import annotations

from typing import Any

import pytest

SHARED_WORKER = ("tests/ui/", "tests/realnode/")


def scope_of(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    if path.startswith(SHARED_WORKER):
        return "browser-and-real-node"
    return path


@pytest.hookimpl(trylast=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class GroupedFiles(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return GroupedFiles(config, log)
