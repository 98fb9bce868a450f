"""Resumable pulls: a registry that dies mid-blob, and a berthd SIGKILLed mid-download. The next
pull continues with a range request from the bytes already kept (never trusting them: they are
hashed again), completes, and runs; no half-written image is ever visible.

Berth only: the registry is a small server this test runs on the host's loopback.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import os
import subprocess
import tarfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from helpers import DOCKER_CLI, BerthDaemon

pytestmark = pytest.mark.skipif(
    os.environ.get("BERTH_E2E_TARGET", "berth") != "berth", reason="registry on the host's loopback"
)

MT_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


class Registry:
    def __init__(self, rootfs_tar: Path):
        raw = bytearray(rootfs_tar.read_bytes())
        # Append a 12 MB incompressible file to the rootfs tar (before its end-of-archive blocks).
        buf = io.BytesIO()
        with tarfile.open(fileobj=io.BytesIO(bytes(raw))) as src, tarfile.open(fileobj=buf, mode="w") as dst:
            for m in src.getmembers():
                dst.addfile(m, src.extractfile(m) if m.isfile() else None)
            payload = os.urandom(12 << 20)
            ti = tarfile.TarInfo("payload")
            ti.size = len(payload)
            dst.addfile(ti, io.BytesIO(payload))
        diff = buf.getvalue()
        self.payload_sha = hashlib.sha256(payload).hexdigest()
        self.layer = gzip.compress(diff, compresslevel=1, mtime=0)
        self.config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                                  "rootfs": {"type": "layers", "diff_ids": [sha(diff)]}}).encode()
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": MT_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "size": len(self.config), "digest": sha(self.config)},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": len(self.layer), "digest": sha(self.layer)}],
        }).encode()
        self.blobs = {sha(self.layer): self.layer, sha(self.config): self.config}
        self.cut_at: int | None = None  # close the connection after this many layer bytes
        self.slow = False
        self.ranges: list[str] = []
        reg = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                p = self.path.split("?")[0]
                if p == "/v2/":
                    return self.reply(200, b"{}")
                if "/manifests/" in p:
                    return self.reply(200, reg.manifest, MT_MANIFEST)
                digest = p.rsplit("/", 1)[-1]
                b = reg.blobs.get(digest)
                if b is None:
                    return self.reply(404, b"{}")
                start = 0
                rng = self.headers.get("Range")
                if b is reg.layer and rng:
                    reg.ranges.append(rng)
                    start = int(rng.split("=")[1].split("-")[0])
                if start:
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(b) - 1}/{len(b)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(b) - start))
                self.end_headers()
                body = b[start:]
                if b is reg.layer and reg.cut_at is not None:
                    self.wfile.write(body[: reg.cut_at])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                step = 64 << 10
                for i in range(0, len(body), step):
                    try:
                        self.wfile.write(body[i:i + step])
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    if reg.slow and b is reg.layer:
                        time.sleep(0.03)

            def reply(self, code, body, ctype="application/json"):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
                self.end_headers()
                self.wfile.write(body)

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.host = f"127.0.0.1:{self.srv.server_address[1]}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def registry(rootfs_tar):
    r = Registry(rootfs_tar)
    yield r
    r.close()


@pytest.fixture
def own_daemon(workdir):
    d = BerthDaemon(workdir / f"berthd-resume-{uuid.uuid4().hex[:6]}")
    d.start()
    yield d
    if d.proc:
        for cid in d.docker("ps", "-aq")[1].split():
            d.docker("rm", "-f", cid)
        d.stop()


def partial_len(d: BerthDaemon) -> int:
    ingest = d.data_root / "image" / "ingest"
    return sum(p.stat().st_size for p in ingest.glob("partial-*")) if ingest.is_dir() else 0


def check_image(d: BerthDaemon, ref: str, reg: Registry):
    rc, out, err = d.docker("run", "--rm", "--pull", "never", ref, "sha256sum", "/payload")
    assert rc == 0, err
    assert out.split()[0] == reg.payload_sha


def test_registry_dies_mid_blob_then_pull_resumes(own_daemon, registry):
    d, reg = own_daemon, registry
    ref = f"{reg.host}/resume/img:1"
    reg.cut_at = 5 << 20
    rc, out, err = d.docker("pull", ref, timeout=120)
    assert rc != 0, out
    assert d.docker("image", "inspect", ref)[0] != 0
    kept = partial_len(d)
    assert kept >= 1 << 20, f"only {kept} bytes kept"
    reg.cut_at = None
    rc, out, err = d.docker("pull", ref, timeout=120)
    assert rc == 0, err
    assert reg.ranges and int(reg.ranges[-1].split("=")[1].split("-")[0]) > 0, reg.ranges
    assert partial_len(d) == 0
    check_image(d, ref, reg)


def test_daemon_killed_mid_pull_then_pull_resumes(own_daemon, registry):
    d, reg = own_daemon, registry
    ref = f"{reg.host}/resume/img:2"
    reg.slow = True
    cli = subprocess.Popen([DOCKER_CLI, "-H", d.host, "pull", ref], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while partial_len(d) < (2 << 20) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert partial_len(d) >= 2 << 20
    d.proc.kill()
    d.proc.wait()
    d.proc = None
    cli.communicate(timeout=60)
    d.start()
    assert d.docker("image", "inspect", ref)[0] != 0, "a half-pulled image is visible"
    reg.slow = False
    rc, out, err = d.docker("pull", ref, timeout=120)
    assert rc == 0, err
    assert reg.ranges and int(reg.ranges[-1].split("=")[1].split("-")[0]) >= 2 << 20, reg.ranges
    check_image(d, ref, reg)
