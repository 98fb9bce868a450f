#!/usr/bin/env python3
"""Networking benchmark: Berth against the reference dockerd, in the same run.

    python3 bench/net.py [--iters N] [--mib M] [--json out.json]

Scenarios (interleaved per iteration, medians reported):
  N1  `docker run --rm IMG true` on the default bridge, and with --network none, for both
      daemons. Target: Berth bridge / Berth none <= 1.3.
  N2  TCP throughput host -> published port (127.0.0.1:P -> container:80): Berth's nftables
      DNAT path against dockerd's (its userland proxy serves 127.0.0.1). Target >= 2x.
  N3  TCP throughput container -> container on a user-defined bridge.

Throughput endpoints are iperf3 (apt-get install iperf3; else small Python programs) run from
the host inside the containers' network namespaces (nsenter -n; busybox-static's nc cannot
stream reliably), the same for both daemons. The
reference dockerd runs in its own network namespace; host-side clients for it run there.
Everything stays on this machine. Needs root and target/release binaries.
"""

import argparse
import json
import shutil
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import REPO, Berthd, RefDockerd, run_cmd, log  # noqa: E402

IMAGE = "berthbench/busybox:net"
# iperf3 (Debian's, run from the host inside the containers' namespaces) when installed; a
# Python sender/receiver otherwise (slower: it bounds both paths near the same figure).
IPERF = shutil.which("iperf3")
SECS = 3

SERVER = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 80)); s.listen(8)
while True:
    c, _ = s.accept()
    n = 0
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        n += len(b)
    c.sendall(str(n).encode()); c.close()
"""

CLIENT = r"""
import socket, sys, time
host, port, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
buf = b"\0" * (1 << 20)
for _ in range(50):
    try:
        c = socket.create_connection((host, port), timeout=5); break
    except OSError:
        time.sleep(0.1)
t0 = time.perf_counter()
for _ in range(mib):
    c.sendall(buf)
