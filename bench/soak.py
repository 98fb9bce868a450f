#!/usr/bin/env python3
"""Soak test: many container lifecycles and many concurrent API clients against one berthd.

    sudo python3 bench/soak.py                 # 1000 create/start/stop/rm cycles, 200 clients
    sudo python3 bench/soak.py --cycles 100 --clients 50 --json out.json   # quick

Starts a private berthd (target/release by default) on a temporary root, imports the busybox
image, measures a baseline after a warm-up, then:

1. N cycles of create -> start -> stop -> rm (4 worker threads, docker-py over the Unix
   socket; every 4th container gets a tmpfs, every 5th an env file of labels);
2. C concurrent clients, each doing ps / inspect / version / images / a run --rm;

and checks, against the baseline: berthd's RSS grew by less than 5%; its open fds, the mounts
under the roots, the berth cgroups, the berth-shim processes, the container state directories
and the runtime state directories are back to the baseline. Exit 1 if any check fails.
Timings are reported but never gate anything.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def counts(pid: int, root: Path, ids: set[str]) -> dict[str, int]:
    mounts = sum(1 for l in Path("/proc/self/mountinfo").read_text().splitlines() if str(root) in l.split()[4])
    # Only this daemon's containers count (other daemons may share /sys/fs/cgroup/*/berth).
    cg = 0
    for base in [*Path("/sys/fs/cgroup").glob("*/berth"), Path("/sys/fs/cgroup/berth")]:
        if base.is_dir():
            cg += sum(1 for p in base.iterdir() if p.is_dir() and p.name in ids)
    shims = 0
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                c = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if b"berth-shim" in c and str(root).encode() in c:
                shims += 1
    return {
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "mounts": mounts,
        "cgroups": cg,
        "shims": shims,
        "container_dirs": len(list((root / "data" / "containers").glob("*"))),
        "runtime_dirs": len(list((root / "exec" / "runtime").glob("*"))),
        "bundles": len(list((root / "exec" / "containers").glob("*"))),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=100, help="cycles before the baseline")
    ap.add_argument("--bin-dir", default=str(REPO / "target" / "release"))
    ap.add_argument("--json", help="write the results as JSON here")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()

    import docker  # docker-py

    tmp = Path(tempfile.mkdtemp(prefix="berth-soak-"))
    sock = tmp / "b.sock"
    log = open(tmp / "berthd.log", "wb")
    proc = subprocess.Popen(
        [str(Path(a.bin_dir) / "berthd"), "--host", f"unix://{sock}", "--data-root", str(tmp / "data"),
         "--exec-root", str(tmp / "exec"), "--log-level", "warn"],
        stdout=log, stderr=log, start_new_session=True,
    )
    result: dict = {"cycles": a.cycles, "clients": a.clients}
    failures: list[str] = []
    try:
        url = f"unix://{sock}"
        for _ in range(200):
            if sock.exists():
                try:
                    docker.DockerClient(base_url=url).ping()
                    break
                except Exception:
                    pass
            time.sleep(0.05)
        cli = docker.DockerClient(base_url=url, timeout=120)
        tar = tmp / "rootfs.tar"
        subprocess.run(["bash", str(REPO / "scripts" / "mkimage.sh"), str(tar)], check=True, capture_output=True)
        with open(tar, "rb") as f:
            cli.api.import_image_from_data(f.read(), repository="soak/busybox", tag="1")
        img = "soak/busybox:1"
        ids: set[str] = set()

        def cycle(i: int):
            kw = {}
            if i % 4 == 0:
                kw["tmpfs"] = {"/scratch": "size=1m"}
            if i % 5 == 0:
                kw["labels"] = {"soak": str(i)}
            c = cli.containers.create(img, ["sleep", "30"], **kw)
            ids.add(c.id)
            c.start()
            c.stop(timeout=0)
            c.remove()

        lock = threading.Lock()

        def client(i: int):
            c = docker.DockerClient(base_url=url, timeout=120)
            c.containers.list(all=True, sparse=True)
            c.version()
            c.images.list()
            if i % 10 == 0:
                c.containers.run(img, ["true"], remove=True)
            c.close()

        def clients_round(n: int) -> list[str]:
            errs: list[str] = []

            def cworker(i: int):
                try:
                    client(i)
                except Exception as e:  # noqa: BLE001
                    with lock:
                        errs.append(f"client {i}: {e}")

            threads = [threading.Thread(target=cworker, args=(i,)) for i in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=300)
            return errs

        # Warm-up to a steady state (the event history is full, allocator arenas exist), then
        # the baseline.
        with ThreadPoolExecutor(max_workers=4) as ex:
            list(ex.map(cycle, range(a.warmup)))
        # One burst of concurrent clients sets the allocator's high-water mark (connection
        # buffers); leaks show as growth beyond it.
        clients_round(a.clients)
        time.sleep(12)
        base_rss = rss_kib(proc.pid)
        base = counts(proc.pid, tmp, ids)
        result["baseline"] = {"rss_kib": base_rss, **base}

        t0 = time.monotonic()
        done = 0
        errors: list[str] = []

        def worker(i: int):
            nonlocal done
            try:
                cycle(i)
            except Exception as e:  # noqa: BLE001 - recorded, then reported
                with lock:
                    errors.append(f"cycle {i}: {e}")
            with lock:
                done += 1

        with ThreadPoolExecutor(max_workers=4) as ex:
            list(ex.map(worker, range(a.cycles)))
        result["cycles_s"] = round(time.monotonic() - t0, 2)
        result["after_cycles"] = {"rss_kib": rss_kib(proc.pid), "threads": threads_of(proc.pid), **counts(proc.pid, tmp, ids)}
        if errors:
            failures.append(f"{len(errors)} cycles failed, first: {errors[0]}")

        t0 = time.monotonic()
        cerrors = clients_round(a.clients)
        result["clients_s"] = round(time.monotonic() - t0, 2)
        if cerrors:
            failures.append(f"{len(cerrors)} clients failed, first: {cerrors[0]}")
        cli.ping()  # the daemon still answers

        result["after_clients"] = {"rss_kib": rss_kib(proc.pid), "threads": threads_of(proc.pid), **counts(proc.pid, tmp, ids)}
        # Idle blocking-pool threads exit after 10 s; measure after they are gone.
        time.sleep(12)
        end_rss = rss_kib(proc.pid)
        end = counts(proc.pid, tmp, ids)
        result["end"] = {"rss_kib": end_rss, **end}
        growth = (end_rss - base_rss) / base_rss
        result["rss_growth"] = round(growth, 4)
        if growth >= 0.05:
            failures.append(f"RSS grew {growth:.1%} ({base_rss} -> {end_rss} KiB)")
        for k, v in base.items():
            if end[k] > v:
                failures.append(f"{k} leaked: {v} -> {end[k]}")
        cli.close()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            mp = line.split()[4]
            if mp.startswith(str(tmp)):
                subprocess.run(["umount", "-l", mp], capture_output=True)
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    result["failures"] = failures
    print(json.dumps(result, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2) + "\n")
    if failures:
        print("SOAK FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    print("soak: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
