"""Ending the host-runtime containers left under a directory, and only those."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support.sandboxes import kill_containers_under


def container(pod_dir: Path) -> subprocess.Popen:
    """One process whose command line names a wrapper and a pod directory, as a host-runtime
    container's does."""
    pod_dir.mkdir(parents=True)
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                             "wrapper.sh", str(pod_dir / "state")])


def test_containers_under_the_directory_end_and_a_sibling_sharing_its_prefix_keeps_running(
        tmp_path):
    mine = container(tmp_path / "pytest-12" / "pod")
    neighbours = container(tmp_path / "pytest-123" / "pod")
    try:
        assert kill_containers_under(tmp_path / "pytest-12") == 1
        assert mine.wait(10) == -9
        assert neighbours.poll() is None
    finally:
        for process in (mine, neighbours):
            process.kill()
            process.wait()
