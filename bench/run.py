#!/usr/bin/env python3
"""Berth benchmark harness (python3, stdlib only).

Runs every scenario against Berth and the reference systems in the same run,
interleaving the systems per iteration so that machine drift cancels out, and
prints min / median / p99 per system plus the ratio Berth / reference.

    python3 bench/run.py                 # --quick (default, < 3 minutes)
    python3 bench/run.py --full          # more iterations, N=50 / N=200
    python3 bench/run.py --json out.json # also write machine-readable results

It starts its own berthd and its own reference dockerd (scripts/ref-dockerd.sh
with private sockets, data roots and network namespace) under a temporary
directory, imports the same busybox rootfs (scripts/mkimage.sh) into both with
`docker import`, never pulls, and removes everything it created at the end.
Must run as root. See bench/README.md for what each scenario measures.
"""

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMAGE = "berthbench/busybox:bench"

MODES = {
    "quick": dict(warmup=3, run_iters=30, cli_iters=50, rt_iters=50, exec_iters=30,
                  par_n=10, par_reps=5, ps_n=20, ps_iters=30, log_mib=64, log_iters=20),
    "full": dict(warmup=5, run_iters=50, cli_iters=100, rt_iters=100, exec_iters=50,
                 par_n=50, par_reps=5, ps_n=200, ps_iters=50, log_mib=1024, log_iters=30),
}


class BenchError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- helpers

def run_cmd(cmd, env=None, check=True, timeout=120, capture=True):
    """Runs cmd; returns (elapsed_ms, CompletedProcess)."""
    t0 = time.perf_counter_ns()
    p = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=timeout, text=True)
    ms = (time.perf_counter_ns() - t0) / 1e6
    if check and p.returncode != 0:
        raise BenchError(f"{' '.join(map(str, cmd))} -> exit {p.returncode}: "
                         f"{(p.stderr or '').strip()[:400]}")
    return ms, p


def timed(cmd, env=None):
    return run_cmd(cmd, env=env)[0]


