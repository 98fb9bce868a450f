"""Networking through the docker CLI: the default bridge, user-defined bridges with DNS and
isolation, published ports, --internal, host/none/container modes, connect/disconnect, static
addresses, macvlan. Differential: the same tests run against the reference dockerd, whose
bridge lives in its own network namespace (host-side commands run there for it). Every
packet stays on this machine: containers, bridges and loopback only."""

import json
import re
import socket
import subprocess
import threading
import time

import pytest

from helpers import wait_for

BB = "/usr/bin/busybox"


def host_cmd(daemon, *args, timeout=10):
    """Runs a command in the daemon's host network namespace."""
    pre = ["ip", "netns", "exec", daemon.netns] if daemon.target == "ref" else []
    return subprocess.run([*pre, *args], capture_output=True, text=True, timeout=timeout)


UDP_CLIENT = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
s.sendto(b"ping", (sys.argv[1], int(sys.argv[2])))
try:
    print(s.recvfrom(100)[0].decode())
except OSError:
    pass
"""

UDP_SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
while True:
    d, peer = s.recvfrom(100)
    s.sendto(b"udphello", peer)
"""


def nc_get(daemon, ip, port, udp=False):
    # busybox-static's nc has no UDP: a Python client for that
    args = (["python3", "-c", UDP_CLIENT, ip, str(port)] if udp
            else [BB, "nc", "-w", "2", ip, str(port)])
    pre = ["ip", "netns", "exec", daemon.netns] if daemon.target == "ref" else []
    p = subprocess.run([*pre, *args], input="", capture_output=True, text=True, timeout=10)
    return p.stdout


def bridge_gw(daemon):
    cfg = daemon.inspect("bridge", "network")["IPAM"]["Config"][0]
    if "Gateway" in cfg:  # dockerd 20.10 leaves it out for the default bridge
        return cfg["Gateway"]
    a, b, c, d = cfg["Subnet"].split("/")[0].split(".")
    return f"{a}.{b}.{c}.{int(d) + 1}"


@pytest.fixture
def net(daemon, names):
    made = []

    def _make(*args):
        n = names("net")
        daemon.ok("network", "create", *args, n)
        made.append(n)
        return n

    yield _make
    for n in made:
        daemon.docker("network", "rm", n)


def server(daemon, image, name, *args, reply="hello", port=80, udp=False):
    loop = (f"while true; do echo {reply} | nc -l -p {port}; done" if not udp
            else f"while true; do echo {reply} | nc -u -l -p {port}; done")
    daemon.ok("run", "--pull", "never", "-d", "--name", name, *args, image, "sh", "-c", loop)
    return name


def sh(daemon, image, *args, script):
    rc, out, err = daemon.docker("run", "--pull", "never", "--rm", *args, image, "sh", "-c", script)
    return rc, out, err


def test_default_bridge_shape(daemon, image):
    """What a container on the default bridge sees: eth0 with an address from the bridge's
    subnet, a MAC made from it, a default route via the gateway, its name in /etc/hosts."""
    rc, out, err = sh(daemon, image, "--hostname", "boxy", script=(
        "ip -o -4 addr show eth0; ip -o link show eth0; ip route; tail -1 /etc/hosts"))
    assert rc == 0, err
    lines = out.splitlines()
    m = re.search(r"eth0\s+inet (\d+\.\d+\.\d+\.\d+)/(\d+)", lines[0])
    assert m, out
    ip, prefix = m.group(1), m.group(2)
    mac = "02:42:" + ":".join(f"{int(o):02x}" for o in ip.split("."))
    assert mac in out, out
    gw = bridge_gw(daemon)
    assert f"default via {gw} dev eth0" in out, out
    assert lines[-1].split() == [ip, "boxy"], out
    assert prefix == daemon.inspect("bridge", "network")["IPAM"]["Config"][0]["Subnet"].split("/")[1]


