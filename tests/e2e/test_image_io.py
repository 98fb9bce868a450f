"""Image interchange and container-to-image commands: commit, diff, export/import, save/load
(within one daemon and across berthd <-> the reference dockerd), image prune, history.

Differential: every test passes against berthd and against the reference dockerd.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import TARGET
from helpers import BerthDaemon, RefDaemon


def uniq(prefix: str) -> str:
    return f"e2e-io-{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def rmi(daemon):
    """Images to remove (on any daemon) after the test."""
    made: list[tuple] = []
    yield lambda d, ref: made.append((d, ref))
    for d, ref in reversed(made):
        d.docker("rmi", "-f", ref, timeout=60)


@pytest.fixture(scope="module")
def other_daemon(workdir, rootfs_tar):
    """A daemon of the other kind: the reference dockerd when testing berthd, a private
    berthd when testing the reference. Skips when it cannot be started."""
    if TARGET == "ref":
        d = BerthDaemon(workdir / "berthd-io")
        if not d.binary.exists():
            pytest.skip(f"no berthd binary at {d.binary}")
    else:
        d = RefDaemon.primary()
    try:
        d.start()
    except Exception as e:  # noqa: BLE001 - any start failure means "not available here"
        pytest.skip(f"cannot start the other daemon: {e}")
    try:
        yield d
    finally:
        d.stop()


def container_with_changes(daemon, names, image) -> str:
    c = names("io")
    daemon.ok(*daemon.run_args("--name", c, image, "sh", "-c",
                               "echo hi > /newfile; rm /bin/ls; mkdir -p /tmp/d; touch /etc/foo"))
    return c


def test_commit_runs_with_changes(daemon, image, names, rmi):
    c = container_with_changes(daemon, names, image)
    ref = f"{uniq('commit')}:v1"
    out = daemon.ok("commit", "-m", "test commit", "-a", "tester", "-c", 'CMD ["cat", "/newfile"]', c, ref).strip()
    rmi(daemon, ref)
    assert out.startswith("sha256:") and len(out) == 71
    img = daemon.inspect(ref, "image")
    assert img["Id"] == out
    assert img["Comment"] == "test commit"
    assert img["Author"] == "tester"
    assert img["Config"]["Cmd"] == ["cat", "/newfile"]
    assert img["Parent"] == daemon.inspect(image, "image")["Id"]
    assert len(img["RootFS"]["Layers"]) == 2
    # The committed image runs its new CMD and holds the container's changes.
    rc, so, se = daemon.run("--rm", ref)
    assert (rc, so) == (0, "hi\n"), se
    rc, so, _ = daemon.run("--rm", ref, "sh", "-c", "test -e /bin/ls; echo $?; test -d /tmp/d && echo dir")
    assert so.split() == ["1", "dir"]


def test_commit_without_changes_adds_no_layer(daemon, image, names, rmi):
    c = names("io")
    daemon.ok(*daemon.run_args("--name", c, image, "true"))
    id_ = daemon.ok("commit", c).strip()
    rmi(daemon, id_)
    img = daemon.inspect(id_, "image")
    assert img["RepoTags"] == []
    assert img["RootFS"]["Layers"] == daemon.inspect(image, "image")["RootFS"]["Layers"]
    assert img["Config"]["Cmd"] == ["true"]


def test_commit_missing_container(daemon):
    rc, _, err = daemon.docker("commit", "e2e-io-nosuch", "x:y")
    assert rc != 0 and "No such container: e2e-io-nosuch" in err


def test_diff(daemon, image, names):
    c = container_with_changes(daemon, names, image)
    lines = set(daemon.ok("diff", c).splitlines())
    assert {"C /bin", "D /bin/ls", "C /etc", "A /etc/foo", "A /newfile", "C /tmp", "A /tmp/d"} == lines
    api = daemon.client().api.diff(c)
    assert {"Path": "/newfile", "Kind": 1} in api and {"Path": "/bin/ls", "Kind": 2} in api


def test_diff_untouched_container_is_empty(daemon, image, names):
    c = names("io")
    daemon.ok("create", "--name", c, image, "true")
    assert daemon.ok("diff", c) == ""


def test_export_import_round_trip(daemon, image, names, rmi, tmp_path):
    c = container_with_changes(daemon, names, image)  # stopped: export mounts it itself
    out = tmp_path / "exp.tar"
    daemon.ok("export", "-o", str(out), c)
    listing = subprocess.run(["tar", "tf", str(out)], capture_output=True, text=True, check=True).stdout.split()
    assert "newfile" in listing and "etc/foo" in listing and "bin/sh" in listing
    assert "bin/ls" not in listing
    ref = f"{uniq('exported')}:1"
    daemon.ok("import", str(out), ref)
    rmi(daemon, ref)
    rc, so, se = daemon.run("--rm", ref, "cat", "/newfile")
    assert (rc, so) == (0, "hi\n"), se


def test_export_running_container(daemon, image, names):
    c = names("io")
    daemon.ok(*daemon.run_args("-d", "--name", c, image, "sleep", "100"))
    daemon.ok("exec", c, "sh", "-c", "echo live > /live")
    p = subprocess.run(["docker", "-H", daemon.host, "export", c], capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    listing = subprocess.run(["tar", "tf", "-"], input=p.stdout, capture_output=True, check=True).stdout.split()
    assert b"live" in listing


def save_cmd(daemon, out: Path, *refs: str):
    daemon.ok("save", "-o", str(out), *refs)
    members = subprocess.run(["tar", "tf", str(out)], capture_output=True, text=True, check=True).stdout.split()
    assert "manifest.json" in members
    return members


def test_save_load_same_daemon(daemon, image, names, rmi, tmp_path):
    c = container_with_changes(daemon, names, image)
    ref = f"{uniq('saved')}:v1"
    id_ = daemon.ok("commit", "-c", 'CMD ["cat", "/newfile"]', c, ref).strip()
    rmi(daemon, ref)
    out = tmp_path / "save.tar"
    save_cmd(daemon, out, ref)
    manifest = json.loads(subprocess.run(["tar", "xOf", str(out), "manifest.json"],
                                         capture_output=True, check=True).stdout)
    assert manifest[0]["RepoTags"] == [ref] and len(manifest[0]["Layers"]) == 2
    daemon.ok("rmi", ref)
    loaded = daemon.ok("load", "-i", str(out))
    assert loaded.strip() == f"Loaded image: {ref}"
    assert daemon.inspect(ref, "image")["Id"] == id_
    rc, so, se = daemon.run("--rm", ref)
    assert (rc, so) == (0, "hi\n"), se


def test_load_garbage_fails(daemon, tmp_path):
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar at all" * 100)
    rc, _, _ = daemon.docker("load", "-i", str(bad))
    assert rc != 0


def interchange(src, dst, image_on_src, names, rmi, tmp_path):
    c = names("io")
    src.ok(*src.run_args("--name", c, image_on_src, "sh", "-c", "echo moved > /moved"))
    ref = f"{uniq('xchg')}:v1"
    id_ = src.ok("commit", "-c", 'CMD ["cat", "/moved"]', c, ref).strip()
    rmi(src, ref)
    src.ok("rm", c)
    out = tmp_path / "x.tar"
    save_cmd(src, out, ref)
    assert dst.ok("load", "-i", str(out)).strip() == f"Loaded image: {ref}"
    rmi(dst, ref)
    # Same config bytes -> same image id on both sides.
    assert dst.inspect(ref, "image")["Id"] == id_
    rc, so, se = dst.run("--rm", ref)
    assert (rc, so) == (0, "moved\n"), se


def test_save_here_load_there(daemon, other_daemon, image, names, rmi, tmp_path):
    interchange(daemon, other_daemon, image, names, rmi, tmp_path)


def test_save_there_load_here(daemon, other_daemon, rootfs_tar, names, rmi, tmp_path):
    base = f"{uniq('base')}:1"
    other_daemon.ok("import", str(rootfs_tar), base)
    rmi(other_daemon, base)
    created: list[str] = []

    def other_names(prefix="c"):
        n = names(prefix)
        created.append(n)
        return n

    try:
        interchange(other_daemon, daemon, base, other_names, rmi, tmp_path)
    finally:
        for n in created:
            other_daemon.docker("rm", "-f", n)


def test_image_prune(daemon, image, names, rmi):
    c = names("io")
    daemon.ok(*daemon.run_args("--name", c, image, "sh", "-c", "echo x > /x"))
    dangling = daemon.ok("commit", c).strip()
    tagged_ref = f"{uniq('keep')}:v1"
    tagged = daemon.ok("commit", c, tagged_ref).strip()
    rmi(daemon, tagged_ref)
    rmi(daemon, dangling)
    report = daemon.client().api.prune_images(filters={"dangling": True})
    deleted = [d.get("Deleted") for d in report["ImagesDeleted"] or []]
    assert dangling in deleted
    assert tagged not in deleted
    assert report["SpaceReclaimed"] >= 0
    rc, _, _ = daemon.docker("image", "inspect", dangling)
    assert rc != 0
    daemon.inspect(tagged_ref, "image")
    # Nothing dangling left: the CLI shape for an empty prune.
    assert daemon.ok("image", "prune", "-f", "--filter", "label=e2e-io-none").strip() == "Total reclaimed space: 0B"
    # -a with a label filter that matches nothing deletes nothing.
    report = daemon.client().api.prune_images(filters={"dangling": False, "label": "e2e-io-none"})
    assert report == {"ImagesDeleted": None, "SpaceReclaimed": 0}


def test_history_of_committed_image(daemon, image, names, rmi):
    c = names("io")
    daemon.ok(*daemon.run_args("--name", c, image, "sh", "-c", "echo hi > /newfile"))
    ref = f"{uniq('hist')}:v1"
    id_ = daemon.ok("commit", "-m", "test commit", c, ref).strip()
    rmi(daemon, ref)
    rows = daemon.client().api.history(ref)
    assert len(rows) == 2
    top, base = rows
    assert top["Id"] == id_ and top["Tags"] == [ref] and top["Comment"] == "test commit"
    assert top["CreatedBy"] == "sh -c echo hi > /newfile"
    assert top["Size"] == 3
    assert base["Id"] == daemon.inspect(image, "image")["Id"]
    assert base["Tags"] == [image] and base["Size"] > 1_000_000
