"""Berth in Berth: berthd runs inside a --privileged Berth container (data root on a named
volume, host libraries mounted read-only) and runs containers there. Also the capability
behaviour that makes it possible on hosts whose bounding set lacks some capabilities."""

import re
import time

import pytest

from helpers import REPO_ROOT


def host_cap_bnd():
    for line in open("/proc/self/status"):
        if line.startswith("CapBnd:"):
            return line.split()[1]


def test_privileged_gets_every_host_capability(daemon, image):
    if daemon.target == "ref":
        pytest.skip("runc's --privileged fails on hosts without CAP_SYS_RESOURCE (documented)")
    rc, out, err = daemon.docker("run", "--rm", "--privileged", image, "sh", "-c",
                                 "grep CapEff /proc/self/status; mount -t tmpfs x /tmp && echo mounted")
    assert rc == 0, err
    assert out.split()[1] == host_cap_bnd()
    assert out.split()[2] == "mounted"


def test_berthd_in_a_berth_container(daemon, image, names, tmp_path):
    if daemon.target == "ref":
        pytest.skip("Berth in Berth runs on berthd")
    n = names("bib")
    vol = f"bibdata{n[-8:]}"
    # The inner daemon runs the same build as the outer one.
    release = daemon.binary.parent if hasattr(daemon, "binary") else REPO_ROOT / "target/release"
    rc, out, err = daemon.docker(
        "run", "-d", "--name", n, "--privileged",
        "-v", "/lib:/lib:ro", "-v", "/lib64:/lib64:ro", "-v", "/usr/lib:/usr/lib:ro",
        "-v", f"{release}:/berth:ro", "-v", f"{vol}:/var/lib/berth",
        image, "sh", "-c", "mkdir -p /run/berth; exec /berth/berthd")
    assert rc == 0, err
    try:
        inner = "DOCKER_HOST=unix:///run/berth/berth.sock"
        deadline = time.time() + 20
        while time.time() < deadline:
            if daemon.docker("exec", n, "sh", "-c", f"{inner} /berth/berth version")[0] == 0:
                break
            time.sleep(0.2)
        # an image for the inner daemon: the outer container's own root, exported with tar
        rc, out, err = daemon.docker("exec", n, "sh", "-c",
            f"cd / && tar -cf /tmp/root.tar bin etc && {inner} /berth/berth import /tmp/root.tar inner:1"
            f" && {inner} /berth/berth run --rm inner:1 sh -c 'echo nested; hostname; echo $$'")
        assert rc == 0, err
        word, host, pid = out.split()[-3:]
        assert word == "nested" and re.fullmatch(r"[0-9a-f]{12}", host) and pid == "1"
        # The inner data root lives in the volume: its image store is there.
        mp = daemon.ok("volume", "inspect", "--format", "{{.Mountpoint}}", vol).strip()
        from pathlib import Path
        assert (Path(mp) / "image" / "repositories.json").is_file()
    finally:
        daemon.docker("rm", "-f", n)
        daemon.docker("volume", "rm", "-f", vol)
