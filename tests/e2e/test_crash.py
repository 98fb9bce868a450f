"""Crash consistency: SIGKILL berthd at varying points during create, run, rm, commit, import,
load and tag/rmi; after each restart the state must be consistent (everything listed can be
inspected and used, nothing half-made is visible), leftovers of the interrupted operation are
cleaned up (temp files, ingest, mounts, cgroups), and the operation can be retried.

Berth only (it SIGKILLs the daemon under test). BERTH_CRASH_ROUNDS scales the number of kill
points per operation (default 6; the long run in docs/reliability.md uses 40).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from helpers import DOCKER_CLI, BerthDaemon

pytestmark = pytest.mark.skipif(
    os.environ.get("BERTH_E2E_TARGET", "berth") != "berth", reason="SIGKILLs the daemon under test"
)

ROUNDS = int(os.environ.get("BERTH_CRASH_ROUNDS", "6"))
DELAYS_MS = [0, 5, 15, 30, 60, 120, 250]


@pytest.fixture(scope="module")
def crashd(workdir, rootfs_tar):
    d = BerthDaemon(workdir / f"berthd-crash-{uuid.uuid4().hex[:6]}")
    d.start()
    rc, _, err = d.docker("import", str(rootfs_tar), "crash/busybox:1")
    assert rc == 0, err
    yield d
    for cid in d.docker("ps", "-aq")[1].split():
        d.docker("rm", "-f", cid)
    d.stop()
    d.check_clean_shutdown()


def kill_and_restart(d: BerthDaemon):
    assert d.proc is not None
    d.proc.kill()
    d.proc.wait()
    d.proc = None
    d.start()


def during(d: BerthDaemon, args: list[str], delay_ms: int, stdin_path: Path | None = None):
    """Starts `docker ARGS`, SIGKILLs berthd after delay_ms, restarts it; returns the CLI's rc."""
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        cli = subprocess.Popen([DOCKER_CLI, "-H", d.host, *args], stdin=stdin,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(delay_ms / 1000)
        kill_and_restart(d)
        try:
            cli.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            cli.kill()
            cli.communicate()
        return cli.returncode
    finally:
        if stdin_path:
            stdin.close()


def mounts_under(root: Path) -> list[str]:
    return [l for l in Path("/proc/self/mountinfo").read_text().splitlines() if str(root) in l.split()[4]]


def temp_leftovers(root: Path) -> list[str]:
    out = []
    for p in root.rglob("*"):
        name = p.name
        if p.is_symlink():
            continue
        if ".tmp" in name and p.is_file():
            out.append(str(p))
    ingest = root / "image" / "ingest"
    if ingest.is_dir():
        out += [str(p) for p in ingest.iterdir()]
    return out


def check_consistent(d: BerthDaemon):
    """Everything the daemon lists can be inspected and used."""
    rc, out, err = d.docker("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.State}}")
    assert rc == 0, err
    running = 0
    for line in out.splitlines():
        cid, state = line.split()
        rc, info, err = d.docker("inspect", "--type", "container", cid)
        assert rc == 0, f"listed container {cid} cannot be inspected: {err}"
        st = json.loads(info)[0]["State"]
        assert st["Status"] == state, (state, st)
        if st["Running"]:
            running += 1
            assert Path(f"/proc/{st['Pid']}").exists(), f"{cid} claims to run as pid {st['Pid']}"
    rc, out, err = d.docker("images", "-a", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}")
    assert rc == 0, err
    for line in out.splitlines():
        iid, ref = line.split()
        rc, info, err = d.docker("image", "inspect", iid)
        assert rc == 0, f"listed image {iid} cannot be inspected: {err}"
        if not ref.startswith("<none>"):
            rc, o, err = d.docker("run", "--rm", "--pull", "never", ref, "true")
            assert rc == 0, f"listed image {ref} cannot run: {err}"
    assert temp_leftovers(d.data_root) == [], "temp files survive a restart"
    return running


def rm_all(d: BerthDaemon):
    for cid in d.docker("ps", "-aq")[1].split():
        rc, _, err = d.docker("rm", "-f", cid)
        assert rc == 0, err
    leftovers = mounts_under(d.root)
    assert leftovers == [], "mounts left after removing every container:\n" + "\n".join(leftovers)
    for ctrl in ("memory", "pids", "cpu"):
        base = Path("/sys/fs/cgroup") / ctrl / "berth"
        if base.is_dir():
            # Other daemons' containers may live here; ours are all gone.
            assert not any(p.name.startswith(tuple(known_ids)) for p in base.iterdir() if known_ids), \
                f"cgroups of removed containers survive under {base}"


known_ids: set[str] = set()


def test_kill_during_create_and_run(crashd):
    rnd = random.Random(1)
    for i in range(ROUNDS):
        name = f"crash-run-{i}"
        delay = rnd.choice(DELAYS_MS)
        args = ["run", "-d", "--pull", "never", "--name", name, "crash/busybox:1", "sleep", "300"] if i % 2 else \
            ["create", "--pull", "never", "--name", name, "crash/busybox:1", "sleep", "300"]
        during(crashd, args, delay)
        check_consistent(crashd)
        rc, out, _ = crashd.docker("inspect", "--format", "{{.Id}}", name)
        if rc == 0:
            known_ids.add(out.strip()[:12])
            # The half-done run can be finished.
            rc, _, err = crashd.docker("start", name)
            assert rc == 0, f"start after a crash (delay {delay} ms): {err}\n{crashd.log_tail(30)}"
            st = crashd.docker("inspect", "--format", "{{json .State}}", name)[1]
            assert json.loads(st)["Running"], f"delay {delay} ms: {st}\n{crashd.log_tail(15)}"
        else:
            # Retry from scratch works: the name is free.
            rc, out, err = crashd.docker("run", "-d", "--pull", "never", "--name", name, "crash/busybox:1", "sleep", "300")
            assert rc == 0, f"retry after a crash (delay {delay} ms): {err}"
            known_ids.add(out.strip()[:12])
    assert check_consistent(crashd) == ROUNDS
    rm_all(crashd)


def test_kill_during_rm_and_stop(crashd):
    rnd = random.Random(2)
    for i in range(ROUNDS):
        name = f"crash-rm-{i}"
        rc, out, err = crashd.docker("run", "-d", "--pull", "never", "--name", name, "crash/busybox:1", "sleep", "300")
        assert rc == 0, err
        known_ids.add(out.strip()[:12])
        args = ["rm", "-f", name] if i % 2 else ["stop", "-t", "0", name]
        during(crashd, args, rnd.choice(DELAYS_MS))
        check_consistent(crashd)
        rc, _, err = crashd.docker("rm", "-f", name)
        assert rc == 0 or "No such container" in err, err
    rm_all(crashd)


def test_kill_during_commit(crashd):
    rnd = random.Random(3)
    rc, _, err = crashd.docker("run", "-d", "--pull", "never", "--name", "crash-commit", "crash/busybox:1", "sh", "-c",
                               "dd if=/dev/urandom of=/big bs=1M count=24 2>/dev/null; sleep 300")
    assert rc == 0, err
    time.sleep(1.5)
    for i in range(ROUNDS):
        tag = f"crash/commit:{i}"
        during(crashd, ["commit", "crash-commit", tag], rnd.choice(DELAYS_MS + [400, 800]))
        check_consistent(crashd)
        rc, _, _ = crashd.docker("image", "inspect", tag)
        if rc != 0:
            rc, _, err = crashd.docker("commit", "crash-commit", tag)
            assert rc == 0, f"retrying the commit: {err}"
        rc, out, err = crashd.docker("run", "--rm", "--pull", "never", tag, "sh", "-c", "wc -c < /big")
        assert rc == 0 and out.strip() == str(24 << 20), (out, err)
    rm_all(crashd)
    for i in range(ROUNDS):
        crashd.docker("rmi", f"crash/commit:{i}")


def test_kill_during_import_and_load(crashd, workdir, rootfs_tar):
    rnd = random.Random(4)
    big = workdir / "crash-big.tar"
    if not big.exists():
        # The busybox rootfs plus 32 MB of random data: long enough to be cut.
        subprocess.run(["cp", str(rootfs_tar), str(big)], check=True)
        blob = workdir / "crash-blob"
        blob.write_bytes(os.urandom(32 << 20))
        subprocess.run(["tar", "-rf", str(big), "-C", str(workdir), "crash-blob"], check=True)
    saved = workdir / "crash-saved.tar"
    rc, _, err = crashd.docker("import", str(big), "crash/big:src")
    assert rc == 0, err
    rc, _, err = crashd.docker("save", "-o", str(saved), "crash/big:src")
    assert rc == 0, err
    assert crashd.docker("rmi", "crash/big:src")[0] == 0
    for i in range(ROUNDS):
        if i % 2:
            during(crashd, ["import", "-", f"crash/big:{i}"], rnd.choice(DELAYS_MS), stdin_path=big)
            ref = f"crash/big:{i}"
            retry = ["import", str(big), ref]
        else:
            during(crashd, ["load", "-i", str(saved)], rnd.choice(DELAYS_MS))
            ref = "crash/big:src"
            retry = ["load", "-i", str(saved)]
        check_consistent(crashd)
        if crashd.docker("image", "inspect", ref)[0] != 0:
            rc, _, err = crashd.docker(*retry)
            assert rc == 0, f"retry {retry}: {err}"
        rc, out, err = crashd.docker("run", "--rm", "--pull", "never", ref, "sh", "-c", "wc -c < /crash-blob")
        assert rc == 0 and out.strip() == str(32 << 20), (out, err)
        crashd.docker("rmi", ref)
    rm_all(crashd)
