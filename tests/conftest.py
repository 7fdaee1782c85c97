from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.sandboxes import kill_containers_under

pytest_plugins = ["support.k8s_summary", "support.xdist_groups"]


@pytest.fixture(scope="session", autouse=True)
def _no_container_outlives_the_session(tmp_path_factory: pytest.TempPathFactory
                                       ) -> Iterator[None]:
    """Host-runtime containers are detached from their agent by design; none started under
    this session's temporary directories may keep running after it."""
    yield
    kill_containers_under(tmp_path_factory.getbasetemp())
