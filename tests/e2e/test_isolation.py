"""Container isolation, seen from inside a default container, with the same expectations against
berthd and the reference dockerd: no host processes, no mounts, no modules, no clock changes,
no daemon socket, masked /proc, Docker's default capability set, a clean fd table, and a runtime
binary that a container cannot overwrite through /proc/<pid>/exe (the CVE-2019-5736 class).
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest

# Docker's default capability set (CapEff/CapPrm/CapBnd of a default container):
# CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW
# SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
DEFAULT_CAPS = 0x00000000A80425FB


def sh(daemon, image, script: str, *opts: str):
    return daemon.run("--rm", *opts, image, "sh", "-c", script)


def status_caps(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        if k.startswith("Cap"):
            out[k] = int(v.strip(), 16)
    return out


def host_cap_bnd() -> int:
    return status_caps(Path("/proc/self/status").read_text())["CapBnd"]


def test_default_capabilities_are_dockers(daemon, image):
    rc, out, err = sh(daemon, image, "grep ^Cap /proc/self/status")
    assert rc == 0, err
    caps = status_caps(out)
    assert caps["CapEff"] == caps["CapPrm"] == caps["CapBnd"] == DEFAULT_CAPS, out
    assert caps["CapInh"] == 0 and caps["CapAmb"] == 0, out


def test_privileged_is_the_way_to_all_capabilities(daemon, image):
    rc, out, err = sh(daemon, image, "grep ^CapEff /proc/self/status", "--privileged")
    if daemon.target == "ref" and rc != 0:
        # runc cannot start a privileged container on a host whose bounding set lacks
        # capabilities (this machine lacks CAP_SYS_RESOURCE); Berth grants what the host has.
        pytest.skip(f"reference runtime cannot run --privileged here: {err.strip()[:120]}")
    assert rc == 0, err
    assert status_caps(out)["CapEff"] == host_cap_bnd()
    rc, out, _ = sh(daemon, image, "grep ^CapEff /proc/self/status", "--cap-add", "SYS_ADMIN")
    assert status_caps(out)["CapEff"] == DEFAULT_CAPS | (1 << 21)


def test_no_host_processes_visible_or_signallable(daemon, image):
    me = os.getpid()
    rc, out, err = sh(daemon, image, f"ls -d /proc/[0-9]* | wc -l; kill -0 {me} 2>&1; echo rc=$?")
    assert rc == 0, err
    lines = out.split("\n")
    assert int(lines[0]) <= 3, out  # sh, ls, wc (the pipeline) at most
    assert "rc=1" in out, out


def test_cannot_mount_load_modules_or_set_the_clock(daemon, image):
    script = (
        "mount -t tmpfs none /mnt 2>/dev/null; echo mount=$?;"
        "date -s 2001-01-01 2>&1 | grep -q 'not permitted'; echo date_refused=$?;"
        "insmod /nonexistent.ko 2>&1 | grep -q 'Operation not permitted\\|not found\\|No such' ; echo insmod_err=$?;"
        "echo 1 > /proc/sys/kernel/sysrq 2>/dev/null; echo sysctl=$?;"
        "echo 1 > /proc/sysrq-trigger 2>/dev/null; echo sysrq=$?;"
        "hostname evil 2>/dev/null; echo hostname=$?"
    )
    rc, out, err = sh(daemon, image, script)
    assert rc == 0, err
    got = dict(line.split("=", 1) for line in out.split())
    assert got["mount"] != "0" and got["date_refused"] == "0", out
    assert got["sysctl"] != "0" and got["sysrq"] != "0", out
    assert got["hostname"] != "0", out  # no CAP_SYS_ADMIN, even in its own UTS namespace
    assert not (status_caps(sh(daemon, image, "grep ^CapEff /proc/self/status")[1])["CapEff"] & (1 << 16))


def test_masked_and_readonly_proc_paths(daemon, image):
    script = (
        "for p in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /proc/latency_stats; do "
        "  [ -e $p ] && echo $p=$(cat $p 2>/dev/null | wc -c) || echo $p=absent; done;"
        "ls /proc/acpi 2>/dev/null | wc -l;"
        "touch /sys/kernel/x 2>/dev/null; echo sys=$?"
    )
    rc, out, err = sh(daemon, image, script)
    assert rc == 0, err
    lines = out.split()
    for item in lines[:5]:
        path, _, size = item.partition("=")
        assert size in ("0", "absent"), f"{path} is readable: {out}"
    assert lines[5] == "0", out
    assert lines[6] != "sys=0", out


def test_daemon_socket_and_host_files_are_unreachable(daemon, image):
    sock = getattr(daemon, "sock", "/run/ref-docker.sock")
    rc, out, err = sh(daemon, image, f"[ -e {sock} ] && echo present || echo absent; "
                                     "[ -e /var/lib/berth ] && echo data || echo nodata; cat /etc/hostname")
    assert rc == 0, err
    assert out.split()[:2] == ["absent", "nodata"], out


def test_only_stdio_fds_in_the_container(daemon, image):
    # `ls` opens the directory it lists: fd 3 is its own.
    rc, out, err = sh(daemon, image, "ls /proc/self/fd | tr '\\n' ' '")
    assert rc == 0, err
    assert out.split() == ["0", "1", "2", "3"], out
    rc, out, err = sh(daemon, image, "cd /proc/self/cwd && pwd -P; readlink /proc/1/cwd")
    assert rc == 0 and out.split() == ["/", "/"], out


def pids_with_cmdline(*needles: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if all(n in cmd for n in needles):
                out.append(int(d.name))
    return out


def test_runtime_and_monitor_run_from_sealed_memfds(daemon, image, names):
    """The CVE-2019-5736 class: a container that reaches /proc/<pid>/exe of the runtime or of
    its monitor must not be able to overwrite the host binary. Berth's shim and runtime re-exec
    themselves from a sealed memfd, so the exe link is a memfd and opening it for writing fails
    even for root on the host."""
    if daemon.target != "berth":
        pytest.skip("inspects berth-shim and berth-runtime processes on the host")
    import subprocess
    import time

    n = names("memfd")
    cid = daemon.ok(*daemon.run_args("-d", "--name", n, image, "sleep", "100")).strip()
    runtime = Path(daemon.binary).with_name("berth-runtime")
    before = hashlib.sha256(runtime.read_bytes()).hexdigest()
    # A runtime command that enters the container and stays: `exec` waits for its process.
    ev = subprocess.Popen([str(runtime), "--root", str(daemon.exec_root / "runtime"), "exec", cid, "sleep", "20"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        checked = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and ev.poll() is None:
            link = os.readlink(f"/proc/{ev.pid}/exe")
            if "memfd" in link:
                break
            time.sleep(0.05)
        shims = pids_with_cmdline("berth-shim", cid)
        assert shims, "no berth-shim process for the container"
        for pid in [ev.pid, *shims]:
            link = os.readlink(f"/proc/{pid}/exe")
            assert link.startswith("/memfd:") and link.endswith("(deleted)"), f"pid {pid} runs {link}"
            # Refused: EPERM (write seal) or ETXTBSY (being executed); never opened.
            with pytest.raises(OSError) as exc:
                open(f"/proc/{pid}/exe", "r+b")
            assert exc.value.errno in (errno.EPERM, errno.EACCES, errno.ETXTBSY), exc.value
            checked.append(pid)
        assert len(checked) >= 2
    finally:
        ev.kill()
        ev.wait()
        daemon.docker("rm", "-f", n)
    assert hashlib.sha256(runtime.read_bytes()).hexdigest() == before