def test_user_network_names_aliases_isolation(daemon, image, names, net):
    n1, n2 = net(), net()
    web = server(daemon, image, names("web"), "--network", n1, "--network-alias", "www")
    try:
        # (the server answers one connection at a time: retry while it loops)
        rc, out, err = sh(daemon, image, "--network", n1, script=(
            f"nc -w 2 {web} 80 </dev/null; "
            "for i in 1 2 3 4 5 6 7 8 9 10; do nc -w 2 www 80 </dev/null && break; sleep 0.2; done; "
            f"nslookup {web} 127.0.0.11 >/dev/null && echo resolved"))
        assert rc == 0, err
        assert out.split() == ["hello", "hello", "resolved"], out
        # another network: no name, and no route to the address either
        ip = daemon.inspect(web, "container")["NetworkSettings"]["Networks"][n1]["IPAddress"]
        rc, out, _ = sh(daemon, image, "--network", n2, script=(
            f"nslookup {web} 127.0.0.11 >/dev/null 2>&1 && echo named; "
            f"nc -w 2 {ip} 80 </dev/null || echo unreachable"))
        assert out.split() == ["unreachable"], out
        # the default bridge cannot reach it either
        rc, out, _ = sh(daemon, image, script=f"nc -w 2 {ip} 80 </dev/null || echo unreachable")
        assert out.split() == ["unreachable"], out
    finally:
        daemon.docker("rm", "-f", web)


def test_published_ports_tcp_udp(daemon, image, names):
    n = server(daemon, image, names("pub"), "-p", "127.0.0.1:18481:80", "-p", "18482:80")
    u = names("pubu")
    daemon.ok("run", "--pull", "never", "-d", "--name", u, "-p", "18483:53/udp", image, "sleep", "100")
    # the UDP server runs inside the container's network namespace (busybox has none)
    pid = daemon.inspect(u, "container")["State"]["Pid"]
    udp_srv = subprocess.Popen(["nsenter", "-t", str(pid), "-n", "python3", "-c", UDP_SERVER, "53"])
    try:
        wait_for(lambda: "hello" in nc_get(daemon, "127.0.0.1", 18481), what="published tcp")
        wait_for(lambda: "hello" in nc_get(daemon, "127.0.0.1", 18482), what="published tcp 2")
        wait_for(lambda: "udphello" in nc_get(daemon, "127.0.0.1", 18483, udp=True),
                 what="published udp", timeout=15)
        # from another container, through the bridge gateway
        gw = bridge_gw(daemon)
        rc, out, err = sh(daemon, image, script=(
            f"for i in 1 2 3 4 5 6 7 8; do nc -w 2 {gw} 18482 </dev/null && break; sleep 0.3; done"))
        assert out.strip() == "hello", (out, err)
        v4 = [l for l in daemon.ok("port", n).splitlines() if "[::]" not in l]
        assert sorted(v4) == ["80/tcp -> 0.0.0.0:18482", "80/tcp -> 127.0.0.1:18481"], v4
        assert daemon.ok("port", u, "53/udp").split()[0] == "0.0.0.0:18483"
        ports = daemon.inspect(n, "container")["NetworkSettings"]["Ports"]
        assert sorted([b for b in ports["80/tcp"] if b["HostIp"] != "::"], key=lambda b: b["HostPort"]) == [
            {"HostIp": "127.0.0.1", "HostPort": "18481"}, {"HostIp": "0.0.0.0", "HostPort": "18482"}]
        row = daemon.ok("ps", "--filter", f"name={n}", "--format", "{{.Ports}}").strip()
        assert "127.0.0.1:18481->80/tcp" in row and "0.0.0.0:18482->80/tcp" in row, row
        # the port is taken: the second container fails to start, with dockerd's words
        rc, _, err = daemon.docker("run", "--pull", "never", "-d", "--name", names("clash"), "-p",
                                   "18482:80", image, "sleep", "5")
        assert rc != 0 and ("already allocated" in err or "already in use" in err), err
    finally:
        udp_srv.kill()
        udp_srv.wait()
        daemon.docker("rm", "-f", n, u)
    # rules go with the container
    out = nc_get(daemon, "127.0.0.1", 18482)
    assert "hello" not in out


def test_publish_all_and_ephemeral(daemon, make_image, names):
    img = make_image("EXPOSE 7000/tcp 7001/udp", 'CMD ["sleep", "100"]')
    n = names("pa")
    daemon.ok("run", "--pull", "never", "-d", "--name", n, "-P", img)
    try:
        ports = daemon.inspect(n, "container")["NetworkSettings"]["Ports"]
        assert set(ports) == {"7000/tcp", "7001/udp"}, ports
        for k, v in ports.items():
            assert v and int(v[0]["HostPort"]) > 1024, ports
        # dockerd also lists [::] bindings; Berth publishes IPv4 only
        v4 = [l for l in daemon.ok("port", n).splitlines() if "0.0.0.0" in l]
        assert len(v4) == 2, v4
    finally:
        daemon.docker("rm", "-f", n)


