"""Healthchecks (`--health-*` and the image's HEALTHCHECK): State.Health in inspect, the ps
status suffix and `health` filter, and the health_status event; same expectations against
berthd and dockerd."""

from __future__ import annotations

import json
import subprocess
import time


def health(daemon, name):
    return daemon.inspect(name, "container")["State"].get("Health")


def wait_status(daemon, name, want, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        h = health(daemon, name)
        if h and h["Status"] == want:
            return h
        time.sleep(0.2)
    return health(daemon, name)


def test_healthy_then_unhealthy(daemon, image, names):
    n = names("hc")
    since = str(int(time.time()) - 1)
    daemon.ok(*daemon.run_args("-d", "--name", n, "--health-cmd", "test -f /tmp/ok && echo fine",
                               "--health-interval", "300ms", "--health-retries", "2", "--health-timeout", "5s",
                               image, "sh", "-c", "touch /tmp/ok; sleep 100"))
    try:
        h = wait_status(daemon, n, "healthy")
        assert h["Status"] == "healthy", h
        assert h["FailingStreak"] == 0
        assert h["Log"] and h["Log"][-1]["ExitCode"] == 0 and h["Log"][-1]["Output"].strip() == "fine"
        assert "(healthy)" in daemon.ok("ps", "--filter", f"name={n}", "--format", "{{.Status}}")
        assert n in daemon.ok("ps", "--filter", "health=healthy", "--format", "{{.Names}}").split()
        daemon.ok("exec", n, "rm", "/tmp/ok")
        h = wait_status(daemon, n, "unhealthy")
        assert h["Status"] == "unhealthy" and h["FailingStreak"] >= 2, h
        assert len(h["Log"]) <= 5
        assert "(unhealthy)" in daemon.ok("ps", "--filter", f"name={n}", "--format", "{{.Status}}")
        until = str(int(time.time()) + 1)
        ev = daemon.ok("events", "--since", since, "--until", until, "--filter", f"container={n}",
                       "--format", "{{json .}}")
        actions = [json.loads(l)["Action"] for l in ev.splitlines() if l.strip()]
        assert "health_status: healthy" in actions and "health_status: unhealthy" in actions, actions
    finally:
        daemon.docker("rm", "-f", n)


def test_image_healthcheck_and_no_healthcheck(daemon, make_image, names):
    img = make_image('HEALTHCHECK --interval=300ms CMD ["true"]')
    n, m = names("ihc"), names("nohc")
    daemon.ok(*daemon.run_args("-d", "--name", n, img, "sleep", "100"))
    daemon.ok(*daemon.run_args("-d", "--name", m, "--no-healthcheck", img, "sleep", "100"))
    try:
        assert wait_status(daemon, n, "healthy")["Status"] == "healthy"
        assert health(daemon, m) is None
        assert daemon.inspect(m, "container")["Config"]["Healthcheck"]["Test"] == ["NONE"]
    finally:
        daemon.docker("rm", "-f", n, m)


def test_removed_container_stays_removed_across_restart(daemon, image, names):
    """A health probe finishing after `rm -f` must not write the record back: after a daemon
    restart the container is still gone (Berth only: restarts the daemon under test)."""
    import pytest
    if daemon.target != "berth":
        pytest.skip("restarts the daemon under test")
    gone = []
    for i in range(5):
        n = names("hcrm")
        daemon.ok(*daemon.run_args("-d", "--name", n, "--health-cmd", "sleep 0.05",
                                   "--health-interval", "100ms", image, "sleep", "100"))
        import time as _t
        _t.sleep(0.15 + i * 0.07)
        daemon.ok("rm", "-f", n)
        gone.append(n)
    daemon.restart()
    names_after = daemon.ok("ps", "-a", "--format", "{{.Names}}").split()
    assert not set(gone) & set(names_after), names_after
