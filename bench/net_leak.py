#!/usr/bin/env python3
"""Network leak check: N `docker run --rm -p` cycles (default 500) on the default bridge and on a
user network, against a private berthd; the number of veths on Berth's bridges, namespace files,
nftables DNAT rules, daemon fds and daemon RSS must come back to where they started.

    python3 bench/net_leak.py [--cycles N]        (root; target/release binaries)
"""

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import REPO, Berthd, rss_kb, run_cmd, log  # noqa: E402

IMAGE = "berthleak/busybox:1"


def veths(bridge):
    out = subprocess.run(["ip", "-o", "link", "show", "master", bridge], capture_output=True,
                         text=True).stdout
    return sum(1 for l in out.splitlines() if l.strip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=500)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="berth-netleak-"))
    cfg = tmp / "cli"
    cfg.mkdir()
    (tmp / "b").mkdir()
    rootfs = tmp / "rootfs.tar"
    subprocess.run(["bash", str(REPO / "scripts" / "mkimage.sh"), str(rootfs)], check=True,
                   capture_output=True)
    b = Berthd(tmp / "b", REPO / "target" / "release", "/usr/local/bin/docker", cfg)
    b.start()
    table = "berth-" + hashlib.sha256(str(tmp / "b" / "exec").encode()).hexdigest()[:8]

    def d(*args):
        return run_cmd(b.d(*args), env=b.env, timeout=120)[1].stdout

    try:
        d("import", str(rootfs), IMAGE)
        d("network", "create", "leaknet")
        bridges = [d("network", "inspect", "-f",
                     '{{index .Options "com.docker.network.bridge.name"}}', "bridge").strip(),
                   "br-" + d("network", "inspect", "-f", "{{.Id}}", "leaknet").strip()[:12]]

        def snap():
            rules = subprocess.run(["nft", "list", "table", "ip", table], capture_output=True,
                                   text=True).stdout.count("dnat to")
            return {
                "veths": sum(veths(x) for x in bridges),
                "netns": len(os.listdir(tmp / "b" / "exec" / "netns")),
                "dnat_rules": rules,
                "fds": len(os.listdir(f"/proc/{b.proc.pid}/fd")),
                "rss_kb": rss_kb(b.proc.pid),
            }

        d("run", "--rm", "-p", "18991:80", IMAGE, "true")
        before = snap()
        t0 = time.time()
        for i in range(a.cycles):
            net = ["--network", "leaknet"] if i % 2 else []
            d("run", "--rm", "-p", "18991:80", "-p", "18992:81/udp", *net, IMAGE, "true")
        dt = time.time() - t0
        after = snap()
        log(f"{a.cycles} cycles in {dt:.1f} s ({dt / a.cycles * 1000:.0f} ms each)")
        print({"before": before, "after": after})
        bad = [k for k in ("veths", "netns", "dnat_rules") if after[k] != before[k]]
        if after["fds"] > before["fds"] + 2:
            bad.append("fds")
        if bad:
            print(f"LEAK: {bad}")
            sys.exit(1)
        print(f"no leak (RSS {before['rss_kb']} -> {after['rss_kb']} KiB)")
    finally:
        subprocess.run(b.d("network", "rm", "leaknet"), env=b.env, capture_output=True)
        b.stop()
        subprocess.run(["rm", "-rf", str(tmp)])


if __name__ == "__main__":
    main()
