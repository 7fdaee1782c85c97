"""The podman/docker runtime's isolation, from a tenant's side: flags smuggled in as an image,
variables aimed at the CLI process, a subPath swapped for a symlink, and what a container may
do once it runs."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from cyclone.node.runtimes.base import ContainerExited, StartError
from cyclone.node.runtimes.container_argv import (
    NOBODY,
    ArgvError,
    create_command,
    qualified_image,
)
from cyclone.node.runtimes.container_cli import ContainerCliRuntime
from cyclone.node.volumes import Bind
from node.test_container_runtime import (
    TEST_IMAGE,
    _podman,
    images_dir,  # noqa: F401 (a fixture)
    launch,
    option,
    podman_runtime,
)

NOT_IMAGES = ["-v.:/host", "--volume=.:/host", "--env-file=./etc/shadow", "alpine 3",
              "alpine\n", "alpine\t", "reg.io/-x", "a/UPPER", "a//b", "a:", "a@sha256:12"]


@pytest.mark.parametrize("image", NOT_IMAGES)
def test_an_image_that_is_not_a_reference_is_refused(image: str) -> None:
    with pytest.raises(ArgvError, match=r"^image: .* is not an image reference$"):
        qualified_image(image)


def test_the_image_follows_the_end_of_the_flags(tmp_path: Path) -> None:
    created = create_command("docker", launch(tmp_path, args=["-v.:/host"]), [],
                             pull="missing", env_file="-")
    assert created.argv[-3:] == ["--", "docker.io/library/alpine:3.20", "-v.:/host"]
    assert qualified_image(f"reg.io:5000/a/b_c:1.0@sha256:{'a' * 64}").startswith("reg.io")


def test_containers_drop_capabilities_and_privileges_and_run_as_nobody(tmp_path: Path) -> None:
    argv = create_command("podman", launch(tmp_path), [], pull="missing", env_file="-").argv
    assert option(argv, "--cap-drop") == ["all"]
    assert option(argv, "--security-opt") == ["no-new-privileges"]
    assert int(option(argv, "--pids-limit")[0]) > 0
    assert option(argv, "--user") == [f"{NOBODY}:{NOBODY}"]
    only_user = create_command("podman", launch(tmp_path, run_as_user=1000), [],
                               pull="missing", env_file="-")
    assert option(only_user.argv, "--user") == [f"1000:{NOBODY}"]
    for fields in ({"run_as_user": 0}, {"run_as_user": 5, "run_as_group": 0}):
        with pytest.raises(ArgvError, match=r"\(root\) is not allowed under this runtime"):
            create_command("podman", launch(tmp_path, **fields), [], pull="missing",
                           env_file="-")


async def test_an_image_that_is_a_flag_never_reaches_podman(tmp_path: Path,
                                                            images_dir: Path,  # noqa: F811
                                                            ) -> None:
    with podman_runtime(tmp_path / "podman", images_dir) as runtime:
        with pytest.raises(StartError, match=r"^container 'main': image: '-v.:/host' is not an"):
            await runtime.start(launch(tmp_path, image="-v.:/host", args=[TEST_IMAGE],
                                       image_pull_policy="IfNotPresent"))
        assert _podman(runtime, "ps", "--all", "--quiet") == ""


def preload_library(tmp_path: Path, marker: Path) -> Path:
    """A shared library that records the uid of every process that loads it."""
    source = tmp_path / "mark.c"
    source.write_text(
        "#include <stdio.h>\n#include <unistd.h>\n"
        "__attribute__((constructor)) static void mark(void) {\n"
        f'  FILE *f = fopen("{marker}", "a");\n'
        '  if (f) { fprintf(f, "uid=%d\\n", (int)getuid()); fclose(f); }\n}\n')
    library = tmp_path / "mark.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    library.chmod(0o755)
    return library


async def test_a_container_runs_unprivileged_and_its_env_never_reaches_the_cli(
    tmp_path: Path, images_dir: Path,  # noqa: F811
) -> None:
    marker = tmp_path / "marker"
    library = preload_library(tmp_path, marker)
    volume = tmp_path / "volume"
    (volume / "sub").mkdir(parents=True)
    (volume / "sub" / "inside").write_text("in the volume\n")
    os.chown(volume / "sub", NOBODY, NOBODY)
    script = ("grep -E '^(Uid|CapEff|NoNewPrivs)' /proc/self/status;"
              ' echo "preload=$LD_PRELOAD token=$TOKEN"; cat /sub/inside; echo w > /sub/new')
    container = launch(tmp_path, image=TEST_IMAGE, command=["sh", "-c", script],
                       env={"LD_PRELOAD": str(library), "TOKEN": "s3cret"},
                       binds=[Bind(volume / "sub", "/sub", within=volume)],
                       image_pull_policy="IfNotPresent")
    with podman_runtime(tmp_path / "podman", images_dir) as runtime:
        await runtime.start(container)
        exited = await runtime.wait(container)
        mount_points = list((tmp_path / "podman" / "binds").iterdir())
        await runtime.remove_pod(container.pod_uid)
    assert isinstance(exited, ContainerExited) and exited.exit_code == 0, exited
    assert not marker.exists(), marker.read_text()
    log = container.log_path.read_text().split("\n")
    fields = {line.split(":")[0]: line.split()[1:] for line in log if ":\t" in line}
    assert fields["Uid"] == [str(NOBODY)] * 4
    assert fields["CapEff"] == ["0000000000000000"]
    assert fields["NoNewPrivs"] == ["1"]
    assert f"preload={library} token=s3cret" in log
    assert "in the volume" in log
    assert (volume / "sub" / "new").read_text() == "w\n"
    assert mount_points == []
    assert not [p for p in (tmp_path / "podman").iterdir() if p.name.startswith("env-")]


def listing_in_a_container(runtime: ContainerCliRuntime, source: str) -> list[str]:
    """What a podman container sees at `/sub` when `source` is bound there."""
    _podman(runtime, "create", "--name", "probe", "--network", "none", "-v", f"{source}:/sub",
            TEST_IMAGE)
    subprocess.run(["podman", "init", "probe"], env=runtime.env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid = _podman(runtime, "inspect", "--format", "{{.State.Pid}}", "probe").strip()
    return sorted(os.listdir(f"/proc/{pid}/root/sub"))


async def test_a_sub_path_swapped_for_a_symlink_after_it_was_opened_stays_in_its_volume(
    tmp_path: Path, images_dir: Path,  # noqa: F811
) -> None:
    volume = tmp_path / "volume"
    (volume / "sub").mkdir(parents=True)
    (volume / "sub" / "inside").write_text("")
    host = tmp_path / "host-secrets"
    host.mkdir()
    (host / "secret").write_text("host\n")
    container = launch(tmp_path, image=TEST_IMAGE,
                       binds=[Bind(volume / "sub", "/sub", within=volume)])
    with podman_runtime(tmp_path / "podman", images_dir) as runtime:
        sources, mounted = runtime.bind_sources(container)
        try:
            (volume / "sub").rename(volume / "sub.real")
            (volume / "sub").symlink_to(host)
            _podman(runtime, "load", "--input", str(images_dir / "busybox.oci.tar"))
            listed = await asyncio.to_thread(listing_in_a_container, runtime, sources[0])
        finally:
            await runtime.remove_pod(container.pod_uid)
    assert listed == ["inside"]
    assert not mounted[0].exists()
    assert (volume / "sub.real" / "inside").exists()