def stats(samples):
    s = sorted(samples)
    n = len(s)
    if n == 0:
        return None
    p99 = s[max(0, math.ceil(0.99 * n) - 1)]
    return {"n": n, "min": s[0], "median": statistics.median(s), "p99": p99,
            "mean": statistics.fmean(s), "samples": [round(x, 3) for x in samples]}


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def proc_table():
    """[(pid, ppid, comm, argv)] for every live process."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            comm = st[st.index("(") + 1:st.rindex(")")]
            ppid = int(st[st.rindex(")") + 2:].split()[1])
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except (OSError, ValueError):
            continue
        out.append((int(d), ppid, comm, argv))
    return out


def shim_pids(kind, cids):
    """PIDs of the per-container shims of the given containers (by id in argv)."""
    want = set(cids)
    pids = []
    for pid, _ppid, comm, argv in proc_table():
        if kind == "berth":
            # berthd executes shims from a sealed memfd (comm is then the fd number); argv[0]
            # is still the shim's path.
            if comm != "berth-shim" and not (argv and argv[0].endswith("berth-shim")):
                continue
            flag = "--id"
        else:
            if not comm.startswith("containerd-shim"):
                continue
            flag = "-id"
        for i, a in enumerate(argv[:-1]):
            if a == flag and argv[i + 1] in want:
                pids.append(pid)
                break
    return pids


def mounts_under(path):
    prefix = str(path).rstrip("/") + "/"
    res = []
    with open("/proc/self/mounts") as f:
        for line in f:
            mp = line.split()[1].replace("\\040", " ")
            if mp.startswith(prefix) or mp == str(path):
                res.append(mp)
    return res


def tool(name):
    return shutil.which(name)


# --------------------------------------------------------------------------- systems

class Daemon:
    """An Engine API daemon driven through the docker CLI."""

    def __init__(self, name, host, docker_cli, cfg_dir):
        self.name = name
        self.host = host
        self.docker = docker_cli
        self.env = dict(os.environ, DOCKER_HOST=host, DOCKER_CONFIG=str(cfg_dir),
                        DOCKER_CLI_HINTS="false")
        self.created = set()  # container ids this run created and has not removed

    def d(self, *args):
        return [self.docker, *args]

    def ok(self):
        try:
            run_cmd(self.d("version", "--format", "{{.Server.Version}}"), env=self.env,
                    timeout=10)
            return True
        except (BenchError, subprocess.TimeoutExpired):
            return False

    def rm(self, ids):
        ids = list(ids)
        for i in range(0, len(ids), 50):
            run_cmd(self.d("rm", "-f", *ids[i:i + 50]), env=self.env, check=False, timeout=300)
        self.created.difference_update(ids)

    def daemon_pids(self):
        raise NotImplementedError


class Berthd(Daemon):
    kind = "berth"

    def __init__(self, root, bins, docker_cli, cfg_dir):
        self.sock = root / "b.sock"
        super().__init__("berthd", f"unix://{self.sock}", docker_cli, cfg_dir)
        self.root = root
        self.bins = bins
        self.proc = None
        self.extra_args: list[str] = []

    def start(self):
        logf = open(self.root / "berthd.log", "ab")
        env = dict(os.environ)
        env["PATH"] = f"{self.bins}:{env.get('PATH', '')}"  # berth-shim / berth-runtime
        self.proc = subprocess.Popen(
            [str(self.bins / "berthd"), "--host", self.host,
             "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
             *self.extra_args],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env,
            start_new_session=True)
        logf.close()
        for _ in range(300):
            if self.proc.poll() is not None:
                raise BenchError(f"berthd exited ({self.proc.returncode}); see {self.root}/berthd.log")
            if self.sock.exists() and self.ok():
                return
            time.sleep(0.05)
        raise BenchError("berthd did not answer within 15 s")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            log("berthd: still alive 30 s after SIGTERM, sending SIGKILL")
            self.proc.kill()
            self.proc.wait()

    def daemon_pids(self):
        return [self.proc.pid] if self.proc else []


class RefDockerd(Daemon):
    kind = "docker"

    def __init__(self, root, docker_cli, cfg_dir, external_host=None):
        self.external = external_host is not None
        self.root = root
        self.sock = root / "ref.sock"
        host = external_host or f"unix://{self.sock}"
        super().__init__("dockerd", host, docker_cli, cfg_dir)
        self.netns = f"berth-bench-{os.getpid()}"
        self.script_env = dict(
            os.environ, REF_DOCKER_SOCK=str(self.sock), REF_DOCKER_ROOT=str(root / "refdata"),
            REF_DOCKER_EXEC_ROOT=str(root / "refexec"), REF_DOCKER_PIDFILE=str(root / "ref.pid"),
            REF_DOCKER_NETNS=self.netns, REF_DOCKER_LOG=str(root / "ref-dockerd.log"),
            DOCKER_CLI=docker_cli)
        self.started = False
        self.pid = None

    def start(self):
        if self.external:
            if not self.ok():
                raise BenchError(f"reference daemon at {self.host} does not answer")
            self.pid = self._find_external_pid()
            return
        self.started = True
        run_cmd([str(REPO / "scripts" / "ref-dockerd.sh"), "start"], env=self.script_env,
                timeout=60)
        self.pid = int((self.root / "ref.pid").read_text().strip())

    def _find_external_pid(self):
        path = self.host[len("unix://"):]
        for pid, _pp, comm, argv in proc_table():
            if comm == "dockerd" and any(path in a for a in argv):
                return pid
        return None

    def stop(self):
        if not self.started:
            return
        run_cmd([str(REPO / "scripts" / "ref-dockerd.sh"), "stop"], env=self.script_env,
                check=False, timeout=60)
        run_cmd(["ip", "netns", "del", self.netns], check=False)

    def daemon_pids(self):
        if not self.pid:
            return []
        pids = [self.pid]
        for pid, ppid, comm, _argv in proc_table():
            if ppid == self.pid and comm == "containerd":
                pids.append(pid)
        return pids


# --------------------------------------------------------------------------- harness

class Bench:
    def __init__(self, args):
        self.args = args
        self.mode = "full" if args.full else "quick"
        self.p = dict(MODES[self.mode])
        if args.iterations:
            for k in ("run_iters", "cli_iters", "rt_iters", "exec_iters", "ps_iters", "log_iters"):
                self.p[k] = args.iterations
        self.bins = Path(args.bin_dir).resolve()
        self.tmp = Path(tempfile.mkdtemp(prefix="berth-bench-", dir="/tmp"))
        self.docker_cli = args.docker or tool("docker")
        self.berthd = None
        self.ref = None
        self.results = []
        self.notes = []

    # ---------------------------------------------------------------- setup

    def setup(self):
        for b in ("berthd", "berth-shim", "berth-runtime", "berth"):
            if not (self.bins / b).is_file():
                raise BenchError(f"{self.bins / b} missing: run `cargo build --release` first")
        if os.geteuid() != 0:
            raise BenchError("the benchmark must run as root")
        self.image_tar = self.tmp / "busybox.tar"
        run_cmd([str(REPO / "scripts" / "mkimage.sh"), str(self.image_tar)], timeout=120)
        cfg = self.tmp / "docker-config"
        cfg.mkdir()
        if not self.docker_cli:
            log("SKIP: docker CLI not installed; scenarios 1, 4, 5, 6 need it")
        else:
            self.berthd = Berthd(self.tmp / "berthd", self.bins, self.docker_cli, cfg)
            self.berthd.root.mkdir()
            if self.args.favor_dynmods:
                self.dynmods_before = cgroup2_favor_dynmods()
                self.berthd.extra_args.append("--cgroup-favor-dynmods")
                log("berthd runs with --cgroup-favor-dynmods (host-wide; restored at the end)")
            log("starting private berthd ...")
            self.berthd.start()
            if self.args.no_ref:
                log("SKIP: reference dockerd disabled by --no-ref")
            elif self.args.ref_host or tool("dockerd"):
                ref_root = self.tmp / "ref"
                ref_root.mkdir()
                self.ref = RefDockerd(ref_root, self.docker_cli, cfg, self.args.ref_host)
                log(f"starting reference dockerd ({self.args.ref_host or 'private'}) ...")
                self.ref.start()
            else:
                log("SKIP: dockerd not installed; the reference column will be empty")
            for d in self.daemons():
                run_cmd(d.d("import", str(self.image_tar), IMAGE), env=d.env, timeout=120)
        # The OCI bundle for scenario 3.
        self.bundle = self.tmp / "bundle"
        (self.bundle / "rootfs").mkdir(parents=True)
        run_cmd(["tar", "-xf", str(self.image_tar), "-C", str(self.bundle / "rootfs")])
        self.make_config()

    def make_config(self):
        cfg_path = self.bundle / "config.json"
        if tool("runc"):
            run_cmd(["runc", "spec", "--bundle", str(self.bundle)])
        else:
            run_cmd([str(self.bins / "berth-runtime"), "spec", "--bundle", str(self.bundle)])
        cfg = json.loads(cfg_path.read_text())
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = ["/bin/true"]
        cfg["root"] = {"path": "rootfs", "readonly": True}
        # Keep the same namespaces for all three runtimes: pid, net, ipc, uts, mount.
        keep = {"pid", "network", "ipc", "uts", "mount"}
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"].get("namespaces", [])
                                      if n["type"] in keep]
        cfg_path.write_text(json.dumps(cfg, indent=2))
        self.namespaces = sorted(n["type"] for n in cfg["linux"]["namespaces"])

    def daemons(self):
        return [d for d in (self.berthd, self.ref) if d is not None]

    # ---------------------------------------------------------------- core loops

    def compare(self, systems, iters, warmup):
        """systems: [(name, fn(i) -> ms)]. Interleaved; order alternates per iteration."""
        for name, fn in systems:
            for w in range(warmup):
                fn(-1 - w)
        samples = {name: [] for name, _ in systems}
        for i in range(iters):
            order = systems if i % 2 == 0 else list(reversed(systems))
            for name, fn in order:
                samples[name].append(fn(i))
        return samples

    def record(self, sid, title, berth, samples, unit="ms", note=None, status="ok", message=None):
        res = {name: stats(s) for name, s in samples.items() if s}
        ratios = {}
        if berth in res:
            for name, st in res.items():
                if name == berth or not st or not st["median"]:
                    continue
                ratios[name] = {"median": res[berth]["median"] / st["median"],
                                "min": res[berth]["min"] / st["min"] if st["min"] else None}
        entry = {"id": sid, "title": title, "unit": unit, "status": status, "berth": berth,
                 "results": res, "ratios": ratios}
        if message:
            entry["message"] = message
        if note:
            entry["note"] = note
        self.results.append(entry)
        print_entry(entry)
        return entry

    def skip(self, sid, title, message, berth="berthd", refs=()):
        log(f"SKIP {sid}: {message}")
        entry = {"id": sid, "title": title, "unit": "ms", "status": "skipped", "berth": berth,
                 "message": message, "results": {}, "ratios": {}, "refs": list(refs)}
        self.results.append(entry)
        print_entry(entry)

    def guarded(self, sid, title, fn):
        try:
            fn()
        except (BenchError, subprocess.TimeoutExpired) as e:
            self.skip(sid, title, f"failed: {e}")

    # ---------------------------------------------------------------- scenarios

    def s1_docker_run(self):
        title = "docker run --rm --network none IMG true (docker CLI)"
        if not self.berthd:
            return self.skip("1", title, "docker CLI not installed")
        systems = []
        for d in self.daemons():
            cmd = d.d("run", "--rm", "--pull", "never", "--network", "none", IMAGE, "true")
            systems.append((d.name, lambda i, cmd=cmd, env=d.env: timed(cmd, env)))
        note = None if self.ref else "reference dockerd not available"
        samples = self.compare(systems, self.p["run_iters"], self.p["warmup"])
        self.record("1", title, "berthd", samples, note=note)

    def s2_berth_run(self):
        title = "berth run --rm IMG true (berth CLI) vs unshare floor"
        if not self.berthd:
            return self.skip("2", title, "needs berthd (docker CLI missing: not started)", "berth")
        berth = [str(self.bins / "berth"), "-H", self.berthd.host, "run", "--rm", IMAGE, "true"]
        systems = [("berth", lambda i: timed(berth))]
        if tool("unshare"):
            floor = ["unshare", "--fork", "--pid", "--mount", "--uts", "--ipc", "--net", "true"]
            systems.append(("unshare-floor", lambda i: timed(floor)))
        else:
            log("SKIP: unshare not installed; no floor for scenario 2")
        samples = self.compare(systems, self.p["cli_iters"], self.p["warmup"])
        self.record("2", title, "berth", samples)

    def s3_runtime(self):
        title = "OCI runtime `run` of a bundle running /bin/true"
        runtimes = [("berth-runtime", str(self.bins / "berth-runtime"))]
        for r in ("runc", "crun"):
            if tool(r):
                runtimes.append((r, tool(r)))
            else:
                log(f"SKIP: {r} not installed (scenario 3)")
        job = {"bundle": str(self.bundle), "runtimes": runtimes, "iters": self.p["rt_iters"],
               "warmup": self.p["warmup"], "state": str(self.tmp / "rt-state")}
        job_file = self.tmp / "rt-job.json"
        job_file.write_text(json.dumps(job))
        # crun refuses a hybrid cgroup layout whose cgroup2 mount has controllers; run all
        # three runtimes in one private mount namespace where that mount is hidden, so the
        # three see the same (pure v1) cgroups. Nothing propagates back to the host.
        cmd = ["unshare", "--mount", "--propagation", "private", sys.executable,
               str(Path(__file__).resolve()), "--runtime-child", str(job_file)]
        _, p = run_cmd(cmd, timeout=600)
        out = json.loads(p.stdout)
        note = f"namespaces: {','.join(self.namespaces)}; {out['cgroups']}"
        if out.get("errors"):
            note += "; errors: " + "; ".join(out["errors"])
        self.record("3", title, "berth-runtime", out["samples"], note=note)

    def s4_exec(self):
        title = "docker exec C true"
        if not self.berthd:
            return self.skip("4", title, "docker CLI not installed")
        b = self.berthd
        _, p = run_cmd(b.d("run", "-d", "--pull", "never", "--network", "none", IMAGE,
                           "sleep", "600"), env=b.env)
        bc = p.stdout.strip()
        b.created.add(bc)
        rc_c = None
        try:
            _, probe = run_cmd(b.d("exec", bc, "true"), env=b.env, check=False)
            if probe.returncode != 0:
                err = (probe.stderr or "").strip().splitlines()
                why = err[0] if err else f"exit {probe.returncode}"
                why = why if len(why) <= 90 else why[:60] + " ... " + why[-25:]
                return self.skip("4", title, f"berthd has no exec yet (probe: {why})",
                                 refs=["dockerd"] if self.ref else [])
            systems = [("berthd", lambda i: timed(b.d("exec", bc, "true"), b.env))]
            if self.ref:
                r = self.ref
                _, p = run_cmd(r.d("run", "-d", "--pull", "never", "--network", "none", IMAGE,
                                   "sleep", "600"), env=r.env)
                rc_c = p.stdout.strip()
                r.created.add(rc_c)
                systems.append(("dockerd", lambda i: timed(r.d("exec", rc_c, "true"), r.env)))
            samples = self.compare(systems, self.p["exec_iters"], self.p["warmup"])
            self.record("4", title, "berthd", samples)
        finally:
            b.rm([bc])
            if rc_c:
                self.ref.rm([rc_c])

    def daemon_rss_mib(self, d):
        return sum(rss_kb(p) for p in d.daemon_pids()) / 1024.0

    def s5_parallel(self):
        n = self.p["par_n"]
        title = f"docker run -d sleep 600 x{n} in parallel: time until all running"
        if not self.berthd:
            return self.skip("5", title, "docker CLI not installed")
        # Idle RSS: no containers, after the earlier scenarios warmed the daemons up.
        idle = {d.name: [] for d in self.daemons()}
        for _ in range(3):
            for d in self.daemons():
                idle[d.name].append(self.daemon_rss_mib(d))
            time.sleep(0.2)
        start_s = {d.name: [] for d in self.daemons()}
        rm_s = {d.name: [] for d in self.daemons()}
        shim_mib = {d.name: [] for d in self.daemons()}
        grow_mib = {d.name: [] for d in self.daemons()}
        daemons = self.daemons()
        for rep in range(self.p["par_reps"]):
            order = daemons if rep % 2 == 0 else list(reversed(daemons))
            for d in order:
                base = self.daemon_rss_mib(d)
                cmd = d.d("run", "-d", "--pull", "never", "--network", "none", IMAGE,
                          "sleep", "600")
                t0 = time.perf_counter_ns()
                procs = [subprocess.Popen(cmd, env=d.env, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True) for _ in range(n)]
                outs = [p.communicate(timeout=300) for p in procs]
                ms = (time.perf_counter_ns() - t0) / 1e6
                ids = [o[0].strip() for o in outs if o[0].strip()]
                d.created.update(ids)
                bad = [(p.returncode, o[1].strip()[:200]) for p, o in zip(procs, outs)
                       if p.returncode != 0]
                if bad:
                    d.rm(ids)
                    raise BenchError(f"{d.name}: {len(bad)}/{n} runs failed, e.g. {bad[0]}")
                _, ps = run_cmd(d.d("ps", "-q", "--no-trunc"), env=d.env)
                running = set(ps.stdout.split())
                missing = [i for i in ids if i not in running]
                if missing:
                    d.rm(ids)
                    raise BenchError(f"{d.name}: {len(missing)} containers not running")
                start_s[d.name].append(ms)
                time.sleep(0.3)  # let shims settle before sampling memory
                shims = shim_pids(d.kind, ids)
                shim_mib[d.name].append(sum(rss_kb(p) for p in shims) / 1024.0 / n)
                grow_mib[d.name].append((self.daemon_rss_mib(d) - base) / n)
                if len(shims) != n:
                    self.notes.append(f"scenario 5: found {len(shims)} shims for {n} "
                                      f"{d.name} containers")
                t0 = time.perf_counter_ns()
                d.rm(ids)
                rm_s[d.name].append((time.perf_counter_ns() - t0) / 1e6)
        self.record("5", title, "berthd", start_s)
        self.record("5r", f"docker rm -f of those {n} containers", "berthd", rm_s)
        self.record("5m", "idle daemon RSS (berthd vs dockerd+containerd)", "berthd", idle,
                    unit="MiB", note="VmRSS sum; no containers, after scenarios 1-4")
        self.record("5s", "resident overhead per container: shim RSS", "berthd", shim_mib,
                    unit="MiB", note="berth-shim vs containerd-shim-runc-v2 (VmRSS / container)")
        self.record("5d", "resident overhead per container: daemon RSS growth", "berthd",
                    grow_mib, unit="MiB", note="(daemon RSS with N running - before) / N")

    def s6_ps_inspect(self):
        n = self.p["ps_n"]
        title_ps = f"docker ps with {n} running containers"
        title_in = "docker inspect C"
        if not self.berthd:
            self.skip("6", title_ps, "docker CLI not installed")
            return self.skip("6i", title_in, "docker CLI not installed")
        ids = {}
        try:
            for d in self.daemons():
                ids[d.name] = self.create_many(d, n)
            systems_ps = []
            systems_in = []
            for d in self.daemons():
                _, ps = run_cmd(d.d("ps"), env=d.env)
                lines = len(ps.stdout.strip().splitlines()) - 1
                if lines != n:
                    raise BenchError(f"{d.name}: docker ps shows {lines} containers, want {n}")
                systems_ps.append((d.name, lambda i, d=d: timed(d.d("ps"), d.env)))
                target = ids[d.name][len(ids[d.name]) // 2]
                systems_in.append((d.name, lambda i, d=d, t=target:
                                   timed(d.d("inspect", t), d.env)))
            self.record("6", title_ps, "berthd",
                        self.compare(systems_ps, self.p["ps_iters"], self.p["warmup"]))
            self.record("6i", title_in, "berthd",
                        self.compare(systems_in, self.p["ps_iters"], self.p["warmup"]))
        finally:
            for d in self.daemons():
                d.rm(ids.get(d.name, []))

    def s7_logs(self):
        """`logs --tail 100` and `logs --since T` on one big json-file log (the file is written
        directly into the stopped container's log path: LOG_MIB of numbered entries, one time
        per 64 KiB). Measured through the Engine API on the daemons' sockets (same client for
        both), so the CLI's own start-up does not hide the daemons' difference."""
        mib = self.p["log_mib"]
        title_t = f"logs --tail 100 on a {mib} MiB json-file log (API)"
        title_s = f"logs --since (last second) on a {mib} MiB json-file log (API)"
        if not self.berthd:
            self.skip("7", title_t, "docker CLI not installed")
            return self.skip("7s", title_s, "docker CLI not installed")
        made = {}
        try:
            path, since = None, None
            for d in self.daemons():
                _, p = run_cmd(d.d("run", "-d", "--pull", "never", "--network", "none", IMAGE, "true"),
                               env=d.env)
                cid = p.stdout.strip()
                d.created.add(cid)
                made[d.name] = cid
                run_cmd(d.d("wait", cid), env=d.env)
                _, p = run_cmd(d.d("inspect", "-f", "{{.LogPath}}", cid), env=d.env)
                target = Path(p.stdout.strip())
                if path is None:
                    path = self.tmp / "big-json.log"
                    since = write_big_log(path, mib)
                shutil.copyfile(path, target)
                if d.kind == "berth":
                    shutil.copyfile(str(path) + ".idx", str(target) + ".idx")
            systems_t, systems_s = [], []
            for d in self.daemons():
                sock = d.host[len("unix://"):]
                q_t = f"/containers/{made[d.name]}/logs?stdout=1&stderr=1&tail=100"
                q_s = f"/containers/{made[d.name]}/logs?stdout=1&stderr=1&since={since}"
                n_t = api_get_count(sock, q_t)
                n_s = api_get_count(sock, q_s)
                if n_t[1] != 100 or n_s[1] < 1:
                    raise BenchError(f"{d.name}: tail gave {n_t[1]} lines, since {n_s[1]}")
                systems_t.append((d.name, lambda i, s=sock, q=q_t: api_get_count(s, q)[0]))
                systems_s.append((d.name, lambda i, s=sock, q=q_s: api_get_count(s, q)[0]))
            self.record("7", title_t, "berthd",
                        self.compare(systems_t, self.p["log_iters"], self.p["warmup"]))
            self.record("7s", title_s, "berthd",
                        self.compare(systems_s, max(3, self.p["log_iters"] // 4), 1))
        finally:
            for d in self.daemons():
                if d.name in made:
                    d.rm([made[d.name]])
            for f in (self.tmp / "big-json.log", self.tmp / "big-json.log.idx"):
                if f.exists():
                    f.unlink()

    def create_many(self, d, n, batch=10):
        cmd = d.d("run", "-d", "--pull", "never", "--network", "none", IMAGE, "sleep", "600")
        ids = []
        for start in range(0, n, batch):
            procs = [subprocess.Popen(cmd, env=d.env, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for _ in range(min(batch, n - start))]
            for p in procs:
                out, err = p.communicate(timeout=300)
                if out.strip():
                    ids.append(out.strip())
                    d.created.add(out.strip())
                if p.returncode != 0:
                    raise BenchError(f"{d.name}: run -d failed: {err.strip()[:200]}")
        return ids

    # ---------------------------------------------------------------- teardown

    def cleanup(self):
        if getattr(self, "dynmods_before", None) is False:
            set_cgroup2_favor_dynmods(False)
        for d in self.daemons():
            try:
                if d.created:
                    d.rm(list(d.created))
                private = not (isinstance(d, RefDockerd) and d.external)
                if private and d.ok():
                    # Private daemon: everything on it is ours (e.g. a failed --rm run).
                    _, p = run_cmd(d.d("ps", "-aq"), env=d.env, check=False)
                    left = p.stdout.split()
                    if left:
                        d.rm(left)
                if d.ok():
                    run_cmd(d.d("rmi", "-f", IMAGE), env=d.env, check=False)
            except (BenchError, subprocess.TimeoutExpired, OSError) as e:
                log(f"cleanup {d.name}: {e}")
        for d in (self.ref, self.berthd):
            if d is not None:
                try:
                    d.stop()
                except (BenchError, subprocess.TimeoutExpired, OSError) as e:
                    log(f"stopping {d.name}: {e}")
        left = mounts_under(self.tmp)
        for mp in sorted(left, key=len, reverse=True):
            run_cmd(["umount", "-l", mp], check=False)
        if mounts_under(self.tmp):
            log(f"WARNING: mounts remain under {self.tmp}; not removing it")
        elif not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ---------------------------------------------------------------- main

    def run(self):
        t0 = time.monotonic()
        meta = machine_meta(self.mode, self.p, self.docker_cli)
        print(f"Berth benchmark, mode {self.mode}, {meta['date']}, nproc {meta['nproc']}, "
              f"kernel {meta['kernel']}, loadavg {meta['loadavg_at_start']}")
        try:
            self.setup()
            meta["versions"] = self.versions()
            scen = [("1", "docker run", self.s1_docker_run), ("2", "berth run", self.s2_berth_run),
                    ("3", "runtime run", self.s3_runtime), ("4", "exec", self.s4_exec),
                    ("5", "parallel run", self.s5_parallel), ("6", "ps/inspect", self.s6_ps_inspect),
                    ("7", "logs", self.s7_logs)]
            only = set(self.args.only.split(",")) if self.args.only else None
            for sid, title, fn in scen:
                if only and sid not in only:
                    continue
                self.guarded(sid, title, fn)
        finally:
            self.cleanup()
        meta["elapsed_s"] = round(time.monotonic() - t0, 1)
        print(f"\ntotal wall time {meta['elapsed_s']} s")
        for n in self.notes:
            print(f"note: {n}")
        doc = {"meta": meta, "params": self.p, "scenarios": self.results, "notes": self.notes}
        if self.args.json:
            tmp = Path(self.args.json + ".tmp")
            with open(tmp, "w") as f:
                json.dump(doc, f, indent=2)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.args.json)
            print(f"wrote {self.args.json}")
        return doc

    def versions(self):
        v = {}
        for name, cmd in (("runc", ["runc", "--version"]), ("crun", ["crun", "--version"]),
                          ("dockerd", ["dockerd", "--version"]),
                          ("docker-cli", [self.docker_cli or "docker", "--version"])):
            if tool(cmd[0]):
                _, p = run_cmd(cmd, check=False)
                v[name] = (p.stdout or "").strip().splitlines()[0] if p.stdout else "?"
        _, p = run_cmd(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], check=False)
        v["berth-commit"] = p.stdout.strip()
        return v


def write_big_log(path, mib):
    """Writes `mib` MiB of json-file entries (1 ms apart, stdout/stderr alternating) and Berth's
    sparse time index beside it (offset + Unix nanoseconds every 64 KiB, as the shim writes it).
    Returns a `since` value (Unix seconds) one second before the last entry."""
    import struct
    t0 = int(time.time()) - 86400
    body = "x" * 80
    size = mib << 20
    written = 0
    last_indexed = None
    i = 0
    with open(path, "wb", buffering=1 << 20) as f, open(str(path) + ".idx", "wb") as ix:
        while written < size:
            ns = t0 * 1_000_000_000 + i * 1_000_000
            sec, frac = divmod(ns, 1_000_000_000)
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:09d}Z"
            stream = "stdout" if i % 2 == 0 else "stderr"
            line = f'{{"log":"line {i} {body}\\n","stream":"{stream}","time":"{ts}"}}\n'.encode()
            if last_indexed is None or written >= last_indexed + 65536:
                ix.write(struct.pack("<Qq", written, ns))
                last_indexed = written
            f.write(line)
            written += len(line)
            i += 1
    return f"{(t0 * 1_000_000_000 + (i - 1) * 1_000_000) // 1_000_000_000 - 1}"


def api_get_count(sock, path):
    """GET `path` on a Unix socket (HTTP/1.0, read to EOF); returns (ms, frames in the body)."""
    import socket as _socket
    t0 = time.perf_counter_ns()
    with _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM) as s:
        s.settimeout(300)
        s.connect(sock)
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n".encode())
        chunks = []
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            chunks.append(b)
    ms = (time.perf_counter_ns() - t0) / 1e6
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        raise BenchError(f"GET {path}: {head[:200]!r}")
    if b"chunked" in head.lower():
        raw, out = body, b""
        while raw:
            ln, _, rest = raw.partition(b"\r\n")
            n = int(ln.split(b";")[0] or b"0", 16)
            if n == 0:
                break
            out += rest[:n]
            raw = rest[n + 2:]
        body = out
    frames, off = 0, 0
    while off + 8 <= len(body):
        n = int.from_bytes(body[off + 4:off + 8], "big")
        off += 8 + n
        frames += 1
    return ms, frames


def machine_meta(mode, params, docker_cli):
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ"),
            "mode": mode, "nproc": os.cpu_count(), "kernel": platform.release(),
            "machine": platform.machine(), "python": platform.python_version(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}


def fmt(x, unit):
    if x is None:
        return "-"
    return f"{x:.2f}" if unit == "MiB" or x < 100 else f"{x:.1f}"


def print_entry(e):
    print(f"\n== {e['id']}. {e['title']} [{e['unit']}] ==")
    if e["status"] != "ok":
        print(f"   SKIPPED: {e.get('message', '')}")
        names = [e["berth"], *e.get("refs", [])]
        for name in names:
            print(f"   {name:<16} {'-':>6} {'-':>9} {'-':>9} {'-':>9}")
        return
    print(f"   {'system':<16} {'n':>6} {'min':>9} {'median':>9} {'p99':>9}  ratio Berth/ref (median)")
    for name, st in e["results"].items():
        r = e["ratios"].get(name)
        rtxt = "(berth)" if name == e["berth"] else (f"{r['median']:.2f}x" if r else "-")
        print(f"   {name:<16} {st['n']:>6} {fmt(st['min'], e['unit']):>9} "
              f"{fmt(st['median'], e['unit']):>9} {fmt(st['p99'], e['unit']):>9}  {rtxt}")
    if e.get("note"):
        print(f"   note: {e['note']}")
    sys.stdout.flush()


# --------------------------------------------------------------------------- runtime child

def runtime_child(job_file):
    """Runs inside `unshare --mount`: times `<rt> run` for each runtime, interleaved."""
    job = json.loads(Path(job_file).read_text())
    uni = "/sys/fs/cgroup/unified"
    cg = "cgroups: "
    mounts = open("/proc/self/mounts").read().split("\n")
    if any(len(m.split()) > 2 and m.split()[1] == uni for m in mounts):
        subprocess.run(["umount", uni], check=True)
        cg += "hybrid host; cgroup2 mount hidden in a private mount ns (pure v1 for all)"
    elif os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        cg += "v2"
    else:
        cg += "v1"
    state = Path(job["state"])
    bundle = job["bundle"]
    errors = []

    def one(name, path, i):
        root = state / name
        cid = f"bench-{name}-{os.getpid()}-{'w' if i < 0 else ''}{abs(i)}"
        t0 = time.perf_counter_ns()
        p = subprocess.run([path, "--root", str(root), "run", "--bundle", bundle, cid],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        ms = (time.perf_counter_ns() - t0) / 1e6
        # Untimed: delete if the runtime kept any state.
        if (root / cid).exists():
            subprocess.run([path, "--root", str(root), "delete", "--force", cid],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if p.returncode != 0:
            raise BenchError(f"{name} run exited {p.returncode}: {p.stderr.strip()[:300]}")
        return ms

    samples = {}
    alive = []
    for name, path in job["runtimes"]:
        try:
            for w in range(job["warmup"]):
                one(name, path, -1 - w)
            alive.append((name, path))
            samples[name] = []
        except BenchError as e:
            errors.append(str(e))
    for i in range(job["iters"]):
        order = alive if i % 2 == 0 else list(reversed(alive))
        for name, path in order:
            samples[name].append(one(name, path, i))
    for name, path in job["runtimes"]:
        root = state / name
        if root.is_dir():
            for cid in os.listdir(root):
                if cid.startswith("bench-"):
                    subprocess.run([path, "--root", str(root), "delete", "--force", cid],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    json.dump({"samples": samples, "cgroups": cg, "errors": errors}, sys.stdout)
    return 0


def cgroup2_mount_line() -> list[str] | None:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        if right.split()[:1] == ["cgroup2"]:
            return [left.split()[4], right.split()[2]]
    return None


def cgroup2_favor_dynmods() -> bool | None:
    m = cgroup2_mount_line()
    return None if m is None else "favordynmods" in m[1].split(",")


def set_cgroup2_favor_dynmods(on: bool) -> None:
    """Remounts cgroup2 with or without favordynmods (mount(8) would merge the old options)."""
    import ctypes

    m = cgroup2_mount_line()
    if m is None:
        return
    opts = [o for o in m[1].split(",") if o not in ("rw", "ro", "favordynmods")]
    if on:
        opts.append("favordynmods")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"none", m[0].encode(), b"cgroup2", 32, ",".join(opts).encode()) != 0:  # MS_REMOUNT
        log(f"warning: cannot remount {m[0]}: {os.strerror(ctypes.get_errno())}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="default: few iterations, < 3 minutes")
    g.add_argument("--full", action="store_true", help="more iterations, N=50 / N=200")
    ap.add_argument("--json", metavar="OUT", help="write results as JSON to OUT")
    ap.add_argument("--bin-dir", default=str(REPO / "target" / "release"),
                    help="where berthd, berth-shim, berth-runtime, berth are (default: %(default)s)")
    ap.add_argument("--docker", help="docker CLI to use (default: docker on PATH)")
    ap.add_argument("--ref-host", help="use this already running reference daemon "
                    "(unix://...) instead of starting a private one; it is not stopped")
    ap.add_argument("--no-ref", action="store_true", help="do not run the reference dockerd")
    ap.add_argument("--only", help="comma-separated scenario ids, e.g. 1,3")
    ap.add_argument("--iterations", type=int, help="override the per-scenario iteration count")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--favor-dynmods", action="store_true",
                    help="run berthd with --cgroup-favor-dynmods (host-wide, so the reference "
                    "benefits too); the previous setting is restored at the end")
    ap.add_argument("--runtime-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.runtime_child:
        return runtime_child(args.runtime_child)
    bench = Bench(args)

    def on_term(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        bench.run()
    except BenchError as e:
        log(f"error: {e}")
        return 1
    except KeyboardInterrupt:
        log("interrupted; cleaned up")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
