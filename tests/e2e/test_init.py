"""`docker run --init`: a reaping PID 1 (`/sbin/docker-init -- CMD`) that forwards signals and
passes the exit status through; same expectations against berthd and dockerd (tini)."""


def test_init_is_pid1_and_passes_exit_codes(daemon, image):
    rc, out, err = daemon.run("--rm", "--init", image, "ps", "-o", "pid,args")
    assert rc == 0, err
    lines = [l.split(None, 1) for l in out.strip().splitlines()[1:]]
    assert lines[0][0] == "1" and lines[0][1].startswith("/sbin/docker-init -- ps"), out
    assert lines[1][1].startswith("ps"), out  # its child (pid 2 on berth, 6 under runc)
    rc, _, _ = daemon.run("--rm", "--init", image, "sh", "-c", "exit 7")
    assert rc == 7


def test_init_reaps_orphans_and_forwards_stop(daemon, image, names):
    n = names("init")
    daemon.ok(*daemon.run_args("-d", "--name", n, "--init", image, "sh", "-c",
                               "sh -c 'sleep 0.2 &'; sleep 100"))
    try:
        import time

        time.sleep(1.0)
        out = daemon.ok("exec", n, "ps", "-o", "stat,args")
        assert not any(l.split()[0].startswith("Z") for l in out.strip().splitlines()[1:]), out
        daemon.ok("stop", "-t", "5", n)
        # SIGTERM reached the shell through the init: 128 + 15.
        assert daemon.inspect(n, "container")["State"]["ExitCode"] == 143
    finally:
        daemon.docker("rm", "-f", n)
