"""docker version / docker info."""

import json
import os
import re


def host_cgroup_version() -> str:
    # Docker reports 2 only for a pure cgroup2 host; hybrid (v1 controllers) is 1.
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == "/sys/fs/cgroup":
                return "2" if " - cgroup2 " in line else "1"
    return "1"


def test_ping_answers(daemon):
    from helpers import ping

    assert ping(daemon.sock)


def test_version_shows_client_and_server(daemon):
    out = daemon.ok("version")
    assert "Client:" in out
    assert "Server:" in out
    assert re.search(r"API version:\s+1\.\d+", out.split("Server:", 1)[1]), out


def test_version_json_fields(daemon):
    v = json.loads(daemon.ok("version", "--format", "{{json .Server}}"))
    assert v["Os"] == "linux"
    assert v["Arch"] == "amd64"
    assert re.fullmatch(r"1\.\d+", v["ApiVersion"]), v
    assert re.fullmatch(r"1\.\d+", v["MinAPIVersion"]), v
    assert v["Version"]
    assert v["KernelVersion"] == os.uname().release


def test_info_fields(daemon):
    out = daemon.ok("info")
    server = out.split("Server:", 1)[1]
    fields = dict(
        (m.group(1).strip(), m.group(2).strip())
        for m in re.finditer(r"^ ([A-Za-z][\w ]*?):\s*(.*)$", server, re.M)
    )
    assert fields.get("Storage Driver"), server
    assert fields.get("Cgroup Version") == host_cgroup_version(), server
    assert fields.get("Cgroup Driver") in ("cgroupfs", "systemd"), server
    assert fields.get("Kernel Version") == os.uname().release, server
    assert fields.get("Docker Root Dir") == str(daemon.data_root), server
    assert fields.get("OSType") == "linux", server
    assert fields.get("Architecture") == "x86_64", server


def test_info_json_counts_are_consistent(daemon):
    info = json.loads(daemon.ok("info", "--format", "{{json .}}"))
    assert info["Containers"] == info["ContainersRunning"] + info["ContainersPaused"] + info["ContainersStopped"]
    assert isinstance(info["Images"], int)
    assert info["NCPU"] == os.cpu_count()
    assert info["DockerRootDir"] == str(daemon.data_root)
    assert info["OperatingSystem"]


def test_two_daemons_side_by_side(daemon, second_daemon_factory, rootfs_tar):
    other = second_daemon_factory("side")
    assert other.sock != daemon.sock
    assert str(other.data_root) != str(daemon.data_root)
    ref = "berth-e2e/only-in-second:v1"
    other.ok("import", str(rootfs_tar), ref)
    # visible in the second daemon, not in the first
    assert ref in other.ok("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    rc, _, err = daemon.docker("image", "inspect", ref)
    assert rc == 1 and "No such image" in err
    # both run containers at the same time
    rc, out, err = other.run("--rm", ref, "echo", "from-second")
    assert (rc, out) == (0, "from-second\n"), err
    info = json.loads(other.ok("info", "--format", "{{json .}}"))
    assert info["DockerRootDir"] == str(other.data_root)
