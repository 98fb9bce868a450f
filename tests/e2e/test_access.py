"""Access control: socket ownership and mode, TCP only with mutual TLS, peer credentials in the
audit log, the authorization policy file, and request-size limits.

Berth only: these are properties of berthd's listener (the reference dockerd is configured by
scripts/ref-dockerd.sh and is not restarted here).
"""

from __future__ import annotations

import grp
import json
import os
import socket
import stat
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from helpers import DOCKER_CLI, BerthDaemon

pytestmark = pytest.mark.skipif(
    os.environ.get("BERTH_E2E_TARGET", "berth") != "berth", reason="berthd's own listener options"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openssl(*args: str, cwd: Path):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A CA, a server certificate for 127.0.0.1, and two client certificates (CN admin, CN viewer)."""
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=berth-test-ca", cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, subj, ext in [("server", "/CN=127.0.0.1", "server.ext"),
                            ("admin", "/CN=admin", "client.ext"),
                            ("viewer", "/CN=viewer", "client.ext")]:
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-key.pem", "-out", f"{name}.csr",
                "-subj", subj, cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", ext, cwd=d)
    # A second CA whose client certificate must be refused.
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "evil-key.pem", "-out", "evil.pem",
            "-days", "2", "-subj", "/CN=admin", cwd=d)
    return d


def start(tmp: Path, *extra: str) -> BerthDaemon:
    d = BerthDaemon(tmp / f"berthd-{uuid.uuid4().hex[:6]}")
    d.extra_args = list(extra)
    d.start()
    return d


def docker_tls(pki: Path, port: int, client: str | None, *args: str, ca: str = "ca.pem"):
    cmd = [DOCKER_CLI, "-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", str(pki / ca)]
    if client:
        cmd += ["--tlscert", str(pki / f"{client}.pem"), "--tlskey", str(pki / f"{client}-key.pem")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    return subprocess.run(cmd + list(args), capture_output=True, text=True, env=env, timeout=60)


def test_socket_is_0660_root_and_the_group(tmp_path):
    name = "berthtst" + uuid.uuid4().hex[:4]
    subprocess.run(["groupadd", name], check=True)
    try:
        d = start(tmp_path, "--group", name)
        try:
            st = os.stat(d.sock)
            assert stat.S_ISSOCK(st.st_mode)
            assert stat.S_IMODE(st.st_mode) == 0o660
            assert st.st_uid == 0
            assert st.st_gid == grp.getgrnam(name).gr_gid
        finally:
            d.stop()
    finally:
        subprocess.run(["groupdel", name], check=False)


def test_missing_group_leaves_a_root_only_socket_and_says_so(tmp_path):
    d = start(tmp_path, "--group", "nosuchgroup" + uuid.uuid4().hex[:6])
    try:
        st = os.stat(d.sock)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o660)
        assert "does not exist" in d.log_path.read_text()
    finally:
        d.stop()


def test_plain_tcp_is_refused_without_tls(tmp_path):
    root = tmp_path / "plain"
    root.mkdir()
    r = subprocess.run(
        [str(BerthDaemon(root).binary), "--host", f"unix://{root}/b.sock", "--host",
         f"tcp://127.0.0.1:{free_port()}", "--data-root", str(root / "data"), "--exec-root", str(root / "exec")],
        capture_output=True, text=True, timeout=30,
    )
    assert r.returncode != 0
    assert "refusing to listen on tcp://127.0.0.1" in r.stderr and "--tlsverify" in r.stderr
    assert not (root / "b.sock").exists()


def test_tcp_with_mutual_tls(tmp_path, pki, monkeypatch):
    # requests lets these variables override the CA given by docker-py's TLSConfig.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    port = free_port()
    d = start(tmp_path, "--host", f"tcp://127.0.0.1:{port}", "--tlsverify",
              "--tlscacert", str(pki / "ca.pem"), "--tlscert", str(pki / "server.pem"),
              "--tlskey", str(pki / "server-key.pem"))
    try:
        r = docker_tls(pki, port, "admin", "version", "--format", "{{.Server.Os}}")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "linux"
        # No client certificate: the handshake is refused.
        r = docker_tls(pki, port, None, "version", "--format", "{{.Server.Os}}")
        assert r.returncode != 0
        # A client certificate from another CA (same CN) is refused too.
        r = docker_tls(pki, port, "evil", "version", "--format", "{{.Server.Os}}")
        assert r.returncode != 0
        # Plain HTTP to the TLS port gets nothing useful.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                data = s.recv(100)
            except (ConnectionResetError, socket.timeout):
                data = b""
            assert b"OK" not in data
        # docker-py over TLS.
        import docker

        tls = docker.tls.TLSConfig(client_cert=(str(pki / "admin.pem"), str(pki / "admin-key.pem")),
                                   ca_cert=str(pki / "ca.pem"), verify=str(pki / "ca.pem"))
        c = docker.DockerClient(base_url=f"https://127.0.0.1:{port}", tls=tls, version="1.43")
        assert c.ping()
        c.close()
        log = d.log_path.read_text()
        assert "TLS handshake refused" in log
        assert 'user=Some("admin")' in log
    finally:
        d.stop()


def test_policy_denies_by_uid_and_by_certificate_name(tmp_path, pki):
    port = free_port()
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({
        "default": "allow",
        "rules": [
            {"action": "deny", "users": ["viewer"], "methods": ["POST", "DELETE", "PUT"],
             "message": "viewers are read-only"},
            {"action": "deny", "uids": [0], "methods": ["GET"], "paths": ["/volumes"],
             "message": "no volume listing over the socket"},
        ],
    }))
    d = start(tmp_path, "--host", f"tcp://127.0.0.1:{port}", "--tlsverify",
              "--tlscacert", str(pki / "ca.pem"), "--tlscert", str(pki / "server.pem"),
              "--tlskey", str(pki / "server-key.pem"), "--authz-policy", str(policy))
    try:
        r = docker_tls(pki, port, "viewer", "ps", "-a")
        assert r.returncode == 0, r.stderr
        r = docker_tls(pki, port, "viewer", "rm", "nothing")
        assert r.returncode != 0
        assert "authorization denied by plugin berth-policy: viewers are read-only" in r.stderr
        r = docker_tls(pki, port, "admin", "rm", "nothing")
        assert "No such container: nothing" in r.stderr
        # Unix socket as root (uid 0): the uid rule applies.
        r = d.docker("volume", "ls")
        assert r[0] != 0 and "no volume listing over the socket" in r[2]
        assert d.docker("ps")[0] == 0
        # The audit log names the Unix peer's uid and pid.
        assert "client connected" in d.log_path.read_text()
        assert "uid=Some(0)" in d.log_path.read_text()
    finally:
        d.stop()


def test_invalid_policy_file_stops_the_daemon_at_start(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"rules": [{"action": "perhaps"}]}')
    root = tmp_path / "bad"
    root.mkdir()
    r = subprocess.run(
        [str(BerthDaemon(root).binary), "--host", f"unix://{root}/b.sock", "--data-root", str(root / "d"),
         "--exec-root", str(root / "e"), "--authz-policy", str(bad)],
        capture_output=True, text=True, timeout=30,
    )
    assert r.returncode != 0 and "invalid authz policy" in r.stderr


def raw_request(sock: str, head: bytes, body: bytes = b"") -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(20)
        s.connect(sock)
        s.sendall(head)
        try:
            s.sendall(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


def test_huge_body_gets_413_and_huge_headers_431(daemon):
    if daemon.target != "berth":
        pytest.skip("berth limits")
    body = b'{"Image": "' + b"a" * (5 << 20) + b'"}'
    head = (b"POST /v1.43/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
    resp = raw_request(daemon.sock, head, body)
    assert resp.startswith(b"HTTP/1.1 413"), resp[:200]
    head = b"GET /_ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * (128 << 10) + b"\r\n\r\n"
    resp = raw_request(daemon.sock, head)
    assert resp.startswith(b"HTTP/1.1 431"), resp[:200]
    # The daemon keeps answering.
    assert daemon.docker("version", "--format", "{{.Server.Os}}")[1].strip() == "linux"


def test_daemon_json_is_read_and_typos_are_refused(tmp_path, rootfs_tar):
    cfg = tmp_path / "daemon.json"
    cfg.write_text(json.dumps({"log-opts": {"max-size": "1k", "max-file": "2"}, "insecure-registries": ["reg.test:5000"]}))
    d = start(tmp_path, "--config-file", str(cfg))
    try:
        d.ok("import", str(rootfs_tar), "cfg/busybox:1")
        cid = d.ok("run", "-d", "cfg/busybox:1", "sh", "-c", "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done").strip()
        d.ok("wait", cid)
        logs = sorted(p.name for p in (d.data_root / "containers" / cid).glob(f"{cid}-json.log*") if not p.name.endswith(".idx"))
        assert logs == [f"{cid}-json.log", f"{cid}-json.log.1"], logs  # rotated at 1k, 2 files kept
        d.ok("rm", cid)
        d.ok("rmi", "cfg/busybox:1")
    finally:
        d.stop()
    cfg.write_text('{"insecure-registry": ["typo:5000"]}')
    root = tmp_path / "typo"
    root.mkdir()
    r = subprocess.run([str(BerthDaemon(root).binary), "--host", f"unix://{root}/b.sock", "--data-root", str(root / "d"),
                        "--exec-root", str(root / "e"), "--config-file", str(cfg)], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "insecure-registry" in r.stderr and "unable to configure" in r.stderr
