"""`docker container prune` (filters) and `docker system prune [--volumes]`; same expectations
against berthd and dockerd."""

import uuid


def test_container_prune_with_filters(daemon, image):
    tag = uuid.uuid4().hex[:8]
    a, b, r = f"pra{tag}", f"prb{tag}", f"prr{tag}"
    try:
        daemon.ok(*daemon.run_args("--name", a, "--label", f"pr={tag}", image, "true"))
        daemon.ok(*daemon.run_args("--name", b, "--label", f"keep={tag}", image, "true"))
        daemon.ok(*daemon.run_args("-d", "--name", r, "--label", f"pr={tag}", image, "sleep", "100"))
        out = daemon.ok("container", "prune", "-f", "--filter", f"label=pr={tag}")
        ids = {daemon.inspect(x, "container")["Id"] for x in (b, r)}
        assert "Deleted Containers:" in out and "Total reclaimed space" in out
        left = set(daemon.ok("ps", "-a", "--format", "{{.Names}}").split())
        assert a not in left and b in left and r in left, left
        assert not any(i in out for i in ids)
        rc, _, err = daemon.docker("container", "prune", "-f", "--filter", "bogus=1")
        assert rc != 0 and "invalid filter 'bogus'" in err.lower()
    finally:
        daemon.docker("rm", "-f", a, b, r)


def test_system_prune(second_daemon_factory, rootfs_tar):
    # A daemon of its own: system prune removes every stopped container and dangling image.
    d = second_daemon_factory(f"prune{uuid.uuid4().hex[:6]}")
    d.ok("import", str(rootfs_tar), "prune/busybox:1")
    tag = uuid.uuid4().hex[:8]
    c, v = f"sp{tag}", f"spv{tag}"
    d.ok(*d.run_args("--name", c, "-v", f"{v}:/data", "prune/busybox:1", "true"))
    d.ok("rm", c)
    d.ok(*d.run_args("--name", c, "prune/busybox:1", "true"))
    out = d.ok("system", "prune", "-f")
    assert "Total reclaimed space" in out
    assert c not in d.ok("ps", "-a", "--format", "{{.Names}}").split()
    assert v in d.ok("volume", "ls", "-q").split()  # volumes only with --volumes
    out = d.ok("system", "prune", "-f", "--volumes")
    api = tuple(int(x) for x in d.ok("version", "--format", "{{.Server.APIVersion}}").strip().split("."))
    if api < (1, 42):
        assert v not in d.ok("volume", "ls", "-q").split()
    d.ok("rmi", "prune/busybox:1")
