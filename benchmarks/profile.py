"""Profile a benchmark with py-spy and print where its time goes.

    python benchmarks/profile.py [--rate 100] [--top 20] [--keep FILE] -- scale.py --stages 2000

Runs the benchmark script (from benchmarks/) under `py-spy record --format raw` (every
thread, idle samples left out), then prints the functions that hold the most samples
themselves (self) and the ones most often on the stack (inclusive), each with its share
of all samples. `--keep` keeps the collapsed stacks for a flame graph.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent


def read_stacks(path: Path) -> Counter[tuple[str, ...]]:
    """Collapsed stacks (`frame;frame;… count`, outermost first) and their samples."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def frame_name(frame: str) -> str:
    """`function (path/to/module.py:line)` without the line: one entry per function."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rpartition(":")[0]
    for marker in ("/cyclone/", "/site-packages/", "/lib/python3"):
        if marker in path:
            path = path[path.index(marker) + 1:]
            break
    return f"{name} ({path})" if path else name


def summarize(stacks: Counter[tuple[str, ...]], top: int) -> str:
    total = sum(stacks.values()) or 1
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for stack, count in stacks.items():
        names = [frame_name(frame) for frame in stack]
        if names:
            own[names[-1]] += count
        for name in set(names):
            inclusive[name] += count
    lines = [f"{total:,} samples"]
    for title, counts in (("self", own), ("inclusive", inclusive)):
        lines.append(f"\n{title}:")
        lines += [f"{count / total:6.1%}  {name}" for name, count in counts.most_common(top)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=100, help="samples per second (100)")
    parser.add_argument("--top", type=int, default=20, help="functions listed (20)")
    parser.add_argument("--keep", type=Path, help="keep the collapsed stacks here")
    parser.add_argument("benchmark", nargs=argparse.REMAINDER,
                        help="-- script.py [its arguments]")
    args = parser.parse_args()
    command = [a for a in args.benchmark if a != "--"]
    if not command:
        parser.error("name the benchmark script after --")
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).is_file():
        print("py-spy is not installed (pip install -e '.[bench]')", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="cyclone-profile-") as tmp:
        raw = args.keep or Path(tmp) / "stacks.txt"
        done = subprocess.run([spy, "record", "--format", "raw", "--rate", str(args.rate),
                               "--threads", "--output", str(raw), "--",
                               sys.executable, str(HERE / command[0]), *command[1:]],
                              cwd=HERE)
        if done.returncode != 0 or not raw.is_file():
            return done.returncode or 1
        print(summarize(read_stacks(raw), args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
