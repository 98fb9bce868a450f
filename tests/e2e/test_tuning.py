"""`berthd --cgroup-favor-dynmods`: the host's cgroup2 is remounted with favordynmods (so cgroup
migrations at container start skip an RCU grace period), other mount options are kept, and
containers still run. The previous setting is restored afterwards. Berth only.
"""

from __future__ import annotations

import ctypes
import os
import uuid
from pathlib import Path

import pytest

from helpers import BerthDaemon

pytestmark = pytest.mark.skipif(
    os.environ.get("BERTH_E2E_TARGET", "berth") != "berth", reason="a berthd flag"
)


def cgroup2() -> tuple[str, list[str]] | None:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        if right.split()[:1] == ["cgroup2"]:
            return left.split()[4], right.split()[2].split(",")
    return None


def remount(mp: str, opts: list[str]):
    data = ",".join(o for o in opts if o not in ("rw", "ro"))
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.mount(b"none", mp.encode(), b"cgroup2", 32, data.encode()) == 0, os.strerror(ctypes.get_errno())


def test_favor_dynmods_flag(workdir, rootfs_tar):
    m = cgroup2()
    if m is None:
        pytest.skip("no cgroup2 mount on this host")
    mp, before = m
    if "favordynmods" in before:
        remount(mp, [o for o in before if o != "favordynmods"])
    d = BerthDaemon(workdir / f"berthd-dyn-{uuid.uuid4().hex[:6]}")
    d.extra_args = ["--cgroup-favor-dynmods"]
    try:
        d.start()
        after = cgroup2()[1]
        assert "favordynmods" in after
        assert set(before) - {"favordynmods"} <= set(after), (before, after)
        assert "favordynmods" in d.log_path.read_text()
        assert d.docker("import", str(rootfs_tar), "dyn/busybox:1")[0] == 0
        rc, out, err = d.docker("run", "--rm", "--pull", "never", "dyn/busybox:1", "echo", "ok")
        assert (rc, out.strip()) == (0, "ok"), err
    finally:
        d.stop()
        remount(mp, before)
    assert cgroup2()[1] == before
