"""A full disk: berthd's data root on a small filesystem (a tmpfs with a size limit). Importing,
loading and committing more than fits gives a clear error, leaves no half-written image or
temp file, the daemon keeps answering, and the same operation succeeds once space returns.

Berth only (it needs a daemon whose data root we choose).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from helpers import BerthDaemon

pytestmark = pytest.mark.skipif(
    os.environ.get("BERTH_E2E_TARGET", "berth") != "berth", reason="needs a berthd with a small data root"
)


@pytest.fixture
def small_daemon(workdir, rootfs_tar):
    root = workdir / f"berthd-full-{uuid.uuid4().hex[:6]}"
    root.mkdir()
    data = root / "data"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "berth-full", str(data)], check=True)
    d = BerthDaemon(root)
    try:
        d.start()
        rc, _, err = d.docker("import", str(rootfs_tar), "full/busybox:1")
        assert rc == 0, err
        yield d
    finally:
        for cid in d.docker("ps", "-aq")[1].split() if d.proc else []:
            d.docker("rm", "-f", cid)
        if d.proc:
            d.stop()
        for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
            mp = line.split()[4]
            if mp.startswith(str(root)) and mp != str(data):
                subprocess.run(["umount", "-l", mp], capture_output=True)
        subprocess.run(["umount", "-l", str(data)], check=False)


def big_tar(workdir: Path, rootfs_tar: Path, mb: int) -> Path:
    out = workdir / f"full-{mb}.tar"
    if not out.exists():
        blob = workdir / "full-blob"
        blob.write_bytes(os.urandom(mb << 20))
        subprocess.run(["cp", str(rootfs_tar), str(out)], check=True)
        subprocess.run(["tar", "-rf", str(out), "-C", str(workdir), "full-blob"], check=True)
        blob.unlink()
    return out


def temp_files(root: Path) -> list[str]:
    out = [str(p) for p in root.rglob("*") if ".tmp" in p.name and p.is_file() and not p.is_symlink()]
    ingest = root / "image" / "ingest"
    if ingest.is_dir():
        out += [str(p) for p in ingest.iterdir()]
    return out


def grow(d: BerthDaemon, size: str):
    subprocess.run(["mount", "-o", f"remount,size={size}", str(d.data_root)], check=True)


def test_import_that_does_not_fit_fails_cleanly_and_recovers(small_daemon, workdir, rootfs_tar):
    d = small_daemon
    tar = big_tar(workdir, rootfs_tar, 40)  # the blob plus its unpacked snapshot need ~80 MB
    rc, _, err = d.docker("import", str(tar), "full/big:1")
    assert rc != 0
    # The daemon answers as soon as the disk is full; a client still uploading may see the
    # connection close first.
    assert "no space left on device" in err.lower() or "broken pipe" in err.lower(), err
    assert d.docker("image", "inspect", "full/big:1")[0] != 0, "a half-written image is visible"
    assert temp_files(d.data_root) == []
    # The daemon keeps serving, and what was there still works.
    rc, out, err = d.docker("run", "--rm", "--pull", "never", "full/busybox:1", "echo", "alive")
    assert (rc, out.strip()) == (0, "alive"), err
    grow(d, "256m")
    rc, _, err = d.docker("import", str(tar), "full/big:1")
    assert rc == 0, err
    rc, out, err = d.docker("run", "--rm", "--pull", "never", "full/big:1", "sh", "-c", "wc -c < /full-blob")
    assert (rc, out.strip()) == (0, str(40 << 20)), err


def test_load_and_commit_that_do_not_fit(small_daemon, workdir, rootfs_tar):
    d = small_daemon
    grow(d, "160m")
    tar = big_tar(workdir, rootfs_tar, 40)
    rc, _, err = d.docker("import", str(tar), "full/big:2")
    assert rc == 0, err
    saved = workdir / "full-saved.tar"
    rc, _, err = d.docker("save", "-o", str(saved), "full/big:2")
    assert rc == 0, err
    assert d.docker("rmi", "full/big:2")[0] == 0
    # A container fills most of the remaining space; committing it cannot fit.
    rc, _, err = d.docker("run", "-d", "--pull", "never", "--name", "filler", "full/busybox:1", "sh", "-c",
                          "dd if=/dev/urandom of=/fill bs=1M count=60 2>/dev/null; sleep 300")
    assert rc == 0, err
    for _ in range(100):
        rc, out, _ = d.docker("exec", "filler", "sh", "-c", "wc -c < /fill")
        if out.strip() == str(60 << 20):
            break
        import time
        time.sleep(0.1)
    rc, _, err = d.docker("commit", "filler", "full/commit:1")
    assert rc != 0 and "no space left on device" in err.lower(), err
    assert d.docker("image", "inspect", "full/commit:1")[0] != 0
    rc, _, err = d.docker("load", "-i", str(saved))
    assert rc != 0 and "no space left on device" in err.lower(), err
    assert d.docker("image", "inspect", "full/big:2")[0] != 0
    assert temp_files(d.data_root) == []
    grow(d, "512m")
    rc, _, err = d.docker("commit", "filler", "full/commit:1")
    assert rc == 0, err
    rc, _, err = d.docker("load", "-i", str(saved))
    assert rc == 0, err
    rc, out, err = d.docker("run", "--rm", "--pull", "never", "full/commit:1", "sh", "-c", "wc -c < /fill")
    assert (rc, out.strip()) == (0, str(60 << 20)), err