c.shutdown(socket.SHUT_WR)
got = int(c.recv(64) or b"0")
dt = time.perf_counter() - t0
assert got == mib << 20, got
print(f"{mib / dt:.1f}")
"""


def med(xs):
    return statistics.median(xs) if xs else float("nan")


class Side:
    def __init__(self, d, netns=None):
        self.d, self.netns = d, netns

    def docker(self, *args, check=True):
        return run_cmd(self.d.d(*args), env=self.d.env, check=check, timeout=300)[1]

    def host(self, *cmd):
        pre = ["ip", "netns", "exec", self.netns] if self.netns else []
        return subprocess.run([*pre, *cmd], capture_output=True, text=True, timeout=300)

    def pid(self, name):
        return self.docker("inspect", "-f", "{{.State.Pid}}", name).stdout.strip()

    def start_server(self, name, *args):
        self.docker("run", "-d", "--pull", "never", "--name", name, *args, IMAGE, "sleep", "3600")
        if IPERF:
            return subprocess.Popen(["nsenter", "-t", self.pid(name), "-n", IPERF, "-s", "-p", "80"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return subprocess.Popen(["nsenter", "-t", self.pid(name), "-n", "python3", "-c", SERVER])

    @staticmethod
    def _rate(p):
        if p.returncode != 0:
            raise RuntimeError(p.stderr or p.stdout)
        if IPERF:
            j = json.loads(p.stdout)
            return j["end"]["sum_received"]["bits_per_second"] / 8 / (1 << 20)
        return float(p.stdout.strip())

    def _client(self, host, port, mib):
        if IPERF:
            return [IPERF, "-c", host, "-p", str(port), "-t", str(SECS), "-J"]
        return ["python3", "-c", CLIENT, host, str(port), str(mib)]

    def client_in(self, name, host, port, mib):
        p = subprocess.run(["nsenter", "-t", self.pid(name), "-n", *self._client(host, port, mib)],
                           capture_output=True, text=True, timeout=300)
        return self._rate(p)

    def client_host(self, port, mib):
        return self._rate(self.host(*self._client("127.0.0.1", port, mib)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--mib", type=int, default=512)
    ap.add_argument("--json")
    a = ap.parse_args()
    bins = REPO / "target" / "release"
    docker_cli = "/usr/local/bin/docker"
    tmp = Path(tempfile.mkdtemp(prefix="berth-netbench-"))
    cfg = tmp / "cli"
    cfg.mkdir()
    rootfs = tmp / "rootfs.tar"
    subprocess.run(["bash", str(REPO / "scripts" / "mkimage.sh"), str(rootfs)], check=True,
                   capture_output=True)
    b = Berthd(tmp / "berth", bins, docker_cli, cfg)
    (tmp / "berth").mkdir()
    r = RefDockerd(tmp / "ref", docker_cli, cfg)
    (tmp / "ref").mkdir()
    servers = []
    results = {}
    try:
        b.start()
        r.start()
        B, R = Side(b), Side(r, r.netns)
        for s in (B, R):
            s.docker("import", str(rootfs), IMAGE)
            s.docker("run", "--rm", "--pull", "never", IMAGE, "true")  # warm
        # N1: run --rm latency
        lat = {k: [] for k in ("berth-bridge", "berth-none", "docker-bridge", "docker-none")}
        for i in range(a.iters):
            for key, s, extra in (("berth-bridge", B, []), ("berth-none", B, ["--network", "none"]),
                                  ("docker-bridge", R, []), ("docker-none", R, ["--network", "none"])):
                t, _ = run_cmd(s.d.d("run", "--rm", "--pull", "never", *extra, IMAGE, "true"),
                               env=s.d.env)
                lat[key].append(t)
        results["N1"] = {k: med(v) for k, v in lat.items()}
        results["N1"]["berth bridge/none"] = results["N1"]["berth-bridge"] / results["N1"]["berth-none"]
        results["N1"]["berth/docker (bridge)"] = results["N1"]["berth-bridge"] / results["N1"]["docker-bridge"]
        log(f"N1 run --rm latency (ms): {json.dumps(results['N1'])}")
        # N2 and N3: throughput
        thr = {k: [] for k in ("berth-published", "docker-published", "berth-c2c", "docker-c2c")}
        for s, tag in ((B, "berth"), (R, "docker")):
            s.docker("network", "create", "benchnet")
            servers.append(s.start_server(f"srv-{tag}", "-p", "18781:80", "--network", "benchnet"))
            s.docker("run", "-d", "--pull", "never", "--name", f"cli-{tag}", "--network", "benchnet",
                     IMAGE, "sleep", "3600")
        time.sleep(0.5)
        reps = max(3, a.iters // 4)
        for i in range(reps):
            for s, tag in ((B, "berth"), (R, "docker")):
                thr[f"{tag}-published"].append(s.client_host(18781, a.mib))
                ip = s.docker("inspect", "-f", '{{(index .NetworkSettings.Networks "benchnet").IPAddress}}',
                              f"srv-{tag}").stdout.strip()
                thr[f"{tag}-c2c"].append(s.client_in(f"cli-{tag}", ip, 80, a.mib))
        results["N2"] = {"berth MiB/s": med(thr["berth-published"]), "docker MiB/s": med(thr["docker-published"])}
        results["N2"]["berth/docker"] = results["N2"]["berth MiB/s"] / results["N2"]["docker MiB/s"]
        results["N3"] = {"berth MiB/s": med(thr["berth-c2c"]), "docker MiB/s": med(thr["docker-c2c"])}
        results["N3"]["berth/docker"] = results["N3"]["berth MiB/s"] / results["N3"]["docker MiB/s"]
        log(f"N2 host->published port: {json.dumps(results['N2'])}")
        log(f"N3 container->container: {json.dumps(results['N3'])}")
    finally:
        for p in servers:
            p.kill()
        for s, tag in ((Side(b), "berth"), (Side(r, r.netns), "docker")):
            try:
                s.docker("rm", "-f", f"srv-{tag}", f"cli-{tag}", check=False)
                s.docker("network", "rm", "benchnet", check=False)
            except Exception:  # noqa: BLE001
                pass
        b.stop()
        r.stop()
        subprocess.run(["rm", "-rf", str(tmp)])
    print(json.dumps(results, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