def test_internal_network_has_no_way_out(daemon, image, names, net):
    n = net("--internal")
    outside = server(daemon, image, names("out"))
    try:
        ip = daemon.inspect(outside, "container")["NetworkSettings"]["IPAddress"]
        rc, out, err = sh(daemon, image, "--network", n, script=(
            f"nc -w 2 {ip} 80 </dev/null || echo blocked; ip route"))
        assert out.splitlines()[0] == "blocked", out
        if daemon.target == "berth":
            # Berth gives an internal network no default route at all (dockerd installs one
            # and drops the forwarded packets)
            assert "default" not in out, out
        assert daemon.inspect(n, "network")["Internal"] is True
    finally:
        daemon.docker("rm", "-f", outside)


def test_network_inspect_and_ls_shape(daemon, image, names, net):
    n = net("--subnet", "10.123.0.0/24", "--gateway", "10.123.0.254", "--label", "team=a",
            "--ip-range", "10.123.0.128/25")
    info = daemon.inspect(n, "network")
    assert sorted(info) == sorted([
        "Name", "Id", "Created", "Scope", "Driver", "EnableIPv6", "IPAM", "Internal", "Attachable",
        "Ingress", "ConfigFrom", "ConfigOnly", "Containers", "Options", "Labels"]), info
    assert info["IPAM"]["Config"] == [
        {"Subnet": "10.123.0.0/24", "IPRange": "10.123.0.128/25", "Gateway": "10.123.0.254"}]
    assert (info["Driver"], info["Scope"], info["Labels"]) == ("bridge", "local", {"team": "a"})
    c = names("member")
    daemon.ok("run", "--pull", "never", "-d", "--name", c, "--network", n, "--ip", "10.123.0.7",
              image, "sleep", "100")
    try:
        info = daemon.inspect(n, "network")
        ep = list(info["Containers"].values())[0]
        assert (ep["Name"], ep["IPv4Address"], ep["MacAddress"]) == (
            c, "10.123.0.7/24", "02:42:0a:7b:00:07"), ep
        cs = daemon.inspect(c, "container")["NetworkSettings"]["Networks"][n]
        assert (cs["IPAddress"], cs["Gateway"], cs["IPPrefixLen"]) == ("10.123.0.7", "10.123.0.254", 24)
        rc, _, err = daemon.docker("network", "rm", n)
        assert rc != 0 and "active endpoints" in err, err
        # next dynamic address comes from the range
        d = names("dyn")
        daemon.ok("run", "--pull", "never", "-d", "--name", d, "--network", n, image, "sleep", "100")
        ip = daemon.inspect(d, "container")["NetworkSettings"]["Networks"][n]["IPAddress"]
        assert ip.startswith("10.123.0.") and int(ip.split(".")[-1]) >= 128, ip
        daemon.docker("rm", "-f", d)
    finally:
        daemon.docker("rm", "-f", c)
    ls = daemon.ok("network", "ls", "--filter", f"name={n}", "--format", "{{.Name}} {{.Driver}} {{.Scope}}")
    assert ls.split() == [n, "bridge", "local"]
    assert {"bridge", "host", "none"} <= set(daemon.ok("network", "ls", "--format", "{{.Name}}").split())
    rc, _, err = daemon.docker("network", "create", "--subnet", "10.123.0.0/25", names("overlap"))
    assert rc != 0 and "overlaps" in err, err
    rc, _, err = daemon.docker("network", "rm", "bridge")
    assert rc != 0 and "pre-defined network" in err, err


def test_connect_disconnect_running(daemon, image, names, net):
    n1, n2 = net(), net()
    a = server(daemon, image, names("a"), "--network", n1)
    try:
        daemon.ok("network", "connect", "--alias", "late", n2, a)
        nets = daemon.inspect(a, "container")["NetworkSettings"]["Networks"]
        assert set(nets) == {n1, n2}, nets
        rc, out, _ = sh(daemon, image, "--network", n2, script="nc -w 2 late 80 </dev/null")
        assert out.strip() == "hello", out
        out = daemon.ok("exec", a, "ip", "-o", "-4", "addr")
        assert "eth1" in out, out
        daemon.ok("network", "disconnect", n2, a)
        assert set(daemon.inspect(a, "container")["NetworkSettings"]["Networks"]) == {n1}
        assert "eth1" not in daemon.ok("exec", a, "ip", "-o", "-4", "addr")
        rc, out, _ = sh(daemon, image, "--network", n2, script="nc -w 2 late 80 </dev/null || echo gone")
        assert out.strip() == "gone", out
    finally:
        daemon.docker("rm", "-f", a)


