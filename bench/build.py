#!/usr/bin/env python3
"""Build benchmark: `docker build` (classic builder) of a 6-step Dockerfile with a 50 MB
context, cold (--no-cache) and fully cached, Berth against the reference dockerd in one run,
interleaved per iteration.

    python3 bench/build.py [--iters N] [--json out.json]      (root; target/release binaries)
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import REPO, Berthd, RefDockerd, run_cmd, log  # noqa: E402

DOCKERFILE = """\
FROM bench/base:1
ENV APP=/app
WORKDIR /app
COPY data/ /app/data/
RUN du -s /app/data > /app/size && echo built > /app/stamp
CMD ["cat", "/app/stamp"]
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--json")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="berth-buildbench-"))
    cfg = tmp / "cli"
    cfg.mkdir()
    rootfs = tmp / "rootfs.tar"
    subprocess.run(["bash", str(REPO / "scripts" / "mkimage.sh"), str(rootfs)], check=True,
                   capture_output=True)
    ctx = tmp / "ctx"
    (ctx / "data").mkdir(parents=True)
    for i in range(50):
        (ctx / "data" / f"f{i:02}").write_bytes(os.urandom(1 << 20))
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (tmp / "b").mkdir()
    (tmp / "r").mkdir()
    b = Berthd(tmp / "b", REPO / "target" / "release", "/usr/local/bin/docker", cfg)
    r = RefDockerd(tmp / "r", "/usr/local/bin/docker", cfg)
    samples = {k: {"berth": [], "docker": []} for k in ("cold", "cached")}
    try:
        b.start()
        r.start()
        for d in (b, r):
            run_cmd(d.d("import", str(rootfs), "bench/base:1"), env=d.env)
            d.env["DOCKER_BUILDKIT"] = "0"
        for it in range(a.iters):
            for name, d in (("berth", b), ("docker", r)):
                t, _ = run_cmd(d.d("build", "-q", "--no-cache", "-t", "bench/built:1", str(ctx)),
                               env=d.env, timeout=600)
                samples["cold"][name].append(t)
                t, p = run_cmd(d.d("build", "-t", "bench/built:1", str(ctx)), env=d.env, timeout=600)
                assert p.stdout.count("Using cache") >= 5, p.stdout
                samples["cached"][name].append(t)
            log(f"iteration {it + 1}/{a.iters}")
        res = {}
        for k, v in samples.items():
            bm, dm = statistics.median(v["berth"]), statistics.median(v["docker"])
            res[k] = {"berth ms": round(bm, 1), "docker ms": round(dm, 1), "berth/docker": round(bm / dm, 3)}
            log(f"{k}: berth {bm:.0f} ms, dockerd {dm:.0f} ms, ratio {bm / dm:.2f}x")
        print(json.dumps(res, indent=2))
        if a.json:
            Path(a.json).write_text(json.dumps(res, indent=2))
    finally:
        b.stop()
        r.stop()
        subprocess.run(["rm", "-rf", str(tmp)])


if __name__ == "__main__":
    main()
