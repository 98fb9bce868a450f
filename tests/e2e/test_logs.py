"""Container logs through the docker CLI and docker-py: json-file rotation, --tail/--since/
--until across rotated files, drivers (json-file, local, none, unknown), --details, follow
across rotations, stdout/stderr kept apart. Every test runs against both daemons."""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import time

import pytest

from helpers import DOCKER_CLI, cli_env

# 300 numbered lines on stdout, each followed by one on stderr.
NUMBERED = "i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo out$i; echo err$i >&2; done"


def run_done(daemon, name, *args):
    """Runs a container to completion (detached, then waits), so the CLI attaches nothing."""
    daemon.ok(*daemon.run_args("-d", "--name", name, *args))
    assert daemon.ok("wait", name).strip() == "0"


def numbers(text: str, prefix: str) -> list[int]:
    return [int(l[len(prefix):]) for l in text.splitlines() if l.startswith(prefix)]


def test_rotation_keeps_a_contiguous_suffix(daemon, image, names):
    n = names("rot")
    run_done(daemon, n, "--log-opt", "max-size=1k", "--log-opt", "max-file=3", image, "sh", "-c", NUMBERED)
    info = daemon.inspect(n)
    assert info["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "1k"}}
    path = info["LogPath"]
    assert os.path.exists(path) and os.path.exists(path + ".1") and os.path.exists(path + ".2")
    assert not os.path.exists(path + ".3")
    for p in (path, path + ".1", path + ".2"):
        assert os.path.getsize(p) <= 1024 + 64
    rc, out, err = daemon.docker("logs", n)
    assert rc == 0
    outs, errs = numbers(out, "out"), numbers(err, "err")
    # stdout and stderr are kept apart: no stderr line on stdout and vice versa.
    assert "err" not in out and "out" not in err
    # What is kept is the newest part, without holes.
    # (The two pipes are read in chunks, so one stream may come entirely before the other.)
    assert 0 < len(outs) + len(errs) < 600
    for got in (outs, errs):
        if got:
            assert got == list(range(got[0], got[0] + len(got))) and got[-1] <= 300
    assert 300 in outs or 300 in errs


def test_tail_since_until_across_rotated_files(daemon, image, names):
    n = names("tsu")
    # Pauses every 20 lines, so entries carry several distinct times.
    run_done(daemon, n, "--log-opt", "max-size=2k", "--log-opt", "max-file=4", image, "sh", "-c",
             "i=0; while [ $i -lt 200 ]; do i=$((i+1)); echo line$i; "
             "[ $((i % 20)) -eq 0 ] && usleep 20000; done; true")
    path = daemon.inspect(n)["LogPath"]
    assert os.path.exists(path + ".2")
    full = [l.split(" ", 1) for l in daemon.ok("logs", "-t", n).splitlines()]
    first = int(full[0][1][4:])
    assert first > 1 and full[-1][1] == "line200"
    assert [l[1] for l in full] == [f"line{i}" for i in range(first, 201)]
    # --tail reaching back through rotated files.
    assert daemon.ok("logs", "--tail", "70", n).splitlines() == [l[1] for l in full[-70:]]
    assert daemon.ok("logs", "--tail", "0", n) == ""
    assert daemon.ok("logs", "--tail", "all", n).count("\n") == len(full)
    # --since / --until at an entry in the oldest file (both bounds inclusive, as dockerd).
    ts = full[3][0]
    assert daemon.ok("logs", "--since", ts, n).splitlines() == [l[1] for l in full if l[0] >= ts]
    assert daemon.ok("logs", "--until", ts, n).splitlines() == [l[1] for l in full if l[0] <= ts]
    ts2 = full[-10][0]
    assert daemon.ok("logs", "--since", ts, "--until", ts2, n).splitlines() == [
        l[1] for l in full if ts <= l[0] <= ts2
    ]
    # --since with --tail: the tail of what is after since.
    assert daemon.ok("logs", "--since", ts2, "--tail", "3", n).splitlines() == [l[1] for l in full[-3:]]
    # A since after everything: nothing.
    assert daemon.ok("logs", "--since", f"{time.time() + 100:.0f}", n) == ""
    # Timestamps are RFC 3339 with nanoseconds, in order.
    assert [l[0] for l in full] == sorted(l[0] for l in full)


def test_streams_apart_in_docker_py(daemon, image, names):
    n = names("py")
    run_done(daemon, n, image, "sh", "-c", "echo o1; echo e1 >&2; echo o2; echo e2 >&2")
    c = daemon.client().containers.get(n)
    assert c.logs(stdout=True, stderr=False) == b"o1\no2\n"
    assert c.logs(stdout=False, stderr=True) == b"e1\ne2\n"
    both = c.logs()
    assert sorted(both.splitlines()) == [b"e1", b"e2", b"o1", b"o2"]
    assert c.logs(tail=4, stdout=False, stderr=True) == b"e1\ne2\n"
    # As dockerd: --tail takes the last N entries of the log, then filters the streams.
    n = names("py2")
    run_done(daemon, n, image, "sh", "-c", "echo e1 >&2; sleep 0.2; echo o1; echo o2")
    c = daemon.client().containers.get(n)
    assert c.logs(tail=1, stdout=False, stderr=True) == b""
    assert c.logs(tail=3, stdout=False, stderr=True) == b"e1\n"
    assert c.logs(tail=1, stdout=True, stderr=False) == b"o2\n"


def test_drivers(daemon, image, names):
    n = names("none")
    run_done(daemon, n, "--log-driver", "none", image, "echo", "hi")
    rc, _, err = daemon.docker("logs", n)
    assert rc != 0 and "configured logging driver does not support reading" in err
    assert daemon.inspect(n)["LogPath"] == ""
    n = names("local")
    run_done(daemon, n, "--log-driver", "local", "--log-opt", "max-size=1m", image, "sh", "-c", "echo a; echo b >&2")
    rc, out, err = daemon.docker("logs", n)
    assert (rc, out, err) == (0, "a\n", "b\n")
    assert daemon.inspect(n)["LogPath"] == ""
    rc, _, err = daemon.run("--rm", "--log-driver", "nosuchdriver", image, "true")
    assert rc != 0 and 'error looking up logging plugin nosuchdriver: plugin "nosuchdriver" not found' in err
    rc, _, err = daemon.run("--rm", "--log-opt", "bogus=1", image, "true")
    assert rc != 0 and "unknown log opt 'bogus' for json-file log driver" in err
    rc, _, err = daemon.run("--rm", "--log-driver", "local", "--log-opt", "labels=x", image, "true")
    assert rc != 0 and "unknown log opt 'labels' for log driver local" in err
    n = names("badsize")
    rc, _, err = daemon.run("--name", n, "--log-opt", "max-size=abc", image, "true")
    assert rc != 0 and "invalid size: 'abc'" in err


def test_details_show_attrs(daemon, image, names):
    n = names("det")
    run_done(daemon, n, "--log-opt", "labels=team", "--label", "team=a b", "-e", "STAGE=x",
             "--log-opt", "env=STAGE", image, "echo", "hi")
    assert daemon.ok("logs", "--details", n) == "STAGE=x,team=a+b hi\n"
    n = names("detre")
    run_done(daemon, n, "--log-opt", "labels-regex=^te", "--label", "team=x", "--label", "other=y",
             "--log-opt", "env-regex=^ST", "-e", "STAGE=p", "-e", "NOPE=q", image, "echo", "hi")
    assert daemon.ok("logs", "--details", n) == "STAGE=p,team=x hi\n"
    n = names("det0")
    run_done(daemon, n, image, "echo", "hi")
    assert daemon.ok("logs", "--details", n) == " hi\n"


def test_follow_across_rotation(daemon, image, names):
    n = names("fol")
    daemon.ok(*daemon.run_args("-d", "--name", n, "--log-opt", "max-size=1k", "--log-opt", "max-file=5", image,
                               "sh", "-c", "sleep 0.5; i=0; while [ $i -lt 150 ]; do i=$((i+1)); echo out$i; "
                               "echo err$i >&2; usleep 10000; done"))
    p = subprocess.run([DOCKER_CLI, "logs", "-f", n], capture_output=True, env=cli_env(daemon.host), timeout=60)
    assert p.returncode == 0
    out, err = p.stdout.decode(), p.stderr.decode()
    # Everything written after follow began arrives, in order, on the right stream.
    if daemon.target == "ref":
        # dockerd 20.10 repeats lines when a followed json-file rotates; Berth does not.
        assert sorted(set(numbers(out, "out"))) == list(range(1, 151))
        assert sorted(set(numbers(err, "err"))) == list(range(1, 151))
        return
    assert numbers(out, "out") == list(range(1, 151))
    assert numbers(err, "err") == list(range(1, 151))


def test_follow_tail_then_live_then_exit(daemon, image, names):
    n = names("fol2")
    daemon.ok(*daemon.run_args("-d", "--name", n, image, "sh", "-c",
                               "echo early1; echo early2; sleep 1.5; echo late; sleep 0.5"))
    time.sleep(0.7)
    t0 = time.monotonic()
    p = subprocess.run([DOCKER_CLI, "logs", "-f", "--tail", "1", n], capture_output=True,
                       env=cli_env(daemon.host), timeout=30)
    assert p.stdout.decode() == "early2\nlate\n"
    # The stream ends when the container exits (not after some poll interval or timeout).
    assert time.monotonic() - t0 < 5


def test_follow_until_stops(daemon, image, names):
    n = names("fol3")
    daemon.ok(*daemon.run_args("-d", "--name", n, image, "sh", "-c", "echo a; sleep 8"))
    time.sleep(0.5)
    until = f"{time.time() + 1.5:.3f}"
    t0 = time.monotonic()
    p = subprocess.run([DOCKER_CLI, "logs", "-f", "--until", until, n], capture_output=True,
                       env=cli_env(daemon.host), timeout=30)
    assert p.stdout.decode() == "a\n"
    if daemon.target == "berth":
        # Berth ends the stream when `until` passes; dockerd only when the container writes
        # again or exits (here: after its 30 s sleep).
        assert time.monotonic() - t0 < 10
    daemon.ok("rm", "-f", n)


@pytest.mark.skipif(os.environ.get("BERTH_E2E_TARGET", "berth") == "ref",
                    reason="Berth's default rotation (3 x 10 MB) and time index are Berth's own")
def test_berth_default_rotation_and_index(daemon, image, names):
    n = names("idx")
    run_done(daemon, n, image, "sh", "-c", "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo line$i; done")
    info = daemon.inspect(n)
    path = info["LogPath"]
    assert os.path.getsize(path + ".idx") % 16 == 0 and os.path.getsize(path + ".idx") >= 16
    assert daemon.ok("logs", "--tail", "2", n) == "line2999\nline3000\n"


@pytest.mark.skipif(os.environ.get("BERTH_E2E_TARGET", "berth") == "ref",
                    reason="measures berthd's own CPU time")
def test_idle_follow_does_not_poll(daemon, image, names):
    """Ten followers of a silent container cost the daemon (almost) no CPU: they wait on
    inotify and the container's state, not on a timer."""
    n = names("idle")
    daemon.ok(*daemon.run_args("-d", "--name", n, image, "sh", "-c", "echo start; sleep 30"))
    pid = daemon.proc.pid

    def cpu_ticks():
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])

    followers = [subprocess.Popen([DOCKER_CLI, "logs", "-f", n], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, env=cli_env(daemon.host)) for _ in range(10)]
    try:
        time.sleep(1.0)
        before = cpu_ticks()
        time.sleep(3.0)
        used = cpu_ticks() - before
        assert used <= 5, f"berthd used {used} ticks in 3 s with 10 idle followers"
        daemon.ok("exec", n, "sh", "-c", "echo late > /proc/1/fd/1")
    finally:
        daemon.ok("rm", "-f", n)
        outs = [p.communicate(timeout=20)[0] for p in followers]
    assert all(o == b"start\nlate\n" for o in outs), outs


