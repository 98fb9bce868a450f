"""Network state across a daemon SIGKILL, and leaks over many runs (Berth only: it kills and
restarts its own daemon). After a restart: surviving containers keep their published ports and
names; a container that died while the daemon was down leaves no rule, veth, namespace file or
address behind; a graceful stop with nothing running removes Berth's table and bridges."""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid

import pytest

from helpers import BerthDaemon, wait_for

pytestmark = pytest.mark.skipif(
    os.environ.get("BERTH_E2E_TARGET", "berth") != "berth", reason="SIGKILLs the daemon under test"
)

BB = "/usr/bin/busybox"


def table_of(d: BerthDaemon) -> str:
    """This daemon's own table (named from its exec root; other daemons may be running)."""
    name = "berth-" + hashlib.sha256(str(d.exec_root).encode()).hexdigest()[:8]
    return subprocess.run(["nft", "list", "table", "ip", name], capture_output=True, text=True).stdout


def dnat_rules(d: BerthDaemon) -> list[str]:
    return [l.strip() for l in table_of(d).splitlines() if "dnat to" in l]


def bridge_of(d: BerthDaemon) -> str:
    return d.inspect("bridge", "network")["Options"]["com.docker.network.bridge.name"]


def veths_on(bridge: str) -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show", "master", bridge], capture_output=True,
                         text=True).stdout
    return [l.split(":")[1].strip().split("@")[0] for l in out.splitlines() if l.strip()]


def get(port: int) -> str:
    p = subprocess.run([BB, "nc", "-w", "2", "127.0.0.1", str(port)], input="", capture_output=True,
                       text=True, timeout=10)
    return p.stdout


@pytest.fixture
def netd(workdir, rootfs_tar):
    d = BerthDaemon(workdir / f"berthd-net-{uuid.uuid4().hex[:6]}")
    d.start()
    d.ok("import", str(rootfs_tar), "netcrash/busybox:1")
    yield d
    for cid in d.docker("ps", "-aq")[1].split():
        d.docker("rm", "-f", cid)
    for n in d.docker("network", "ls", "-q", "--filter", "type=custom")[1].split():
        d.docker("network", "rm", n)
    bridge = bridge_of(d)
    d.stop()
    d.check_clean_shutdown()
    # nothing running and stopped cleanly: no table, no bridge left on the host
    assert table_of(d) == ""
    assert subprocess.run(["ip", "link", "show", bridge], capture_output=True).returncode != 0


def serve(d, name, *args):
    d.ok("run", "-d", "--name", name, *args, "netcrash/busybox:1", "sh", "-c",
         "while true; do echo hello | nc -l -p 80; done")


def test_sigkill_restores_survivors_and_cleans_the_dead(netd):
    d = netd
    d.ok("network", "create", "appnet")
    serve(d, "keep", "--network", "appnet", "-p", "18581:80")
    serve(d, "dies", "-p", "18582:80")
    wait_for(lambda: "hello" in get(18581), what="keep answers")
    wait_for(lambda: "hello" in get(18582), what="dies answers")
    dies_pid = d.inspect("dies", "container")["State"]["Pid"]
    bridge = bridge_of(d)
    assert len(veths_on(bridge)) == 1
    # SIGKILL the daemon; while it is down, one container dies
    d.proc.kill()
    d.proc.wait()
    d.proc = None
    os.kill(dies_pid, 9)
    wait_for(lambda: not os.path.exists(f"/proc/{dies_pid}"), what="container exit")
    d.start()
    # the survivor: its port and its name still work
    wait_for(lambda: "hello" in get(18581), what="survivor's port after restart")
    rc, out, _ = d.docker("run", "--rm", "--network", "appnet", "netcrash/busybox:1", "sh", "-c",
                          "for i in 1 2 3 4 5; do nc -w 2 keep 80 </dev/null && break; sleep 0.3; done")
    assert "hello" in out, out
    # the dead one: no rule, no veth, no namespace file, no address
    wait_for(lambda: d.inspect("dies", "container")["State"]["Status"] == "exited", what="exited")
    rules = dnat_rules(d)
    assert not any(":18582" in r or "dport 18582" in r for r in rules), rules
    assert any("dport 18581" in r for r in rules), rules
    assert veths_on(bridge) == [], veths_on(bridge)
    netns = sorted(os.listdir(d.exec_root / "netns"))
    keep_id = d.inspect("keep", "container")["Id"]
    assert netns == [keep_id], netns
    assert d.inspect("dies", "container")["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == ""
    # and the port is free again
    serve(d, "again", "-p", "18582:80")
    wait_for(lambda: "hello" in get(18582), what="port reused")


def test_run_rm_cycles_leave_nothing(netd):
    """Leak check (short; bench/net_leak.py runs 500): run --rm with -p on a user network."""
    d = netd
    d.ok("network", "create", "leaknet")
    bridge = bridge_of(d)

    leak_bridge = d.inspect("leaknet", "network")["Options"].get("com.docker.network.bridge.name") \
        or "br-" + d.inspect("leaknet", "network")["Id"][:12]

    def snapshot():
        return (
            len(veths_on(bridge)) + len(veths_on(leak_bridge)),
            len(os.listdir(d.exec_root / "netns")),
            len(dnat_rules(d)),
            len(os.listdir(f"/proc/{d.proc.pid}/fd")),
        )

    d.ok("run", "--rm", "-p", "18591:80", "--network", "leaknet", "netcrash/busybox:1", "true")
    before = snapshot()
    for i in range(25):
        d.ok("run", "--rm", "-p", "18591:80", "--network", "leaknet", "netcrash/busybox:1", "true")
        d.ok("run", "--rm", "-p", "18592:80", "netcrash/busybox:1", "true")
    after = snapshot()
    assert after[:3] == before[:3], (before, after)
    assert after[3] <= before[3] + 2, (before, after)
    assert veths_on(bridge) == []


def test_sigkill_during_build_leaves_no_staging(netd, tmp_path):
    """A daemon killed in the middle of a build: after the restart, no build context, layer
    staging or mount is left under the data root, and the same build then succeeds."""
    import time
    d = netd
    (tmp_path / "Dockerfile").write_text("FROM netcrash/busybox:1\nRUN sleep 2\nCOPY . /ctx/\n")
    (tmp_path / "big").write_bytes(os.urandom(4 << 20))
    env = dict(os.environ, DOCKER_HOST=d.host, DOCKER_BUILDKIT="0")
    p = subprocess.Popen(["docker", "build", "-t", "crashbuild:1", str(tmp_path)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    d.proc.kill()
    d.proc.wait()
    d.proc = None
    p.wait(timeout=30)
    d.start()
    tmp = d.data_root / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []
    mounts = open("/proc/self/mountinfo").read()
    assert str(d.data_root / "tmp") not in mounts
    rc, out, err = d.docker("build", "-q", "-t", "crashbuild:1", str(tmp_path))
    assert rc == 0, err
