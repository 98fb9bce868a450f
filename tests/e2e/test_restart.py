"""Restart policies with dockerd's semantics: on-failure with a retry limit, always, stop
cancelling it, no policy, and (berth) policies resuming after a daemon crash."""

from __future__ import annotations

import time
import uuid

import pytest

from helpers import BerthDaemon


def state(daemon, name):
    return daemon.inspect(name, "container")


def wait_for(pred, timeout=15.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def test_on_failure_with_retry_limit(daemon, image, names):
    n = names("onf")
    daemon.ok(*daemon.run_args("-d", "--name", n, "--restart", "on-failure:2", image, "sh", "-c", "exit 3"))
    try:
        done = wait_for(lambda: (lambda s: s["RestartCount"] == 2 and s["State"]["Status"] == "exited" and s)(state(daemon, n)))
        assert done, state(daemon, n)
        time.sleep(1.0)
        s = state(daemon, n)
        assert (s["RestartCount"], s["State"]["Status"], s["State"]["ExitCode"]) == (2, "exited", 3)
        assert s["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    finally:
        daemon.docker("rm", "-f", n)


def test_on_failure_does_not_restart_success(daemon, image, names):
    n = names("onok")
    daemon.ok(*daemon.run_args("-d", "--name", n, "--restart", "on-failure", image, "true"))
    try:
        time.sleep(1.0)
        s = state(daemon, n)
        assert (s["RestartCount"], s["State"]["Status"]) == (0, "exited")
    finally:
        daemon.docker("rm", "-f", n)


def test_always_restarts_until_stopped(daemon, image, names):
    n = names("alw")
    daemon.ok(*daemon.run_args("-d", "--name", n, "--restart", "always", image, "sh", "-c", "sleep 0.2; exit 1"))
    try:
        assert wait_for(lambda: state(daemon, n)["RestartCount"] >= 2), state(daemon, n)
        daemon.ok("stop", "-t", "1", n)
        s1 = state(daemon, n)
        assert s1["State"]["Status"] == "exited"
        time.sleep(1.5)
        s2 = state(daemon, n)
        assert s2["State"]["Status"] == "exited" and s2["RestartCount"] == s1["RestartCount"]
        # A user start re-arms the policy.
        daemon.ok("start", n)
        assert wait_for(lambda: state(daemon, n)["RestartCount"] > s2["RestartCount"]), state(daemon, n)
    finally:
        daemon.docker("rm", "-f", n)


def test_no_policy_stays_down(daemon, image, names):
    n = names("nop")
    daemon.ok(*daemon.run_args("-d", "--name", n, image, "sh", "-c", "exit 1"))
    try:
        time.sleep(1.0)
        s = state(daemon, n)
        assert (s["RestartCount"], s["State"]["Status"]) == (0, "exited")
    finally:
        daemon.docker("rm", "-f", n)


def test_policies_resume_after_a_daemon_crash(workdir, rootfs_tar):
    import os

    if os.environ.get("BERTH_E2E_TARGET", "berth") != "berth":
        pytest.skip("SIGKILLs the daemon under test")
    d = BerthDaemon(workdir / f"berthd-restart-{uuid.uuid4().hex[:6]}")
    d.start()
    try:
        d.ok("import", str(rootfs_tar), "rs/busybox:1")
        d.ok("run", "-d", "--name", "always1", "--restart", "always", "rs/busybox:1", "sh", "-c", "sleep 1; exit 1")
        d.ok("run", "-d", "--name", "stopped1", "--restart", "unless-stopped", "rs/busybox:1", "sleep", "100")
        d.ok("stop", "-t", "0", "stopped1")
        d.ok("run", "-d", "--name", "plain1", "rs/busybox:1", "sh", "-c", "sleep 1; exit 1")
        before = d.inspect("always1", "container")["RestartCount"]
        d.proc.kill()
        d.proc.wait()
        d.proc = None
        time.sleep(2.0)  # always1 and plain1 exit while the daemon is down
        d.start()
        assert wait_for(lambda: d.inspect("always1", "container")["RestartCount"] > before), d.inspect("always1", "container")
        assert d.inspect("plain1", "container")["State"]["Status"] == "exited"
        assert d.inspect("plain1", "container")["State"]["ExitCode"] == 1
        assert d.inspect("stopped1", "container")["State"]["Status"] == "exited"
    finally:
        if d.proc:
            for c in d.docker("ps", "-aq")[1].split():
                d.docker("rm", "-f", c)
            d.stop()


def test_force_remove_races_a_restarting_container(daemon, image, names):
    """`rm -f` while an on-failure policy keeps restarting: the container goes and stays gone,
    leaving no mount behind (the policy may not bring it back mid-removal)."""
    from helpers import mounts_under

    for delay in (0.0, 0.05, 0.12, 0.2, 0.3):
        n = names("rmrace")
        daemon.ok("run", "--pull", "never", "-d", "--name", n, "--restart", "on-failure:50",
                  image, "sh", "-c", "sleep 0.05; exit 3")
        time.sleep(delay)
        rc, _, err = daemon.docker("rm", "-f", n)
        assert rc == 0, err
        time.sleep(0.3)
        rc, _, _ = daemon.docker("inspect", "--type", "container", n)
        assert rc != 0, f"{n} came back after rm -f"
    if daemon.target == "berth":
        assert mounts_under(daemon.exec_root / "containers") == []
