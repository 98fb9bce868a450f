"""Resource limits seen from inside the container, pause/unpause (freezer), top and update,
through the real docker CLI (same expectations against berthd and dockerd)."""

import re

from test_lifecycle import start_detached, state

CG = "/sys/fs/cgroup"


def cg_read(daemon, name, *paths):
    # cgroup v1 (this machine's layout) and v2 file names
    script = "; ".join(f"cat {p} 2>/dev/null || echo missing" for p in paths)
    rc, out, err = daemon.docker("exec", name, "sh", "-c", script)
    assert rc == 0, err
    return out.split()


def test_limits_visible_inside(daemon, image, names):
    n = names("lim")
    daemon.ok(*daemon.run_args("-d", "--name", n, "-m", "64m", "--cpus", "0.5",
                               "--pids-limit", "50", "--cpu-shares", "512", image, "sleep", "100"))
    mem, pids, quota, shares = cg_read(
        daemon, n, f"{CG}/memory/memory.limit_in_bytes", f"{CG}/pids/pids.max",
        f"{CG}/cpu/cpu.cfs_quota_us", f"{CG}/cpu/cpu.shares")
    assert (mem, pids, quota, shares) == ("67108864", "50", "50000", "512")
    c = daemon.inspect(n, "container")["HostConfig"]
    assert (c["Memory"], c["NanoCpus"], c["PidsLimit"]) == (67108864, 500000000, 50)


def test_update_changes_running_limits(daemon, image, names):
    n = names("upd")
    daemon.ok(*daemon.run_args("-d", "--name", n, "-m", "64m", image, "sleep", "100"))
    daemon.ok("update", "-m", "128m", "--memory-swap", "256m", "--pids-limit", "60", n)
    mem, pids = cg_read(daemon, n, f"{CG}/memory/memory.limit_in_bytes", f"{CG}/pids/pids.max")
    assert (mem, pids) == ("134217728", "60")
    assert daemon.inspect(n, "container")["HostConfig"]["Memory"] == 134217728


def test_pause_unpause(daemon, image, names):
    n = names("pause")
    start_detached(daemon, n, image, "sleep", "100")
    daemon.ok("pause", n)
    st = state(daemon, n)
    assert st["Status"] == "paused" and st["Paused"] is True and st["Running"] is True
    assert "(Paused)" in daemon.ok("ps", "--filter", f"name={n}", "--format", "{{.Status}}")
    rc, _, err = daemon.docker("exec", n, "true")
    assert rc != 0 and "is paused, unpause the container before exec" in err, err
    rc, _, err = daemon.docker("pause", n)
    assert rc != 0 and "is already paused" in err, err
    daemon.ok("unpause", n)
    assert state(daemon, n)["Status"] == "running"
    rc, _, err = daemon.docker("unpause", n)
    assert rc != 0 and "is not paused" in err, err
    # a paused container can be removed with -f
    daemon.ok("pause", n)
    daemon.ok("rm", "-f", n)


def test_top(daemon, image, names):
    n = names("top")
    start_detached(daemon, n, image, "sleep", "100")
    out = daemon.ok("top", n)
    lines = out.splitlines()
    assert re.split(r"\s+", lines[0].strip()) == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert len(lines) == 2 and lines[1].rstrip().endswith("sleep 100"), out
    pid = int(re.split(r"\s+", lines[1].strip())[1])
    assert pid == state(daemon, n)["Pid"]
    out = daemon.ok("top", n, "-o", "pid,comm")
    assert out.split()[:2] == ["PID", "COMMAND"] and out.split()[-1] == "sleep"
    m = names("topstop")
    daemon.ok(*daemon.run_args("--name", m, image, "true"))
    rc, _, err = daemon.docker("top", m)
    assert rc != 0 and "is not running" in err, err


def test_stats(daemon, image, names):
    n = names("stats")
    daemon.ok(*daemon.run_args("-d", "--name", n, "-m", "64m", image, "sleep", "100"))
    out = daemon.ok("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}", n)
    name, usage, _, limit, pids = out.split()
    assert name == n and limit == "64MiB" and pids == "1", out
    assert re.fullmatch(r"[\d.]+(B|KiB|MiB)", usage), usage
    s = daemon.client().containers.get(n).stats(stream=False)
    assert s["name"] == "/" + n
    assert s["memory_stats"]["limit"] == 64 * 1024 * 1024
    assert s["memory_stats"]["usage"] > 0
    assert s["cpu_stats"]["online_cpus"] >= 1 and s["cpu_stats"]["system_cpu_usage"] > 0
    assert s["pids_stats"]["current"] == 1


def test_default_seccomp_and_unconfined(daemon, image):
    # the default profile blocks namespace creation without CAP_SYS_ADMIN, like Docker's
    rc, _, err = daemon.docker(*daemon.run_args("--rm", image, "unshare", "-U", "true"))
    assert rc != 0 and "Operation not permitted" in err, err
    rc, _, err = daemon.docker(*daemon.run_args("--rm", "--security-opt", "seccomp=unconfined",
                                                image, "unshare", "-U", "true"))
    assert rc == 0, err
    rc, out, _ = daemon.docker(*daemon.run_args("--rm", image, "grep", "Seccomp:", "/proc/self/status"))
    assert out.split() == ["Seccomp:", "2"]


def test_device_mapping(daemon, image):
    rc, out, err = daemon.docker(*daemon.run_args("--rm", "--device", "/dev/fuse", image,
                                                  "stat", "-c", "%t %T %F", "/dev/fuse"))
    assert rc == 0, err
    assert out.split() == ["a", "e5", "character", "special", "file"], out
    rc, _, err = daemon.docker(*daemon.run_args("--rm", "--device", "/dev/nosuch-e2e", image, "true"))
    assert rc != 0 and "/dev/nosuch-e2e" in err


def test_blkio_throttles(daemon, image, names):
    """--blkio-weight-device and the --device-*-bps/iops throttles reach the blkio cgroup by
    the device's major:minor; a path that is not a block device is refused at start."""
    n = names("blk")
    daemon.ok(*daemon.run_args("-d", "--name", n, "--device-read-bps", "/dev/vda:1mb",
                               "--device-write-iops", "/dev/vda:300", image, "sleep", "100"))
    out = daemon.ok("exec", n, "cat", f"{CG}/blkio/blkio.throttle.read_bps_device",
                    f"{CG}/blkio/blkio.throttle.write_iops_device").split()
    assert out == ["254:0", "1048576", "254:0", "300"]
    c = daemon.inspect(n, "container")["HostConfig"]
    assert c["BlkioDeviceReadBps"] == [{"Path": "/dev/vda", "Rate": 1048576}]
    rc, _, err = daemon.docker(*daemon.run_args("--rm", "--device-read-bps", "/dev/null:1mb",
                                                image, "true"))
    # dockerd passes the char device's numbers on and runc's write fails ("no such device");
    # berthd refuses it by name before anything starts.
    want = "not a block device" if daemon.target == "berth" else "no such device"
    assert rc != 0 and want in err, err
