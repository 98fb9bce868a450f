"""Daemon control and CLI helpers for the e2e suite (no pytest fixtures here)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "scripts"
DOCKER_CLI = os.environ.get("DOCKER_CLI") or (
    "/usr/local/bin/docker" if os.path.exists("/usr/local/bin/docker") else "docker"
)
# A private, empty CLI config: no contexts, no credential helpers, no hints.
_CLI_CONFIG = tempfile.mkdtemp(prefix="berth-e2e-cli-")


def cli_env(host: str) -> dict:
    env = dict(os.environ)
    for k in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        env.pop(k, None)
    env["DOCKER_HOST"] = host
    env["DOCKER_CONFIG"] = _CLI_CONFIG
    env["DOCKER_CLI_HINTS"] = "false"
    return env


def run_cli(host: str, *args: str, input: bytes | str | None = None, timeout: float = 120):
    """Run the docker CLI against `host`; returns (rc, stdout, stderr) as text."""
    if isinstance(input, str):
        input = input.encode()
    p = subprocess.run(
        [DOCKER_CLI, *args],
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        env=cli_env(host),
        timeout=timeout,
    )
    return (
        p.returncode,
        p.stdout.decode("utf-8", "replace"),
        p.stderr.decode("utf-8", "replace"),
    )


def ping(sock: str, timeout: float = 2.0) -> bool:
    """True when the daemon on `sock` answers GET /_ping with 200."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(sock)
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: api.moby.localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data.startswith(b"HTTP/1.") and b" 200 " in data.split(b"\r\n", 1)[0]
    except OSError:
        return False


def build_rootfs_tar(out: Path) -> Path:
    if not out.exists():
        subprocess.run(["bash", str(SCRIPTS / "mkimage.sh"), str(out)], check=True)
    return out


def mounts_under(*roots: Path | str) -> list[str]:
    """Lines of /proc/self/mountinfo whose mount point or root lies under a root."""
    roots = [str(r).rstrip("/") for r in roots if r]
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mnt_root, mnt_point = fields[3], fields[4]
            mnt_point = mnt_point.replace("\\040", " ")
            for r in roots:
                if mnt_point == r or mnt_point.startswith(r + "/") or mnt_root.startswith(r + "/"):
                    out.append(line.rstrip("\n"))
                    break
    return out


def cgroup_dirs_named(fragment: str) -> list[str]:
    """cgroup directories (any hierarchy) whose name contains `fragment`."""
    hits = []
    base = Path("/sys/fs/cgroup")
    for dirpath, dirnames, _ in os.walk(base):
        for d in dirnames:
            if fragment in d:
                hits.append(os.path.join(dirpath, d))
        # cgroup trees are shallow; avoid walking deep per-process hierarchies
        if dirpath.count("/") > 8:
            dirnames[:] = []
    return hits


def processes_mentioning(fragment: str) -> list[str]:
    """Host processes whose command line mentions `fragment` (e.g. a container id)."""
    hits = []
    me = os.getpid()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if fragment in cmd:
            hits.append(f"{pid}: {cmd.strip()}")
    return hits


