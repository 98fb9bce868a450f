"""Hostile registry replies: a registry (a small HTTP server this test runs on 127.0.0.1) lies
about digests and sizes, sends a huge manifest, a manifest list that points at itself, or
redirects a blob download to another host. Each pull must fail with a clear error, leave no
image behind, and leave the daemon serving; the honest image still pulls afterwards.

Berth only: the reference dockerd lives in its own network namespace and cannot reach the
host's loopback.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import os
import threading

import pytest

pytestmark = pytest.mark.skipif(
    os.environ.get("BERTH_E2E_TARGET", "berth") != "berth", reason="registry on the host's loopback"
)

MT_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


class Content:
    """Blobs and per-repository manifests of the fake registry."""

    def __init__(self, rootfs_tar):
        # A layer no other test has pulled or imported: the daemon must really download it.
        import io
        import tarfile
        buf = io.BytesIO()
        with tarfile.open(rootfs_tar) as src, tarfile.open(fileobj=buf, mode="w") as dst:
            for m in src.getmembers():
                dst.addfile(m, src.extractfile(m) if m.isfile() else None)
            unique = os.urandom(64)
            ti = tarfile.TarInfo("hostile-unique")
            ti.size = len(unique)
            dst.addfile(ti, io.BytesIO(unique))
        raw = buf.getvalue()
        self.layer = gzip.compress(raw, mtime=0)
        self.config = json.dumps({
            "architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [sha(raw)]},
        }).encode()
        self.blobs = {sha(self.layer): self.layer, sha(self.config): self.config}
        self.manifests: dict[str, dict[str, tuple[str, bytes]]] = {}

    def manifest(self, config_size=None, layer_size=None, config_digest=None, layer_digest=None) -> bytes:
        return json.dumps({
            "schemaVersion": 2, "mediaType": MT_MANIFEST,
            "config": {"mediaType": MT_CONFIG, "size": config_size or len(self.config),
                       "digest": config_digest or sha(self.config)},
            "layers": [{"mediaType": MT_LAYER, "size": layer_size or len(self.layer),
                        "digest": layer_digest or sha(self.layer)}],
        }).encode()


def make_handler(content: Content, redirect_to: str):
    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def send(self, code, body=b"", ctype="application/json", headers=()):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            p = self.path.split("?")[0]
            if p == "/v2/":
                return self.send(200, b"{}")
            parts = p.split("/")
            # /v2/<repo>/manifests/<ref> or /v2/<repo>/blobs/<digest>
            if len(parts) == 5 and parts[3] == "manifests":
                repo, ref = parts[2], parts[4]
                m = content.manifests.get(repo, {}).get(ref)
                if not m:
                    return self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
                mt, body = m
                return self.send(200, body, mt, [("Docker-Content-Digest", sha(body))])
            if len(parts) == 5 and parts[3] == "blobs":
                repo, digest = parts[2], parts[4]
                if repo == "redirect" and digest == sha(content.layer):
                    return self.send(307, b"", headers=[("Location", f"{redirect_to}{p}")])
                b = content.blobs.get(digest)
                if repo == "configlie" and digest == sha(b"not the config"):
                    b = content.config  # the bytes do not match the digest asked for
                if b is None:
                    return self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}')
                if repo == "layerlie" and digest == sha(content.layer):
                    b = b[:-10] + b"0123456789"  # same size, other bytes
                return self.send(200, b, "application/octet-stream")
            return self.send(404, b"{}")

    return H


@pytest.fixture(scope="module")
def hostile(daemon, rootfs_tar):
    content = Content(rootfs_tar)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(content, ""))
    port = srv.server_address[1]
    # The redirect target: another host (127.0.0.2, also loopback) on the same port.
    srv.RequestHandlerClass = make_handler(content, f"http://127.0.0.2:{port}")
    good = content.manifest()
    wrong = content.manifest(config_size=len(content.config) + 1)  # a different manifest
    content.manifests = {
        "good": {"t": (MT_MANIFEST, good)},
        # fetched by digest, the registry returns a different manifest
        "wrongdigest": {sha(good): (MT_MANIFEST, wrong)},
        "sizelie": {"t": (MT_MANIFEST, content.manifest(layer_size=len(content.layer) + 1000))},
        "sizeshort": {"t": (MT_MANIFEST, content.manifest(layer_size=len(content.layer) - 1000))},
        "configlie": {"t": (MT_MANIFEST, content.manifest(config_digest=sha(b"not the config")))},
        "layerlie": {"t": (MT_MANIFEST, good)},
        "huge": {"t": (MT_MANIFEST, good[:-1] + b', "padding": "' + b"x" * (5 << 20) + b'"}')},
        "redirect": {"t": (MT_MANIFEST, good)},
    }
    index: dict = {"schemaVersion": 2, "mediaType": MT_LIST, "manifests": []}
    # A list whose only entry is a list: the second level is refused, never followed on.
    inner = json.dumps({"schemaVersion": 2, "mediaType": MT_LIST, "manifests": [
        {"mediaType": MT_LIST, "size": 10, "digest": "sha256:" + "0" * 64,
         "platform": {"architecture": "amd64", "os": "linux"}}]}).encode()
    index["manifests"] = [{"mediaType": MT_LIST, "size": len(inner), "digest": sha(inner),
                           "platform": {"architecture": "amd64", "os": "linux"}}]
    outer = json.dumps(index).encode()
    content.manifests["loop"] = {"t": (MT_LIST, outer), sha(inner): (MT_LIST, inner)}
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"127.0.0.1:{port}", good
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("repo,ref,expect", [
    ("wrongdigest", "@DIGEST", "digest mismatch"),
    ("sizelie", ":t", "size"),
    ("sizeshort", ":t", "size"),
    ("configlie", ":t", "digest mismatch"),
    ("layerlie", ":t", "digest"),
    ("huge", ":t", "larger than"),
    ("loop", ":t", "unsupported manifest media type"),
    ("redirect", ":t", "redirect"),
])
def test_hostile_reply_is_refused(daemon, hostile, repo, ref, expect):
    host, good = hostile
    ref = ref.replace("DIGEST", sha(good))
    name = f"{host}/{repo}{ref}"
    rc, out, err = daemon.docker("pull", name, timeout=60)
    assert rc != 0, f"pull of {name} succeeded:\n{out}"
    assert expect in (out + err).lower(), f"{name}: {out}\n{err}"
    rc, out, _ = daemon.docker("images", "--format", "{{.Repository}}", f"{host}/{repo}")
    assert out.strip() == "", f"an image from {name} is visible"
    # The daemon keeps serving.
    assert daemon.docker("version", "--format", "{{.Server.Os}}")[1].strip() == "linux"


def test_honest_image_still_pulls(daemon, hostile):
    host, _ = hostile
    rc, out, err = daemon.docker("pull", f"{host}/good:t", timeout=60)
    assert rc == 0, err
    rc, out, err = daemon.docker("run", "--rm", "--pull", "never", *daemon.net_args, f"{host}/good:t", "echo", "ok")
    assert (rc, out.strip()) == (0, "ok"), err
    daemon.docker("rmi", f"{host}/good:t")
