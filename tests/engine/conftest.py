from __future__ import annotations

import pytest

from .harness import running_env


@pytest.fixture
async def env(tmp_path):
    async with running_env(tmp_path) as environment:
        yield environment
