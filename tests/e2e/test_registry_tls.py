"""HTTPS registries: Debian's docker-registry serving TLS on 127.0.0.1 with a test CA (and,
in one case, requiring client certificates). berthd trusts it through Docker's certs.d layout
(`--registry-certs-dir DIR`, `DIR/<host:port>/ca.crt`, `client.cert` + `client.key`); push and
pull go over https. Without the CA the pull fails on the certificate, since a loopback registry
that answers TLS is not silently downgraded.

Berth only (the reference dockerd lives in its own network namespace).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from helpers import BerthDaemon
from test_registry import REGISTRY_BIN, free_port, unique_rootfs

pytestmark = [
    pytest.mark.skipif(os.environ.get("BERTH_E2E_TARGET", "berth") != "berth",
                       reason="registry on the host's loopback"),
    pytest.mark.skipif(not shutil.which(REGISTRY_BIN) and not Path(REGISTRY_BIN).exists(),
                       reason="docker-registry not installed"),
]


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("regpki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=berth-registry-ca", cwd=d)
    (d / "srv.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    (d / "cli.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, subj, ext in [("server", "/CN=127.0.0.1", "srv.ext"), ("client", "/CN=berthd", "cli.ext")]:
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-key.pem", "-out", f"{name}.csr",
                "-subj", subj, cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", ext, cwd=d)
    return d


class TlsRegistry:
    def __init__(self, pki: Path, client_ca: bool):
        self.dir = Path(tempfile.mkdtemp(prefix="berth-e2e-tlsreg-"))
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        clientcas = f"    clientcas:\n      - {pki / 'ca.pem'}\n" if client_ca else ""
        cfg = self.dir / "config.yml"
        cfg.write_text(
            "version: 0.1\nlog:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.dir / 'data'}\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n  tls:\n    certificate: {pki / 'server.pem'}\n"
            f"    key: {pki / 'server-key.pem'}\n" + clientcas
        )
        self.log = open(self.dir / "registry.log", "wb")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(cfg)], stdout=self.log, stderr=subprocess.STDOUT)
        import socket

        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("TLS registry did not come up")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def daemon_with_certs(workdir: Path, certs: Path | None) -> BerthDaemon:
    d = BerthDaemon(workdir / f"berthd-tls-{uuid.uuid4().hex[:6]}")
    d.extra_args = ["--registry-certs-dir", str(certs)] if certs else ["--registry-certs-dir", "/nonexistent"]
    d.start()
    return d


def test_push_pull_over_https_with_a_private_ca(workdir, pki, rootfs_tar):
    reg = TlsRegistry(pki, client_ca=False)
    certs = workdir / f"certs-{uuid.uuid4().hex[:6]}"
    (certs / reg.host).mkdir(parents=True)
    shutil.copy(pki / "ca.pem", certs / reg.host / "ca.crt")
    d = daemon_with_certs(workdir, certs)
    try:
        token = uuid.uuid4().hex
        ref = f"{reg.host}/tls/bb:1"
        tar = unique_rootfs(rootfs_tar, workdir / f"t-{token}.tar", token)
        d.ok("import", str(tar), ref)
        out = d.ok("push", ref)
        assert "digest: sha256:" in out
        d.ok("rmi", ref)
        out = d.ok("pull", ref)
        assert "Pull complete" in out
        rc, got, err = d.docker("run", "--rm", "--pull", "never", ref, "cat", "/unique")
        assert (rc, got.strip()) == (0, token), err
        # The registry only speaks TLS: every request above went over https.
        assert b"GET /v2/tls/bb/manifests/1" in (reg.dir / "registry.log").read_bytes()
    finally:
        d.stop()
        reg.stop()


def test_untrusted_certificate_is_refused(workdir, pki):
    reg = TlsRegistry(pki, client_ca=False)
    d = daemon_with_certs(workdir, None)
    try:
        rc, out, err = d.docker("pull", f"{reg.host}/tls/none:1")
        assert rc != 0
        assert "certificate" in (out + err).lower(), err
    finally:
        d.stop()
        reg.stop()


def test_client_certificate_from_certs_d(workdir, pki, rootfs_tar):
    reg = TlsRegistry(pki, client_ca=True)
    certs = workdir / f"certs-{uuid.uuid4().hex[:6]}"
    hd = certs / reg.host
    hd.mkdir(parents=True)
    shutil.copy(pki / "ca.pem", hd / "ca.crt")
    d = daemon_with_certs(workdir, certs)
    try:
        ref = f"{reg.host}/tls/mtls:1"
        d.ok("import", str(rootfs_tar), ref)
        rc, out, err = d.docker("push", ref)
        assert rc != 0 or "error" in (out + err).lower(), "push without a client certificate succeeded"
    finally:
        d.stop()
    shutil.copy(pki / "client.pem", hd / "client.cert")
    shutil.copy(pki / "client-key.pem", hd / "client.key")
    d = daemon_with_certs(workdir, certs)
    try:
        d.ok("import", str(rootfs_tar), ref)
        out = d.ok("push", ref)
        assert "digest: sha256:" in out
    finally:
        d.stop()
        reg.stop()