@pytest.mark.skipif(os.environ.get("BERTH_E2E_TARGET", "berth") == "ref",
                    reason="SIGKILLs the daemon; the shared reference dockerd must not be killed")
def test_no_line_lost_across_daemon_sigkill(second_daemon_factory, rootfs_tar):
    """The shim owns the log: lines written while berthd is dead (and rotations meanwhile)
    are all there after it comes back, and a follower started afterwards sees the rest."""
    d = second_daemon_factory("logkill")
    d.ok("import", str(rootfs_tar), "berth-e2e/logkill:1")
    n = "e2e-logkill"
    d.ok(*d.run_args("-d", "--name", n, "--log-opt", "max-size=4k", "--log-opt", "max-file=50",
                     "berth-e2e/logkill:1", "sh", "-c",
                     "i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo line$i; usleep 5000; done"))
    time.sleep(0.5)
    d._kill()
    time.sleep(1.0)
    d.start()
    p = subprocess.run([DOCKER_CLI, "logs", "-f", n], capture_output=True, env=cli_env(d.host), timeout=60)
    assert numbers(p.stdout.decode(), "line") == list(range(1, 401))
    assert d.ok("wait", n).strip() == "0"
    assert numbers(d.ok("logs", n), "line") == list(range(1, 401))
    d.ok("rm", "-f", n)


