"""Files of the server's stores that only its own user may read: directories 0700, files 0600.

Logs hold what stages printed and artifacts what they built, so no other local user may read
them. Modes are given at creation (never left to the umask), and a store opened on an
existing directory brings what is already there to the same modes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def make_private(root: Path) -> None:
    """Create ``root`` (0700) or bring it and everything under it to 0700/0600."""
    private_mkdir(root)
    _chmod(root, DIR_MODE)
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames:
            _chmod(Path(directory, name), DIR_MODE)
        for name in filenames:
            _chmod(Path(directory, name), FILE_MODE)


def _chmod(path: Path, mode: int) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISLNK(info.st_mode) and stat.S_IMODE(info.st_mode) != mode:
        os.chmod(path, mode)


def private_mkdir(path: Path) -> None:
    """``mkdir -p`` where every directory it creates is 0700."""
    missing: list[Path] = []
    current = Path(path)
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            pass


def open_private(path: Path, flags: int) -> int:
    """``os.open`` that creates the file 0600."""
    return os.open(path, flags, FILE_MODE)


def write_private_text(path: Path, text: str) -> None:
    """Write a whole file (created 0600, truncated if it exists)."""
    fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
