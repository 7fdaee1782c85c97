"""Ending the host runtime's containers a test left behind.

A container outlives its node agent on purpose (a restarted agent reattaches to it), so a
test that stops `cyclone up` or a node agent would leave long-running containers (the PVC
watchdog, say) behind. They are found by their wrapper, whose command line names the pod
directory under the test's data directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def _processes() -> dict[int, tuple[int, str]]:
    """pid → (parent pid, command line) of every process."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rpartition(")")[2].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        found[int(entry)] = (parent, command)
    return found


def kill_containers_under(path: Path) -> int:
    """SIGKILL every host-runtime container whose pod directory lies under ``path``, with
    all its descendants; returns how many processes were signalled. Only `path` itself
    counts, not a sibling its name is a prefix of (another session's or worker's
    ``pytest-12`` against ``pytest-123``)."""
    processes = _processes()
    marker = os.path.join(path, "")
    doomed = {pid for pid, (_, command) in processes.items()
              if "wrapper.sh" in command and marker in command}
    frontier = set(doomed)
    while frontier:
        frontier = {pid for pid, (parent, _) in processes.items()
                    if parent in frontier and pid not in doomed}
        doomed |= frontier
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return len(doomed)