@pytest.mark.skipif(os.environ.get("BERTH_E2E_TARGET", "berth") == "ref",
                    reason="Berth's time index; dockerd decodes the whole file for --since")
def test_since_and_tail_seek_on_a_big_log(daemon, image, names, tmp_path):
    """64 MiB of log written straight into a stopped container's log path (with the index the
    shim would have written): --since near the end and --tail answer without a scan."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("benchrun", Path(__file__).resolve().parents[2] / "bench" / "run.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    n = names("big")
    run_done(daemon, n, image, "true")
    path = Path(daemon.inspect(n)["LogPath"])
    since = bench.write_big_log(path, 64)
    sock = daemon.host[len("unix://"):]
    cid = daemon.inspect(n)["Id"]
    for q, want in ((f"since={since}", None), ("tail=100", 100)):
        t0 = time.monotonic()
        ms, frames = bench.api_get_count(sock, f"/containers/{cid}/logs?stdout=1&stderr=1&{q}")
        assert time.monotonic() - t0 < 0.5, f"{q}: {ms:.0f} ms"
        if want:
            assert frames == want
        else:
            # `since` is a whole second 1-2 s before the last entry (entries are 1 ms apart).
            assert 1000 <= frames <= 2001
            since_frames = frames
    # Without the index, --since still answers (by scanning), with the same entries.
    os.unlink(str(path) + ".idx")
    _, frames2 = bench.api_get_count(sock, f"/containers/{cid}/logs?stdout=1&stderr=1&since={since}")
    assert frames2 == since_frames


def test_docker_py_stream_follow_with_timestamps(daemon, image, names):
    n = names("pyf")
    daemon.ok(*daemon.run_args("-d", "--name", n, image, "sh", "-c",
                               "for i in 1 2 3; do echo o$i; echo e$i >&2; usleep 200000; done"))
    c = daemon.client().containers.get(n)
    got = b"".join(c.logs(stream=True, follow=True, timestamps=True, stdout=True, stderr=False))
    lines = got.decode().splitlines()
    assert [l.split(" ", 1)[1] for l in lines] == ["o1", "o2", "o3"]
    assert all(l.split(" ", 1)[0].endswith("Z") and len(l.split(" ", 1)[0]) == 30 for l in lines)
