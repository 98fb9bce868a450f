"""docker exec through the real CLI and docker-py: output, exit codes, stdin, -u/-w/-e,
-d, start failures (126 with dockerd's text on stdout), and exec into a stopped container."""

import re

from test_lifecycle import start_detached


def test_exec_output_and_codes(daemon, image, names):
    n = names("ex")
    start_detached(daemon, n, image, "sleep", "100")
    assert daemon.docker("exec", n, "echo", "hi")[:2] == (0, "hi\n")
    rc, out, err = daemon.docker("exec", n, "sh", "-c", "echo out; echo err >&2; exit 5")
    assert (rc, out, err) == (5, "out\n", "err\n")
    assert daemon.docker("exec", n, "sh", "-c", "exit 127")[0] == 127


def test_exec_sees_container_namespaces(daemon, image, names):
    n = names("exns")
    cid = start_detached(daemon, n, image, "sleep", "100")
    rc, out, _ = daemon.docker("exec", n, "sh", "-c", "hostname; ps -o pid,comm | grep -c sleep")
    assert rc == 0
    host, sleeps = out.split()
    assert host == cid[:12]
    assert sleeps == "1"
    # the exec'd shell is not PID 1: the container's command is
    rc, out, _ = daemon.docker("exec", n, "sh", "-c", "echo $$; cat /proc/1/cmdline | tr '\\0' ' '")
    pid, cmdline = out.split("\n", 1)
    assert int(pid) > 1 and cmdline.strip() == "sleep 100"


def test_exec_user_workdir_env_and_stdin(daemon, image, names):
    n = names("exopt")
    start_detached(daemon, n, image, "sleep", "100")
    rc, out, _ = daemon.docker("exec", "-u", "1000", "-w", "/tmp", "-e", "X=1", n,
                               "sh", "-c", "id -u; pwd; echo $X; echo $HOME")
    assert (rc, out) == (0, "1000\n/tmp\n1\n/home/app\n") or (rc, out.split()[:3]) == (0, ["1000", "/tmp", "1"])
    rc, out, _ = daemon.docker("exec", "-i", n, "cat", input="piped\n")
    assert (rc, out) == (0, "piped\n")
    # only stdio leaks into the exec'd process
    rc, out, _ = daemon.docker("exec", n, "ls", "/proc/self/fd")
    assert out.split() == ["0", "1", "2", "3"]


def test_exec_start_failures_match_dockerd(daemon, image, names):
    n = names("exfail")
    start_detached(daemon, n, image, "sleep", "100")
    rc, out, _ = daemon.docker("exec", n, "nosuch-e2e")
    assert rc == 126
    # dockerd writes the runtime's error to stdout, ending in CRLF
    assert out == ('OCI runtime exec failed: exec failed: unable to start container process: '
                   'exec: "nosuch-e2e": executable file not found in $PATH: unknown\r\n'), repr(out)
    rc, out, _ = daemon.docker("exec", "-w", "/nope", n, "true")
    assert rc == 126 and 'chdir to cwd ("/nope")' in out, out


def test_exec_detached_and_stopped(daemon, image, names):
    n = names("exd")
    start_detached(daemon, n, image, "sleep", "100")
    assert daemon.docker("exec", "-d", n, "sh", "-c", "echo x > /tmp/marker")[0] == 0
    from helpers import wait_for
    wait_for(lambda: daemon.docker("exec", n, "cat", "/tmp/marker")[1] == "x\n")
    daemon.ok("rm", "-f", n)
    m = names("exstop")
    daemon.ok(*daemon.run_args("--name", m, image, "true"))
    rc, _, err = daemon.docker("exec", m, "true")
    assert rc != 0 and re.search(r"Container [0-9a-f]{64} is not running", err), err


def test_exec_dockerpy(daemon, image, names):
    client = daemon.client()
    c = client.containers.run(image, ["sleep", "100"], detach=True, name=names("expy"),
                              **({"network_mode": "none"} if daemon.target == "ref" else {}))
    try:
        r = c.exec_run(["sh", "-c", "echo py; exit 3"])
        assert (r.exit_code, r.output) == (3, b"py\n")
        r = c.exec_run("nosuch-py")
        assert r.exit_code == 126
    finally:
        c.remove(force=True)


def test_exec_tty(daemon, image, names):
    n = names("extty")
    start_detached(daemon, n, image, "sleep", "100")
    rc, out, _ = daemon.docker("exec", "-t", n, "tty")
    assert rc == 0 and re.fullmatch(r"/dev/pts/\d+\r?\n", out), repr(out)
    rc, out, _ = daemon.docker("exec", "-t", n, "sh", "-c", "exit 4")
    assert rc == 4
