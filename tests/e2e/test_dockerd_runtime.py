"""berth-runtime as a runtime of a real dockerd (`dockerd --add-runtime berth=...`):
containerd-shim-runc-v2 drives it exactly as it drives runc."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import REPO_ROOT as REPO, run_cli

RUNTIME = Path(os.environ.get("BERTH_RUNTIME", REPO / "target/release/berth-runtime"))
pytestmark = pytest.mark.skipif(shutil.which("dockerd") is None or not RUNTIME.exists(),
                                reason="needs dockerd (docker.io) and a built berth-runtime")


@pytest.fixture(scope="module")
def rt_docker(tmp_path_factory, rootfs_tar):
    d = tmp_path_factory.mktemp("rtdocker")
    env = dict(os.environ,
               REF_DOCKER_SOCK=str(d / "d.sock"), REF_DOCKER_ROOT=str(d / "root"),
               REF_DOCKER_EXEC_ROOT=str(d / "exec"), REF_DOCKER_PIDFILE=str(d / "d.pid"),
               REF_DOCKER_NETNS="berth-e2e-rt", REF_DOCKER_LOG=str(d / "dockerd.log"),
               REF_DOCKER_ARGS=f"--add-runtime berth={RUNTIME}")
    script = REPO / "scripts/ref-dockerd.sh"
    subprocess.run(["bash", str(script), "start"], env=env, check=True, capture_output=True)
    host = "unix://" + str(d / "d.sock")
    try:
        rc, _, err = run_cli(host, "import", str(rootfs_tar), "bb:rt")
        assert rc == 0, err
        yield host
    finally:
        rc, out, _ = run_cli(host, "ps", "-aq")
        if out.split():
            run_cli(host, "rm", "-f", *out.split())
        subprocess.run(["bash", str(script), "stop"], env=env, capture_output=True)
        subprocess.run(["ip", "netns", "delete", "berth-e2e-rt"], capture_output=True)


R = ["--runtime", "berth", "--network", "none", "--pull", "never"]


def test_run_output_and_exit_codes(rt_docker):
    rc, out, _ = run_cli(rt_docker, "run", "--rm", *R, "bb:rt", "sh", "-c", "echo $$; hostname")
    assert rc == 0
    pid, host = out.split()
    assert pid == "1" and re.fullmatch(r"[0-9a-f]{12}", host)
    assert run_cli(rt_docker, "run", "--rm", *R, "bb:rt", "sh", "-c", "exit 3")[0] == 3
    rc, _, err = run_cli(rt_docker, "run", "--rm", *R, "bb:rt", "/nonexistent")
    assert rc == 127 and 'exec: "/nonexistent": stat /nonexistent: no such file or directory' in err


def test_detached_exec_pause_stop(rt_docker):
    rc, cid, err = run_cli(rt_docker, "run", "-d", *R, "--name", "rt1", "bb:rt", "sleep", "100")
    assert rc == 0, err
    assert run_cli(rt_docker, "exec", "rt1", "echo", "exec-ok")[:2] == (0, "exec-ok\n")
    rc, out, _ = run_cli(rt_docker, "exec", "-t", "rt1", "tty")
    assert rc == 0 and out.startswith("/dev/pts/")
    assert "sleep 100" in run_cli(rt_docker, "top", "rt1")[1]
    assert run_cli(rt_docker, "pause", "rt1")[0] == 0
    assert run_cli(rt_docker, "inspect", "-f", "{{.State.Status}}", "rt1")[1].strip() == "paused"
    assert run_cli(rt_docker, "unpause", "rt1")[0] == 0
    assert run_cli(rt_docker, "stop", "-t", "1", "rt1")[0] == 0
    assert run_cli(rt_docker, "inspect", "-f", "{{.State.ExitCode}}", "rt1")[1].strip() == "137"
    assert run_cli(rt_docker, "rm", "rt1")[0] == 0


def test_tty_and_limits(rt_docker):
    rc, out, _ = run_cli(rt_docker, "run", "--rm", "-t", *R, "bb:rt", "tty")
    assert rc == 0 and out.strip() == "/dev/pts/0"
    rc, out, _ = run_cli(rt_docker, "run", "--rm", *R, "-m", "32m", "--pids-limit", "20", "bb:rt",
                         "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max")
    assert rc == 0 and out.split() == ["33554432", "20"]
