"""`docker ps --filter` beyond id/name/status/label: before, since, ancestor, volume, network,
expose, publish, health, is-task; same expectations against berthd and dockerd."""

from __future__ import annotations

import uuid


def ps(daemon, *filters: str) -> set[str]:
    args = ["ps", "-a", "--format", "{{.Names}}"]
    for f in filters:
        args += ["--filter", f]
    return set(daemon.ok(*args).split())


def test_ps_filters(daemon, image):
    tag = uuid.uuid4().hex[:8]
    a, b, c = f"pfa{tag}", f"pfb{tag}", f"pfc{tag}"
    v = f"pfv{tag}"
    try:
        daemon.ok("create", "--pull", "never", "--network", "none", "--name", a, "--expose", "8080/tcp",
                  "--label", f"pf={tag}", image, "true")
        daemon.ok("create", "--pull", "never", "--network", "none", "--name", b, "-v", f"{v}:/data",
                  "--label", f"pf={tag}", image, "true")
        daemon.ok("create", "--pull", "never", "--network", "none", "--name", c, "--expose", "53/udp",
                  "--label", f"pf={tag}", image, "true")
        mine = f"label=pf={tag}"
        assert ps(daemon, mine) == {a, b, c}
        assert ps(daemon, mine, f"before={b}") == {a}
        assert ps(daemon, mine, f"since={b}") == {c}
        assert ps(daemon, mine, f"volume={v}") == {b}
        assert ps(daemon, mine, "volume=/data") == {b}
        # expose/publish match the container's network ports: none with --network none.
        assert ps(daemon, mine, "expose=8080") == set()
        assert ps(daemon, mine, "publish=8080") == set()
        assert ps(daemon, mine, "network=none") == {a, b, c}
        assert ps(daemon, mine, "health=none") == {a, b, c}
        assert ps(daemon, mine, "health=healthy") == set()
        assert ps(daemon, mine, "is-task=false") == {a, b, c}
        assert ps(daemon, mine, f"ancestor={image}") == {a, b, c}
        rc, _, err = daemon.docker("ps", "--filter", "health=bogus")
        assert rc != 0 and "Unrecognised filter value for health" in err
        rc, _, err = daemon.docker("ps", "--filter", "status=bogus")
        assert rc != 0 and "Invalid filter 'status=bogus'" in err
        rc, _, err = daemon.docker("ps", "--filter", "nosuchfilter=1")
        assert rc != 0 and "Invalid filter 'nosuchfilter'" in err
    finally:
        daemon.docker("rm", "-f", a, b, c)
        daemon.docker("volume", "rm", "-f", v)


def test_ps_port_and_network_filters_on_running(daemon, image):
    tag = uuid.uuid4().hex[:8]
    a, b, n = f"pfpa{tag}", f"pfpb{tag}", f"pfnet{tag}"
    try:
        daemon.ok("network", "create", n)
        daemon.ok("run", "--pull", "never", "-d", "--name", a, "-p", "18791:80", "--expose", "81",
                  "--label", f"pfp={tag}", image, "sleep", "100")
        daemon.ok("run", "--pull", "never", "-d", "--name", b, "--network", n,
                  "--label", f"pfp={tag}", image, "sleep", "100")
        mine = f"label=pfp={tag}"
        assert ps(daemon, mine, "publish=18791") == {a}
        assert ps(daemon, mine, "publish=80") == set()
        assert ps(daemon, mine, "expose=80") == {a}
        assert ps(daemon, mine, "expose=81/tcp") == {a}
        assert ps(daemon, mine, "expose=18000-18999") == set()
        assert ps(daemon, mine, f"network={n}") == {b}
        assert ps(daemon, mine, "network=bridge") == {a}
    finally:
        daemon.docker("rm", "-f", a, b)
        daemon.docker("network", "rm", n)
