#!/usr/bin/env python3
"""Image benchmark: Berth against the reference dockerd, in the same run, on the same image.

    python3 bench/images.py [--iters N] [--layer-mib M] [--json out.json]

The image: the busybox rootfs plus 3 layers of M MiB (default 66) of random data each (about
200 MB), made by `run` + `commit` in berthd and moved to dockerd with save/load, so both push
and pull identical bytes. A Debian `docker-registry` on 127.0.0.1 serves one storage directory
in the host namespace (for berthd) and in the reference's namespace (for dockerd); a fresh
storage directory for every push keeps registry-side deduplication and cross-repository
mounts out of the figures. Scenarios, interleaved per iteration, medians reported:

  I1 push of the image to an empty registry
  I2 pull of it into a daemon that has none of its layers
  I3 save to a file, I4 load of that file (after rmi)
  I5 commit of a container that wrote 100 MiB

Needs root, target/release binaries and docker-registry. Everything stays on this machine.
"""

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import REPO, Berthd, RefDockerd, run_cmd, log  # noqa: E402

REGISTRY_BIN = "/usr/bin/docker-registry"


class Registry:
    def __init__(self, root: Path, port: int):
        self.root, self.port = root, port
        self.procs = []

    def start(self, netnses):
        data = self.root / f"data-{time.time_ns()}"
        cfg = self.root / "config.yml"
        cfg.write_text("version: 0.1\nlog:\n  level: error\n"
                       f"storage:\n  filesystem:\n    rootdirectory: {data}\n"
                       f"http:\n  addr: 127.0.0.1:{self.port}\n")
        for ns in netnses:
            pre = ["ip", "netns", "exec", ns] if ns else []
            self.procs.append(subprocess.Popen(pre + [REGISTRY_BIN, "serve", str(cfg)],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            for _ in range(100):
                p = subprocess.run(pre + ["python3", "-c",
                                          "import urllib.request\ntry:\n urllib.request.urlopen("
                                          f"'http://127.0.0.1:{self.port}/v2/',timeout=1)\n"
                                          "except urllib.error.HTTPError: pass\n"], capture_output=True)
                if p.returncode == 0:
                    break
                time.sleep(0.1)

    def stop(self):
        for p in self.procs:
            p.terminate()
            p.wait()
        self.procs = []
        for d in self.root.glob("data-*"):
            shutil.rmtree(d, ignore_errors=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--layer-mib", type=int, default=66)
    ap.add_argument("--json")
    a = ap.parse_args()
    docker_cli = "/usr/local/bin/docker"
    tmp = Path(tempfile.mkdtemp(prefix="berth-imgbench-"))
    cfg = tmp / "cli"
    cfg.mkdir()
    rootfs = tmp / "rootfs.tar"
    subprocess.run(["bash", str(REPO / "scripts" / "mkimage.sh"), str(rootfs)], check=True,
                   capture_output=True)
    (tmp / "berth").mkdir()
    (tmp / "ref").mkdir()
    b = Berthd(tmp / "berth", REPO / "target" / "release", docker_cli, cfg)
    r = RefDockerd(tmp / "ref", docker_cli, cfg)
    port = free_port()
    reg = Registry(tmp, port)
    img = f"127.0.0.1:{port}/bench/big:1"
    samples = {k: {"berth": [], "docker": []} for k in ("I1 push", "I2 pull", "I3 save", "I4 load", "I5 commit")}

    def dk(d, *args, timeout=600):
        return run_cmd(d.d(*args), env=d.env, timeout=timeout)

    try:
        b.start()
        r.start()
        sides = [("berth", b, None), ("docker", r, r.netns)]
        dk(b, "import", str(rootfs), "bench/base:1")
        cur = "bench/base:1"
        for i in range(3):
            dk(b, "run", "--name", f"mk{i}", "--network", "none", cur, "sh", "-c",
               f"head -c {a.layer_mib << 20} /dev/urandom > /layer{i}")
            dk(b, "commit", f"mk{i}", f"bench/big:{i}")
            dk(b, "rm", f"mk{i}")
            cur = f"bench/big:{i}"
        dk(b, "tag", cur, img)
        archive = tmp / "big.tar"
        dk(b, "save", "-o", str(archive), img)
        dk(r, "load", "-i", str(archive))
        archive.unlink()
        log(f"image ready: {img}")
        for it in range(a.iters):
            for name, d, ns in sides:
                # I1 push to an empty registry
                reg.start([None, r.netns])
                t, _ = dk(d, "push", img)
                samples["I1 push"][name].append(t)
                # I3 save; then I2 pull with no local layers
                save_path = tmp / f"{name}.tar"
                t, _ = dk(d, "save", "-o", str(save_path), img)
                samples["I3 save"][name].append(t)
                ids = dk(d, "images", "-aq")[1].stdout.split()
                run_cmd(d.d("rmi", "-f", *set(ids)), env=d.env, check=False, timeout=300)
                run_cmd(d.d("image", "prune", "-af"), env=d.env, check=False, timeout=300)
                t, _ = dk(d, "pull", img)
                samples["I2 pull"][name].append(t)
                reg.stop()
                run_cmd(d.d("rmi", "-f", img), env=d.env, check=False, timeout=300)
                t, _ = dk(d, "load", "-i", str(save_path))
                samples["I4 load"][name].append(t)
                save_path.unlink()
                # I5 commit of 100 MiB of changes
                cname = f"cm-{name}-{it}"
                dk(d, "run", "--name", cname, "--network", "none", img, "sh", "-c",
                   "head -c 104857600 /dev/urandom > /big")
                t, _ = dk(d, "commit", cname, f"bench/commit:{it}")
                samples["I5 commit"][name].append(t)
                dk(d, "rm", cname)
                run_cmd(d.d("rmi", f"bench/commit:{it}"), env=d.env, check=False)
            log(f"iteration {it + 1}/{a.iters} done")
        results = {}
        for k, v in samples.items():
            bm, dm = statistics.median(v["berth"]), statistics.median(v["docker"])
            results[k] = {"berth ms": round(bm, 1), "docker ms": round(dm, 1),
                          "berth/docker": round(bm / dm, 3)}
            log(f"{k}: berth {bm:.0f} ms, dockerd {dm:.0f} ms, ratio {bm / dm:.2f}x")
        print(json.dumps(results, indent=2))
        if a.json:
            Path(a.json).write_text(json.dumps(results, indent=2))
    finally:
        reg.stop()
        b.stop()
        r.stop()
        subprocess.run(["rm", "-rf", str(tmp)])


if __name__ == "__main__":
    main()
