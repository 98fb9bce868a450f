"""A container that fails to start leaves no mount, cgroup or process behind."""

import time

import pytest

from helpers import cgroup_dirs_named, mounts_under, processes_mentioning


def snapshot(daemon):
    return set(mounts_under(daemon.data_root, daemon.exec_root))


def settle(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def leftovers(daemon, cid, mounts_before):
    return {
        "new mounts": sorted(snapshot(daemon) - mounts_before),
        "mounts naming the id": [m for m in mounts_under(daemon.data_root, daemon.exec_root) if cid in m],
        "cgroups": cgroup_dirs_named(cid),
        "processes": processes_mentioning(cid),
    }


def assert_nothing_left(daemon, cid, mounts_before):
    settle(lambda: not any(leftovers(daemon, cid, mounts_before).values()))
    left = leftovers(daemon, cid, mounts_before)
    assert not any(left.values()), left


@pytest.mark.parametrize("cmd", [["/nonexistent"], ["nosuchcmd-e2e"], ["/etc/passwd"]])
def test_failed_start_leaves_nothing(daemon, image, names, cmd):
    n = names("fail")
    before = snapshot(daemon)
    rc, out, err = daemon.run("--name", n, image, *cmd)
    assert rc in (126, 127), (rc, err)
    assert cmd[0] in err
    cid = daemon.inspect(n, "container")["Id"]
    assert_nothing_left(daemon, cid, before)
    st = daemon.inspect(n, "container")["State"]
    assert st["Running"] is False and st["Pid"] == 0
    assert st["ExitCode"] == rc


def test_failed_start_with_rm_leaves_nothing(daemon, image, names):
    n = names("failrm")
    before = snapshot(daemon)
    rc, out, err = daemon.run("--rm", "--name", n, image, "/nonexistent")
    assert rc == 127
    assert "/nonexistent" in err
    # --rm: the container is gone too (removal may finish just after the CLI exits)
    assert settle(lambda: daemon.docker("inspect", "--type", "container", n)[0] == 1)
    assert settle(lambda: snapshot(daemon) <= before), sorted(snapshot(daemon) - before)


def test_failed_workdir_user_leaves_nothing(daemon, image, names):
    n = names("failuser")
    before = snapshot(daemon)
    rc, out, err = daemon.run("--name", n, "-u", "nosuchuser", image, "true")
    assert rc != 0
    cid = daemon.inspect(n, "container")["Id"]
    assert_nothing_left(daemon, cid, before)


def test_exited_container_leaves_nothing_running(daemon, image, names):
    n = names("exit")
    before = snapshot(daemon)
    cid = daemon.ok(*daemon.run_args("-d", "--name", n, image, "sh", "-c", "exit 0"))
    cid = cid.strip()
    daemon.ok("wait", n)
    assert_nothing_left(daemon, cid, before)


def test_stopped_container_leaves_nothing(daemon, image, names):
    n = names("stopped")
    before = snapshot(daemon)
    cid = daemon.ok(*daemon.run_args("-d", "--name", n, image, "sleep", "100")).strip()
    pid = daemon.inspect(n, "container")["State"]["Pid"]
    assert cgroup_dirs_named(cid), "a running container has a cgroup named after its id"
    daemon.ok("stop", "-t", "1", n)
    assert_nothing_left(daemon, cid, before)
    assert not _alive(pid), f"container init {pid} still alive"


def test_rm_running_force_leaves_nothing(daemon, image, names):
    n = names("rmf")
    before = snapshot(daemon)
    cid = daemon.ok(*daemon.run_args("-d", "--name", n, image, "sleep", "100")).strip()
    daemon.ok("rm", "-f", n)
    assert_nothing_left(daemon, cid, before)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[1].split()[0] != "Z"
    except OSError:
        return False
