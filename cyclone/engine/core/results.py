"""Stage results: the ``key:value`` lines a workload writes to its termination message."""

from __future__ import annotations

RESULTS_DIR = "/cyclone/results"
RESULT_FILE = f"{RESULTS_DIR}/__result__"
EXIT_CODE_FILE = f"{RESULTS_DIR}/__exit__"


def parse_results(message: str | None) -> list[dict[str, str]]:
    """Outputs ``[{key, value}]`` from ``key:value`` lines, in order.

    Each line is split on its first ``:``; key and value are stripped. Blank lines, lines
    without ``:`` and lines with an empty key are ignored. A key given twice keeps its last
    value, at the position of its first appearance.
    """
    if not message:
        return []
    outputs: dict[str, str] = {}
    for line in message.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or not key:
            continue
        outputs[key] = value.strip()
    return [{"key": key, "value": value} for key, value in outputs.items()]