def wait_for(pred, timeout: float = 10.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Daemon:
    """A daemon under test. Subclasses implement start/stop."""

    target = "?"
    sock: str
    data_root: Path
    exec_root: Path

    @property
    def host(self) -> str:
        return "unix://" + self.sock

    # --- CLI helpers -------------------------------------------------------
    def docker(self, *args: str, input=None, timeout: float = 120):
        return run_cli(self.host, *args, input=input, timeout=timeout)

    def ok(self, *args: str, input=None, timeout: float = 120) -> str:
        rc, out, err = self.docker(*args, input=input, timeout=timeout)
        assert rc == 0, f"docker {' '.join(args)} -> rc={rc}\nstdout: {out}\nstderr: {err}"
        return out

    @property
    def net_args(self) -> list[str]:
        # Both daemons default to their bridge network now.
        return []

    def run_args(self, *args: str) -> list[str]:
        return ["run", "--pull", "never", *self.net_args, *args]

    def run(self, *args: str, input=None, timeout: float = 120):
        """`docker run --pull never [--network none] ARGS` -> (rc, out, err)."""
        return self.docker(*self.run_args(*args), input=input, timeout=timeout)

    def inspect(self, obj: str, kind: str | None = None) -> dict:
        args = ["inspect"] + (["--type", kind] if kind else []) + [obj]
        return json.loads(self.ok(*args))[0]

    def client(self):
        import docker  # docker-py

        return docker.DockerClient(base_url=self.host, timeout=120)

    # --- lifecycle ---------------------------------------------------------
    def start(self):
        raise NotImplementedError

    def stop(self):
        raise NotImplementedError

    def restart(self):
        self.stop()
        self.check_clean_shutdown()
        self.start()

    def check_clean_shutdown(self):
        pass


class BerthDaemon(Daemon):
    target = "berth"

    def __init__(self, root: Path):
        self.root = Path(root)
        self.binary = Path(os.environ.get("BERTHD") or REPO_ROOT / "target" / "release" / "berthd")
        self.data_root = self.root / "data"
        self.exec_root = self.root / "exec"
        self.sock = str(self.root / "berthd.sock")
        self.log_path = self.root / "berthd.log"
        self.proc: subprocess.Popen | None = None
        self.last_exit: int | None = None
        self.leftover_mounts: list[str] = []
        # Additional berthd flags (e.g. a TCP listener, --authz-policy, --group).
        self.extra_args: list[str] = []

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def start(self):
        if not self.binary.exists():
            raise RuntimeError(
                f"berthd binary not found at {self.binary}: run `cargo build --release -p berthd` "
                "or set BERTHD=/path/to/berthd (or BERTH_E2E_TARGET=ref for the reference dockerd)"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_root.mkdir(exist_ok=True)
        self.exec_root.mkdir(exist_ok=True)
        try:
            os.unlink(self.sock)
        except FileNotFoundError:
            pass
        log = open(self.log_path, "ab")
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        self.proc = subprocess.Popen(
            [
                str(self.binary),
                "--host", self.host,
                "--data-root", str(self.data_root),
                "--exec-root", str(self.exec_root),
                *self.extra_args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"berthd exited with {self.proc.returncode} during start-up:\n{self.log_tail()}"
                )
            if os.path.exists(self.sock) and ping(self.sock):
                return
            time.sleep(0.05)
        self._kill()
        raise RuntimeError(f"berthd did not answer on {self.sock} within 30 s:\n{self.log_tail()}")

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        if not self.proc:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._kill()
                self.last_exit = None
                self.proc = None
                raise AssertionError(f"berthd ignored SIGTERM for 30 s:\n{self.log_tail()}")
        self.last_exit = self.proc.returncode
        self.proc = None
        self.leftover_mounts = mounts_under(self.data_root, self.exec_root)

    def check_clean_shutdown(self):
        assert self.last_exit == 0, f"berthd exited with {self.last_exit} on SIGTERM:\n{self.log_tail()}"
        leftovers = self.leftover_mounts
        if leftovers:
            # Clean up after a failing daemon, deepest first, then report.
            for line in sorted(leftovers, key=lambda l: -len(l.split()[4])):
                subprocess.run(["umount", "-l", line.split()[4]], capture_output=True)
        assert not leftovers, "berthd left mounts behind:\n" + "\n".join(leftovers)


class RefDaemon(Daemon):
    """The reference dockerd, driven by scripts/ref-dockerd.sh."""

    target = "ref"

    def __init__(self, sock, data_root, exec_root, pidfile, netns, log, owned_dirs=()):
        self.sock = sock
        self.data_root = Path(data_root)
        self.exec_root = Path(exec_root)
        self.pidfile = pidfile
        self.netns = netns
        self.log = log
        self.owned_dirs = list(owned_dirs)
        self.was_running = False
        self.started = False

    @classmethod
    def primary(cls):
        return cls(
            os.environ.get("REF_DOCKER_SOCK", "/run/ref-docker.sock"),
            os.environ.get("REF_DOCKER_ROOT", "/var/lib/ref-docker"),
            os.environ.get("REF_DOCKER_EXEC_ROOT", "/run/ref-docker"),
            os.environ.get("REF_DOCKER_PIDFILE", "/run/ref-docker.pid"),
            os.environ.get("REF_DOCKER_NETNS", "berth-ref"),
            os.environ.get("REF_DOCKER_LOG", "/var/log/ref-dockerd.log"),
        )

    @classmethod
    def secondary(cls, name: str, workdir: Path):
        root = Path(workdir) / f"ref-{name}"
        return cls(
            f"/run/ref-docker-{name}.sock",
            root / "data",
            f"/run/ref-docker-{name}",
            f"/run/ref-docker-{name}.pid",
            f"berth-ref-{name}",
            str(root / "dockerd.log"),
            owned_dirs=[root, f"/run/ref-docker-{name}"],
        )

    def _script(self, action: str):
        env = dict(os.environ)
        env.update(
            REF_DOCKER_SOCK=self.sock,
            REF_DOCKER_ROOT=str(self.data_root),
            REF_DOCKER_EXEC_ROOT=str(self.exec_root),
            REF_DOCKER_PIDFILE=self.pidfile,
            REF_DOCKER_NETNS=self.netns,
            REF_DOCKER_LOG=self.log,
        )
        return subprocess.run(
            ["bash", str(SCRIPTS / "ref-dockerd.sh"), action],
            env=env, capture_output=True, text=True, timeout=120,
        )

    def start(self):
        if not self.started:
            self.was_running = self._script("status").returncode == 0 and ping(self.sock)
        p = self._script("start")
        if p.returncode != 0:
            raise RuntimeError(f"ref-dockerd start failed:\n{p.stdout}\n{p.stderr}")
        self.started = True

    def stop(self, force: bool = False):
        # Leave a reference daemon that was already running before the suite alone.
        if self.was_running and not force:
            return
        p = self._script("stop")
        if p.returncode != 0:
            raise RuntimeError(f"ref-dockerd stop failed:\n{p.stdout}\n{p.stderr}")
        if self.owned_dirs:
            subprocess.run(["ip", "netns", "delete", self.netns], capture_output=True)
            for d in self.owned_dirs:
                if not mounts_under(d):
                    subprocess.run(["rm", "-rf", str(d)], capture_output=True)

    def restart(self):
        self.stop(force=True)
        self.start()


# --- output normalisation (differential tests, restart comparisons) --------

_RE_ID64 = re.compile(r"\b(sha256:)?[0-9a-f]{64}\b")
_RE_ID12 = re.compile(r"\b[0-9a-f]{12}\b")
_RE_AGO = re.compile(
    r"\b(Less than a second|About an? (second|minute|hour|day|week|month|year)"
    r"|\d+ (seconds?|minutes?|hours?|days?|weeks?|months?|years?))( ago)?\b"
)
_RE_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
_RE_SIZE = re.compile(r"\b\d+(\.\d+)?\s?(B|kB|KB|MB|GB)\b")


def normalise(text: str) -> str:
    text = _RE_ID64.sub("<ID>", text)
    text = _RE_ID12.sub("<ID>", text)
    text = _RE_AGO.sub("<AGO>", text)
    text = _RE_TS.sub("<TIME>", text)
    text = _RE_SIZE.sub("<SIZE>", text)
    # column alignment depends on the width of masked values
    text = "\n".join(re.sub(r" {2,}", "  ", l.rstrip()) for l in text.splitlines())
    return text