def test_host_none_and_container_modes(daemon, image, names):
    rc, out, _ = sh(daemon, image, "--network", "none", script="ip -o link | wc -l; ip -o -4 addr")
    assert out.split()[0] == "1", out
    host_links = host_cmd(daemon, "ip", "-o", "link").stdout.count("\n")
    rc, out, _ = sh(daemon, image, "--network", "host", script="ip -o link | wc -l")
    assert int(out.strip()) == host_links, out
    a = names("ns")
    daemon.ok("run", "--pull", "never", "-d", "--name", a, image, "sleep", "100")
    try:
        ip = daemon.inspect(a, "container")["NetworkSettings"]["IPAddress"]
        rc, out, _ = sh(daemon, image, "--network", f"container:{a}", script="ip -o -4 addr show eth0")
        assert f"inet {ip}/" in out, out
    finally:
        daemon.docker("rm", "-f", a)


def test_add_host_dns_options(daemon, image, net):
    n = net()
    rc, out, err = sh(daemon, image, "--network", n, "--add-host", "gw:host-gateway",
                      "--add-host", "db:10.9.8.7", "--dns-search", "example.test",
                      "--dns-option", "ndots:3", script="cat /etc/hosts /etc/resolv.conf")
    assert rc == 0, err
    assert re.search(r"^10\.9\.8\.7\s+db$", out, re.M), out
    gw = bridge_gw(daemon)
    assert re.search(rf"^{re.escape(gw)}\s+gw$", out, re.M), out
    assert "nameserver 127.0.0.11" in out and "search example.test" in out, out
    assert re.search(r"^options.*ndots:3", out, re.M), out


def test_macvlan(daemon, image, names, net):
    parent = "bmv" + names("p")[-6:].replace("-", "")[:6]
    host_cmd(daemon, "ip", "link", "add", parent, "type", "bridge")
    host_cmd(daemon, "ip", "link", "set", parent, "up")
    n = None
    try:
        n = net("-d", "macvlan", "-o", f"parent={parent}", "--subnet", "10.77.0.0/24")
        a = server(daemon, image, names("mva"), "--network", n, "--ip", "10.77.0.10")
        try:
            rc, out, err = sh(daemon, image, "--network", n, script="nc -w 2 10.77.0.10 80 </dev/null")
            assert out.strip() == "hello", (out, err)
        finally:
            daemon.docker("rm", "-f", a)
    finally:
        if n:
            daemon.docker("network", "rm", n)
        host_cmd(daemon, "ip", "link", "del", parent)


class _DNS(threading.Thread):
    """A tiny authoritative DNS server on a loopback address: answers A for one name."""

    def __init__(self, addr, name, ip):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((addr, 53))
        self.name, self.ip = name, ip

    def run(self):
        while True:
            try:
                q, peer = self.sock.recvfrom(512)
            except OSError:
                return
            # header, then the question: echo it back with one A answer (pointer to offset 12)
            qend = 12
            while q[qend] != 0:
                qend += q[qend] + 1
            qend += 5
            labels, i = [], 12
            while q[i]:
                labels.append(q[i + 1:i + 1 + q[i]].decode())
                i += q[i] + 1
            hit = ".".join(labels).lower() == self.name
            hdr = q[:2] + b"\x81\x80" + q[4:6] + (b"\x00\x01" if hit else b"\x00\x00") + b"\x00\x00\x00\x00"
            ans = b""
            if hit:
                ans = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes(int(o) for o in self.ip.split("."))
            self.sock.sendto(hdr + q[12:qend] + ans, peer)

    def close(self):
        self.sock.close()


def test_dns_forwards_to_loopback_resolver(daemon, image, net):
    """Names outside the container networks go to the upstream resolvers, from the host's
    namespace, so a resolver on a loopback address works (dockerd 20.10 cannot)."""
    if daemon.target == "ref":
        pytest.skip("dockerd 20.10 does not forward to a loopback resolver (Berth does)")
    srv = _DNS("127.0.0.77", "forward.berth.test", "10.1.2.3")
    srv.start()
    try:
        n = net()
        rc, out, err = sh(daemon, image, "--network", n, "--dns", "127.0.0.77",
                          script="nslookup forward.berth.test 127.0.0.11")
        assert rc == 0 and "10.1.2.3" in out, (out, err)
        # and on the default bridge too (where dockerd has no embedded DNS)
        rc, out, err = sh(daemon, image, "--dns", "127.0.0.77", script="nslookup forward.berth.test")
        assert rc == 0 and "10.1.2.3" in out, (out, err)
    finally:
        srv.close()


