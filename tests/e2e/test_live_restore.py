"""Live restore under load: 20 containers (log writers every 10 ms, containers that exit while
the daemon is down, long runners, restart policies), berthd SIGKILLed and restarted. No log
line is lost, every state and exit code is right, and restart policies resume.

Berth only (it SIGKILLs the daemon under test).
"""

from __future__ import annotations

import os
import time
import uuid

import pytest

from helpers import BerthDaemon

pytestmark = pytest.mark.skipif(
    os.environ.get("BERTH_E2E_TARGET", "berth") != "berth", reason="SIGKILLs the daemon under test"
)

LINES = 400


def wait_for(pred, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    return pred()


def test_twenty_containers_survive_a_daemon_sigkill(workdir, rootfs_tar):
    d = BerthDaemon(workdir / f"berthd-live-{uuid.uuid4().hex[:6]}")
    d.start()
    try:
        d.ok("import", str(rootfs_tar), "live/busybox:1")
        img = "live/busybox:1"
        writers = [f"w{i}" for i in range(8)]
        for w in writers:
            d.ok("run", "-d", "--name", w, img, "sh", "-c",
                 f"i=0; while [ $i -lt {LINES} ]; do echo line-$i; echo err-$i >&2; i=$((i+1)); usleep 10000; done")
        exiters = {f"x{i}": 10 + i for i in range(6)}
        for name, code in exiters.items():
            d.ok("run", "-d", "--name", name, img, "sh", "-c", f"sleep 1.5; exit {code}")
        runners = [f"r{i}" for i in range(4)]
        for r in runners:
            d.ok("run", "-d", "--name", r, img, "sleep", "300")
        restarters = [f"p{i}" for i in range(2)]
        for p in restarters:
            d.ok("run", "-d", "--name", p, "--restart", "always", img, "sh", "-c", "sleep 1.5; exit 1")
        assert len(writers) + len(exiters) + len(runners) + len(restarters) == 20
        time.sleep(0.5)
        d.proc.kill()
        d.proc.wait()
        d.proc = None
        time.sleep(3.0)  # exiters and restarters exit while the daemon is down
        d.start()
        # Writers finish after the restart; their logs are complete and in order per stream.
        assert wait_for(lambda: all(d.inspect(w, "container")["State"]["Status"] == "exited" for w in writers))
        for w in writers:
            st = d.inspect(w, "container")["State"]
            assert st["ExitCode"] == 0, (w, st)
            rc, out, err = d.docker("logs", w)
            assert rc == 0
            assert out.split() == [f"line-{i}" for i in range(LINES)], f"{w}: stdout lines lost"
            assert err.split() == [f"err-{i}" for i in range(LINES)], f"{w}: stderr lines lost"
        for name, code in exiters.items():
            st = d.inspect(name, "container")["State"]
            assert (st["Status"], st["ExitCode"]) == ("exited", code), (name, st)
            assert st["FinishedAt"] != "0001-01-01T00:00:00Z"
        for r in runners:
            st = d.inspect(r, "container")["State"]
            assert st["Status"] == "running" and st["Pid"] > 0, (r, st)
            assert d.docker("exec", r, "true")[0] == 0
        for p in restarters:
            assert wait_for(lambda: d.inspect(p, "container")["RestartCount"] >= 1, 20), d.inspect(p, "container")
        # The restored daemon still stops what it re-attached.
        d.ok("stop", "-t", "1", runners[0])
        assert d.inspect(runners[0], "container")["State"]["Status"] == "exited"
    finally:
        if d.proc:
            for c in d.docker("ps", "-aq")[1].split():
                d.docker("rm", "-f", c)
            d.stop()
