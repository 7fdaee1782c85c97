"""What holds secrets on disk is readable by its owner only: directories 0700, files 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cyclone.kube.embedded import EmbeddedCluster
from cyclone.node.layout import NodeLayout
from cyclone.server.artifacts.store import ArtifactStore
from cyclone.server.auth import load_or_create_admin_token
from cyclone.server.logs.store import LogRef, LogStore, RunRef
from cyclone.up import UpOptions, prepare_data_dir


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def modes_under(root: Path) -> set[tuple[str, int]]:
    found = {("dir", mode(root))}
    for directory, dirnames, filenames in os.walk(root):
        found |= {("dir", mode(Path(directory, d))) for d in dirnames}
        found |= {("file", mode(Path(directory, f))) for f in filenames}
    return found


async def test_embedded_store_file_and_wal_are_private(tmp_path) -> None:
    cluster = EmbeddedCluster(tmp_path / "cluster.db")
    await cluster.start()
    try:
        await cluster.create({"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": "n"}})
        files = sorted(tmp_path.glob("cluster.db*"))
        assert {p.name for p in files} >= {"cluster.db", "cluster.db-wal", "cluster.db-shm"}
        assert {mode(p) for p in files} == {0o600}
    finally:
        await cluster.close()


async def test_an_existing_readable_store_is_made_private_on_start(tmp_path) -> None:
    cluster = EmbeddedCluster(tmp_path / "cluster.db")
    await cluster.start()
    await cluster.close()
    for path in tmp_path.glob("cluster.db*"):
        os.chmod(path, 0o644)
    cluster = EmbeddedCluster(tmp_path / "cluster.db")
    await cluster.start()
    try:
        assert {mode(p) for p in tmp_path.glob("cluster.db*")} == {0o600}
    finally:
        await cluster.close()


def test_admin_token_is_private_even_when_it_existed(tmp_path) -> None:
    token = load_or_create_admin_token(tmp_path)
    assert mode(tmp_path / "admin-token") == 0o600
    os.chmod(tmp_path / "admin-token", 0o644)
    assert load_or_create_admin_token(tmp_path) == token
    assert mode(tmp_path / "admin-token") == 0o600


def test_log_store_directories_and_files_are_private(tmp_path) -> None:
    store = LogStore(tmp_path / "logs")
    writer = store.writer(LogRef(RunRef("t", "p", "w", "r"), "s", "main"))
    writer.append(b"secret output\n", 14)
    writer.finish()
    assert modes_under(tmp_path / "logs") == {("dir", 0o700), ("file", 0o600)}


def test_log_store_fixes_what_an_older_version_left_readable(tmp_path) -> None:
    old = tmp_path / "logs" / "t" / "p"
    old.mkdir(parents=True, mode=0o755)
    (old / "x.log").write_text("old")
    os.chmod(old / "x.log", 0o644)
    os.chmod(tmp_path / "logs", 0o755)
    LogStore(tmp_path / "logs")
    assert modes_under(tmp_path / "logs") == {("dir", 0o700), ("file", 0o600)}


async def test_artifact_store_directories_and_files_are_private(tmp_path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")

    async def body():
        yield b"tarball"

    await store.save(RunRef("t", "p", "w", "r"), "bin", body(), stage="s")
    assert modes_under(tmp_path / "artifacts") == {("dir", 0o700), ("file", 0o600)}


def test_node_logs_and_pod_state_are_private(tmp_path) -> None:
    layout = NodeLayout(tmp_path / "node")
    log = layout.log_path("ns", "pod", "main")
    log.parent.mkdir(parents=True)
    log.write_text("printed secret")
    os.chmod(log, 0o644)
    layout.prepare()
    assert mode(tmp_path / "node") == 0o700
    assert mode(tmp_path / "node" / "pods") == 0o700
    assert modes_under(layout.logs_dir) == {("dir", 0o700), ("file", 0o600)}


def test_up_data_dir_is_private(tmp_path) -> None:
    existing = tmp_path / "data"
    existing.mkdir(mode=0o755)
    os.chmod(existing, 0o755)
    assert mode(prepare_data_dir(UpOptions(data_dir=str(existing)))) == 0o700
    assert mode(prepare_data_dir(UpOptions(data_dir=str(tmp_path / "new")))) == 0o700
