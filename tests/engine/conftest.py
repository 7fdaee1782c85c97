from __future__ import annotations

import pytest

from .harness import running_env


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """Where the test runs: "embedded" unless parametrized with `harness.BACKENDS`."""
    return getattr(request, "param", "embedded")


@pytest.fixture
async def env(tmp_path, backend):
    async with running_env(tmp_path, backend=backend) as environment:
        yield environment