def test_default_bridge_names(daemon, image, names):
    """Berth answers container names on the default bridge too (dockerd needs --link)."""
    if daemon.target == "ref":
        pytest.skip("dockerd has no embedded DNS on the default bridge (Berth does)")
    a = server(daemon, image, names("db"))
    try:
        rc, out, _ = sh(daemon, image, script=f"nc -w 2 {a} 80 </dev/null")
        assert out.strip() == "hello", out
    finally:
        daemon.docker("rm", "-f", a)


def test_legacy_link_on_default_bridge(daemon, make_image, names):
    img = make_image("EXPOSE 80/tcp", "ENV SECRET=s3", 'CMD ["sleep", "100"]')
    t = names("linked")
    daemon.ok("run", "--pull", "never", "-d", "--name", t, img)
    try:
        ip = daemon.inspect(t, "container")["NetworkSettings"]["IPAddress"]
        rc, out, err = daemon.docker("run", "--pull", "never", "--rm", "--link", f"{t}:db", img,
                                     "sh", "-c", "env | sort; cat /etc/hosts")
        assert rc == 0, err
        assert f"DB_PORT=tcp://{ip}:80" in out, out
        assert f"DB_PORT_80_TCP_ADDR={ip}" in out and "DB_PORT_80_TCP_PORT=80" in out, out
        assert "DB_ENV_SECRET=s3" in out and "DB_NAME=/" in out, out
        line = [l for l in out.splitlines() if l.startswith(ip + "\t") or l.startswith(ip + " ")]
        assert line and "db" in line[0].split() and t in line[0].split(), out
    finally:
        daemon.docker("rm", "-f", t)


def test_dockerpy_networks(daemon, image, names):
    import docker

    cli = daemon.client()
    n = names("pynet")
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.124.0.0/24")])
    net = cli.networks.create(n, driver="bridge", ipam=ipam, labels={"k": "v"})
    c = None
    try:
        assert net.attrs["IPAM"]["Config"][0]["Subnet"] == "10.124.0.0/24"
        c = cli.containers.run(image, ["sleep", "100"], detach=True, name=names("pyc"),
                               network=n, ports={"80/tcp": ("127.0.0.1", 18881)})
        c.reload()
        ns = c.attrs["NetworkSettings"]
        assert ns["Networks"][n]["IPAddress"].startswith("10.124.0."), ns
        assert ns["Ports"]["80/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": "18881"}], ns["Ports"]
        net.reload()
        assert c.id in net.attrs["Containers"]
        assert [x.name for x in cli.networks.list(names=[n])] == [n]
        net.disconnect(c)
        c.reload()
        assert n not in c.attrs["NetworkSettings"]["Networks"]
        net.connect(c, aliases=["again"])
        c.reload()
        assert "again" in c.attrs["NetworkSettings"]["Networks"][n]["Aliases"]
    finally:
        if c is not None:
            c.remove(force=True)
        net.remove()
    assert cli.networks.list(names=[n]) == []


def test_generated_files_on_user_network(daemon, image, net):
    """/etc/resolv.conf and /etc/hosts exactly as dockerd writes them on a user network."""
    n = net()
    rc, out, err = sh(daemon, image, "--network", n, "--hostname", "filebox", script=(
        "cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; hostname"))
    assert rc == 0, err
    resolv, hosts, hostname = out.split("---\n")
    host_search = [l for l in open("/etc/resolv.conf").read().splitlines() if l.startswith("search")]
    want = "".join(l + "\n" for l in host_search) + "nameserver 127.0.0.11\noptions ndots:0\n"
    assert resolv == want, resolv
    lines = hosts.splitlines()
    assert lines[:6] == ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
                         "fe00::0\tip6-localnet", "ff00::0\tip6-mcastprefix",
                         "ff02::1\tip6-allnodes", "ff02::2\tip6-allrouters"], hosts
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+\tfilebox", lines[6]), hosts
    assert len(lines) == 7 and hostname.strip() == "filebox"
