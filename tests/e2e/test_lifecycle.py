"""Detached containers: logs, ps, stop, rm, inspect, conflicts, restart persistence."""

import json
import re
import time

import pytest

from helpers import normalise, wait_for


def start_detached(daemon, name, image, *cmd):
    out = daemon.ok(*daemon.run_args("-d", "--name", name, image, *cmd))
    cid = out.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid), out
    return cid


def state(daemon, name):
    return daemon.inspect(name, "container")["State"]


def test_detached_run_and_ps(daemon, image, names):
    n = names("ps")
    cid = start_detached(daemon, n, image, "sleep", "100")
    out = daemon.ok("ps")
    header = out.splitlines()[0]
    assert re.split(r"\s{2,}", header.strip()) == [
        "CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], header
    row = [l for l in out.splitlines() if l.endswith(" " + n)]
    assert row, out
    cols = re.split(r"\s{2,}", row[0].strip())
    assert cols[0] == cid[:12]
    assert cols[1] == image
    assert cols[2] == '"sleep 100"'
    assert cols[4].startswith("Up "), cols
    assert n in daemon.ok("ps", "-a", "--format", "{{.Names}}").split()
    assert cid[:12] in daemon.ok("ps", "-q").split()
    assert cid in daemon.ok("ps", "-q", "--no-trunc").split()


def test_inspect_running(daemon, image, names):
    n = names("insp")
    cid = start_detached(daemon, n, image, "sleep", "100")
    c = daemon.inspect(n, "container")
    assert c["Id"] == cid
    assert c["Name"] == "/" + n
    assert c["State"]["Status"] == "running"
    assert c["State"]["Running"] is True
    assert c["State"]["Pid"] > 0
    assert c["State"]["ExitCode"] == 0
    assert c["Path"] == "sleep" and c["Args"] == ["100"]
    assert c["Config"]["Image"] == image
    assert c["Config"]["Cmd"] == ["sleep", "100"]
    assert c["Config"]["Hostname"] == cid[:12]
    assert c["Image"] == daemon.inspect(image, "image")["Id"]
    assert re.match(r"\d{4}-\d\d-\d\dT", c["Created"])
    assert re.match(r"\d{4}-\d\d-\d\dT", c["State"]["StartedAt"])
    assert c["LogPath"].endswith(f"{cid}-json.log")
    # the container's init is a real host process
    with open(f"/proc/{c['State']['Pid']}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[:2] == [b"sleep", b"100"]
    # by id and by unique id prefix
    assert daemon.inspect(cid, "container")["Id"] == cid
    assert daemon.inspect(cid[:12], "container")["Id"] == cid


def test_logs_of_running_container_keep_streams_apart(daemon, image, names):
    n = names("logs")
    start_detached(daemon, n, image, "sh", "-c", "echo out1; echo err1 >&2; echo out2; sleep 100")

    def got():
        rc, out, err = daemon.docker("logs", n)
        return (out, err) if out.count("\n") >= 2 and err else None

    out, err = wait_for(got, what="logs")
    assert out == "out1\nout2\n"
    assert err == "err1\n"


def test_logs_after_exit_and_wait(daemon, image, names):
    n = names("exited")
    start_detached(daemon, n, image, "sh", "-c", "echo done; echo oops >&2; exit 7")
    assert daemon.ok("wait", n).strip() == "7"
    rc, out, err = daemon.docker("logs", n)
    assert (rc, out, err) == (0, "done\n", "oops\n")
    st = state(daemon, n)
    assert st["Status"] == "exited" and st["ExitCode"] == 7 and st["Running"] is False
    assert st["Pid"] == 0
    row = daemon.ok("ps", "-a", "--filter", f"name={n}", "--format", "{{.Status}}").strip()
    assert re.fullmatch(r"Exited \(7\) .* ago", row), row
    assert n not in daemon.ok("ps", "--format", "{{.Names}}").split()


def test_logs_tail_and_timestamps(daemon, image, names):
    n = names("tail")
    start_detached(daemon, n, image, "sh", "-c", "seq 1 5")
    daemon.ok("wait", n)
    assert daemon.ok("logs", "--tail", "2", n) == "4\n5\n"
    ts = daemon.ok("logs", "-t", n).splitlines()
    assert len(ts) == 5 and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z 1$", ts[0]), ts


def test_stop_sigkill_after_grace_period(daemon, image, names):
    """`sleep` as PID 1 ignores SIGTERM: stop waits for the timeout, then SIGKILL -> 137."""
    n = names("stop")
    start_detached(daemon, n, image, "sleep", "100")
    t0 = time.monotonic()
    assert daemon.ok("stop", "-t", "1", n).strip() == n
    took = time.monotonic() - t0
    assert 0.9 <= took < 6, f"stop -t 1 took {took:.2f}s"
    st = state(daemon, n)
    assert st["Status"] == "exited" and st["ExitCode"] == 137, st
    assert re.match(r"\d{4}-\d\d-\d\dT", st["FinishedAt"])


def test_stop_with_term_handler(daemon, image, names):
    n = names("trap")
    start_detached(daemon, n, image, "sh", "-c",
                   "trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.1; done")
    wait_for(lambda: "ready" in daemon.docker("logs", n)[1], what="trap installed")
    t0 = time.monotonic()
    daemon.ok("stop", "-t", "10", n)
    took = time.monotonic() - t0
    assert took < 5, f"stop took {took:.2f}s although the container exits on TERM"
    assert state(daemon, n)["ExitCode"] == 42
    assert "got-term" in daemon.ok("logs", n)


def test_kill_gives_137(daemon, image, names):
    n = names("kill")
    start_detached(daemon, n, image, "sleep", "100")
    daemon.ok("kill", n)
    wait_for(lambda: state(daemon, n)["Status"] == "exited", what="exit after kill")
    assert state(daemon, n)["ExitCode"] == 137


def test_stop_already_stopped_is_ok(daemon, image, names):
    n = names("stop2")
    start_detached(daemon, n, image, "true")
    daemon.ok("wait", n)
    assert daemon.docker("stop", n)[0] == 0


def test_rm(daemon, image, names):
    n = names("rm")
    cid = start_detached(daemon, n, image, "true")
    daemon.ok("wait", n)
    assert daemon.ok("rm", n).strip() == n
    rc, out, err = daemon.docker("inspect", "--type", "container", n)
    assert rc == 1 and f"No such container: {n}" in err
    assert cid[:12] not in daemon.ok("ps", "-aq").split()


def test_rm_running_refused_then_force(daemon, image, names):
    n = names("rmrun")
    cid = start_detached(daemon, n, image, "sleep", "100")
    rc, out, err = daemon.docker("rm", n)
    assert rc == 1
    assert "You cannot remove a running container" in err and cid in err, err
    assert daemon.docker("rm", "-f", n)[0] == 0
    assert daemon.docker("inspect", "--type", "container", n)[0] == 1


def test_run_rm_removes_container(daemon, image, names):
    n = names("autorm")
    assert daemon.run("--rm", "--name", n, image, "true")[0] == 0
    assert n not in daemon.ok("ps", "-a", "--format", "{{.Names}}").split()


def test_name_conflict(daemon, image, names):
    n = names("dup")
    cid = start_detached(daemon, n, image, "sleep", "100")
    rc, out, err = daemon.run("-d", "--name", n, image, "true")
    assert rc == 125
    assert (f'Conflict. The container name "/{n}" is already in use by container "{cid}". '
            "You have to remove (or rename) that container to be able to reuse that name.") in err, err


@pytest.mark.parametrize("cmd", [["logs"], ["stop"], ["rm"], ["start"], ["kill"], ["wait"]])
def test_unknown_container(daemon, cmd):
    rc, out, err = daemon.docker(*cmd, "nosuchcontainer-e2e")
    assert rc == 1
    assert "No such container: nosuchcontainer-e2e" in err, err


def test_unknown_object_inspect(daemon):
    rc, out, err = daemon.docker("inspect", "nosuchthing-e2e")
    assert rc == 1
    assert out.strip() == "[]"
    assert "No such object: nosuchthing-e2e" in err


def test_create_then_start(daemon, image, names):
    n = names("create")
    cid = daemon.ok("create", "--pull", "never", *daemon.net_args, "--name", n, image, "echo", "started").strip()
    assert state(daemon, n)["Status"] == "created"
    row = daemon.ok("ps", "-a", "--filter", f"name={n}", "--format", "{{.Status}}").strip()
    assert row == "Created"
    daemon.ok("start", n)
    assert daemon.ok("wait", n).strip() == "0"
    assert daemon.ok("logs", n) == "started\n"
    assert daemon.inspect(n, "container")["Id"] == cid


def test_start_attach(daemon, image, names):
    n = names("starta")
    daemon.ok("create", "--pull", "never", *daemon.net_args, "--name", n, image, "sh", "-c", "echo hi; exit 5")
    rc, out, err = daemon.docker("start", "-a", n)
    assert (rc, out) == (5, "hi\n"), err


def ps_snapshot(daemon):
    out = daemon.ok("ps", "-a", "--no-trunc", "--format",
                    "{{.ID}}|{{.Names}}|{{.Image}}|{{.Command}}|{{.Status}}")
    # "Exited (3) 2 seconds ago" -> "Exited (3)"
    return sorted(re.sub(r" (Less than a second|About an? \w+|\d+ \w+) ago", "", l)
                  for l in out.splitlines())


def images_snapshot(daemon):
    # images created within the same second may be listed in either order
    return sorted(daemon.ok("images", "-a", "--no-trunc", "--format",
                            "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}").splitlines())


def test_state_survives_daemon_restart(daemon, image, make_image, names):
    img2 = make_image('CMD ["echo", "persisted"]', "ENV P=1")
    n1, n2, n3 = names("persist-a"), names("persist-b"), names("persist-c")
    start_detached(daemon, n1, img2)
    start_detached(daemon, n2, image, "sh", "-c", "echo o; echo e >&2; exit 3")
    daemon.ok("create", "--pull", "never", *daemon.net_args, "--name", n3, image, "true")
    daemon.ok("wait", n1, n2)
    before_ps = ps_snapshot(daemon)
    before_images = images_snapshot(daemon)
    before_inspect = {n: daemon.inspect(n, "container") for n in (n1, n2, n3)}

    daemon.restart()

    assert ps_snapshot(daemon) == before_ps
    assert images_snapshot(daemon) == before_images
    for n, before in before_inspect.items():
        after = daemon.inspect(n, "container")
        for key in ("Id", "Name", "Created", "Path", "Args", "Image"):
            assert after[key] == before[key], key
        for key in ("Status", "ExitCode", "FinishedAt"):
            assert after["State"][key] == before["State"][key], key
    assert daemon.ok("logs", n1) == "persisted\n"
    assert daemon.docker("logs", n2)[1:] == ("o\n", "e\n")
    # the restarted daemon runs containers
    rc, out, _ = daemon.run("--rm", img2)
    assert (rc, out) == (0, "persisted\n")
    # and the image config survived too
    assert daemon.inspect(img2, "image")["Config"]["Env"] == ["P=1"]
    daemon.ok("start", n3)
    assert daemon.ok("wait", n3).strip() == "0"


def test_rename(daemon, image, names):
    a, b, other = names("ren"), names("ren"), names("ren")
    cid = start_detached(daemon, a, image, "sleep", "100")
    start_detached(daemon, other, image, "sleep", "100")
    daemon.ok("rename", a, b)
    assert daemon.inspect(b, "container")["Name"] == "/" + b
    assert daemon.inspect(cid, "container")["Name"] == "/" + b
    rc, _, err = daemon.docker("inspect", "--type", "container", a)
    assert rc != 0
    rc, _, err = daemon.docker("rename", b, other)
    assert rc != 0 and "is already in use" in err, err
    # the old name is free again
    start_detached(daemon, a, image, "sleep", "100")
