"""Registry interchange: push, pull, login against Debian's docker-registry on 127.0.0.1.

The test starts `/usr/bin/docker-registry serve CONFIG` itself (storage in a temp dir) and
stops it by PID. The reference dockerd lives in its own network namespace, so when a test
needs it, a second registry process serves the *same* storage directory on the same
127.0.0.1 port inside that namespace: both daemons then see one registry under one name.
Loopback registries are insecure by default for both daemons.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from conftest import TARGET
from helpers import RefDaemon, ping, run_cli

REGISTRY_BIN = "/usr/bin/docker-registry"
REF_NETNS = os.environ.get("REF_DOCKER_NETNS", "berth-ref")

pytestmark = pytest.mark.skipif(
    not os.path.exists(REGISTRY_BIN), reason="docker-registry is not installed (apt-get install docker-registry)"
)


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def netns_prefix(netns: str | None) -> list[str]:
    return ["ip", "netns", "exec", netns] if netns else []


class Registry:
    """One storage dir, served on 127.0.0.1:port in the host netns and optionally others."""

    def __init__(self, htpasswd: Path | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="berth-e2e-registry-"))
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.procs: dict[str | None, subprocess.Popen] = {}
        auth = ""
        if htpasswd:
            auth = f"auth:\n  htpasswd:\n    realm: berth-test\n    path: {htpasswd}\n"
        self.config = self.dir / "config.yml"
        self.config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.dir / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n"
            + auth
        )

    def serve(self, netns: str | None = None):
        if netns in self.procs:
            return
        logpath = self.dir / f"registry-{netns or 'host'}.log"
        log = open(logpath, "wb")
        p = subprocess.Popen(
            netns_prefix(netns) + [REGISTRY_BIN, "serve", str(self.config)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        self.procs[netns] = p
        deadline = time.time() + 15
        while time.time() < deadline:
            if p.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {logpath.read_text()}")
            probe = subprocess.run(
                netns_prefix(netns) + ["python3", "-c",
                 f"import urllib.request,sys\ntry:\n urllib.request.urlopen('http://{self.host}/v2/',timeout=1)\n"
                 "except urllib.error.HTTPError: pass\n"],
                capture_output=True,
            )
            if probe.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError("docker-registry did not come up")

    def stop(self):
        for p in self.procs.values():
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()
        shutil.rmtree(self.dir, ignore_errors=True)


def daemon_netns(daemon) -> str | None:
    return getattr(daemon, "netns", None) if daemon.target == "ref" else None


@pytest.fixture(scope="module")
def registry(daemon):
    r = Registry()
    r.serve(daemon_netns(daemon))
    yield r
    r.stop()


@pytest.fixture(scope="module")
def ref_daemon(daemon, registry):
    """The reference dockerd next to berthd (berth target only), seeing the same registry."""
    if daemon.target != "berth":
        pytest.skip("cross-daemon interchange is tested from the berth target")
    if shutil.which("dockerd") is None:
        pytest.skip("no reference dockerd installed")
    ref = RefDaemon.primary()
    try:
        ref.start()
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"reference dockerd unavailable: {e}")
    registry.serve(ref.netns)
    yield ref
    ref.stop()


def unique_rootfs(rootfs_tar: Path, out: Path, token: str) -> Path:
    """The busybox rootfs plus /unique (so its layer is new to every daemon)."""
    with tarfile.open(rootfs_tar) as src, tarfile.open(out, "w") as dst:
        for m in src.getmembers():
            dst.addfile(m, src.extractfile(m) if m.isfile() else None)
        data = (token + "\n").encode()
        ti = tarfile.TarInfo("unique")
        ti.size = len(data)
        ti.mode = 0o644
        dst.addfile(ti, io.BytesIO(data))
    return out


def run_cat_unique(d, ref: str) -> str:
    return d.ok(*d.run_args("--rm", ref, "cat", "/unique")).strip()


def test_push_rmi_pull_run(daemon, registry, rootfs_tar, workdir):
    token = uuid.uuid4().hex
    ref = f"{registry.host}/test/bb:1"
    tar = unique_rootfs(rootfs_tar, workdir / f"u-{token}.tar", token)
    daemon.ok("import", str(tar), ref)
    out = daemon.ok("push", ref)
    assert f"The push refers to repository [{registry.host}/test/bb]" in out
    assert "Pushed" in out
    assert "1: digest: sha256:" in out
    digest = out.split("1: digest: ")[1].split()[0]
    assert daemon.inspect(ref, "image")["RepoDigests"] == [f"{registry.host}/test/bb@{digest}"]
    # The same image again: nothing is uploaded, same digest.
    out2 = daemon.ok("push", ref)
    assert "Layer already exists" in out2 and "Pushed" not in out2
    assert f"1: digest: {digest}" in out2
    daemon.ok("rmi", ref)
    assert daemon.docker("image", "inspect", ref)[0] != 0
    out = daemon.ok("pull", ref)
    assert "1: Pulling from test/bb" in out or f"1: Pulling from {registry.host}/test/bb" in out
    assert "Pull complete" in out
    assert f"Digest: {digest}" in out
    assert f"Status: Downloaded newer image for {ref}" in out
    # A tag pull records the manifest digest too (dockerd's RepoDigests).
    assert daemon.inspect(ref, "image")["RepoDigests"] == [f"{registry.host}/test/bb@{digest}"]
    assert run_cat_unique(daemon, ref) == token
    out = daemon.ok("pull", ref)
    assert f"Status: Image is up to date for {ref}" in out
    # By digest. Removing the last tag of the repository drops its digest reference too.
    out = daemon.ok("rmi", ref)
    assert f"Untagged: {ref}" in out and f"Untagged: {registry.host}/test/bb@{digest}" in out, out
    assert "Deleted: sha256:" in out, out
    out = daemon.ok("pull", f"{registry.host}/test/bb@{digest}")
    assert f"Digest: {digest}" in out
    img = daemon.inspect(f"{registry.host}/test/bb@{digest}", "image")
    assert img["Os"] == "linux"
    daemon.ok("rmi", f"{registry.host}/test/bb@{digest}")


def test_pull_missing_tag_is_404(daemon, registry):
    rc, out, err = daemon.docker("pull", f"{registry.host}/test/bb:nosuch")
    assert rc != 0
    assert (
        f"manifest for {registry.host}/test/bb:nosuch not found: manifest unknown: manifest unknown" in err
    ), err


def test_push_of_missing_image_errors_in_stream(daemon, registry):
    rc, out, err = daemon.docker("push", f"{registry.host}/test/absent:1")
    assert rc != 0
    assert f"An image does not exist locally with the tag: {registry.host}/test/absent" in err


def test_run_pulls_absent_image(daemon, registry, rootfs_tar, workdir):
    token = uuid.uuid4().hex
    ref = f"{registry.host}/test/runpull:1"
    daemon.ok("import", str(unique_rootfs(rootfs_tar, workdir / f"r-{token}.tar", token)), ref)
    daemon.ok("push", ref)
    daemon.ok("rmi", ref)
    rc, out, err = daemon.docker("run", *daemon.net_args, "--rm", ref, "cat", "/unique")
    assert rc == 0, err
    assert "Unable to find image" in err
    assert out.strip() == token


def test_berth_push_ref_pull(daemon, ref_daemon, registry, rootfs_tar, workdir):
    token = uuid.uuid4().hex
    ref = f"{registry.host}/cross/b2r:1"
    daemon.ok("import", str(unique_rootfs(rootfs_tar, workdir / f"b-{token}.tar", token)), ref)
    daemon.ok("push", ref)
    try:
        out = ref_daemon.ok("pull", ref)
        assert "Pull complete" in out
        assert run_cat_unique(ref_daemon, ref) == token
        # Same image id on both sides (the config digest survives the round trip).
        assert ref_daemon.inspect(ref, "image")["Id"] == daemon.inspect(ref, "image")["Id"]
    finally:
        ref_daemon.docker("rmi", "-f", ref)


def test_ref_push_berth_pull(daemon, ref_daemon, registry, rootfs_tar, workdir):
    token = uuid.uuid4().hex
    ref = f"{registry.host}/cross/r2b:1"
    ref_daemon.ok("import", str(unique_rootfs(rootfs_tar, workdir / f"r-{token}.tar", token)), ref)
    try:
        ref_daemon.ok("push", ref)
        ref_id = ref_daemon.inspect(ref, "image")["Id"]
    finally:
        ref_daemon.docker("rmi", "-f", ref)
    out = daemon.ok("pull", ref)
    assert "Pull complete" in out
    assert run_cat_unique(daemon, ref) == token
    assert daemon.inspect(ref, "image")["Id"] == ref_id
    # Pushing it back from berth uploads no layer: the registry has them all.
    out = daemon.ok("push", ref)
    assert "Pushed" not in out, out


# --- OCI index via skopeo ----------------------------------------------------


def write_oci_layout(dest: Path, rootfs: Path, token: str) -> None:
    """An OCI image layout with an index of linux/amd64 and linux/arm64 manifests."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(b: bytes) -> dict:
        d = hashlib.sha256(b).hexdigest()
        (blobs / d).write_bytes(b)
        return {"digest": f"sha256:{d}", "size": len(b)}

    raw = rootfs.read_bytes()
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    layer = put(gzip.compress(raw, mtime=0))
    manifests = []
    for arch in ("amd64", "arm64"):
        config = {
            "created": "2024-01-01T00:00:00Z",
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["cat", "/unique"], "Labels": {"arch": arch, "token": token}},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "test"}],
        }
        cdesc = put(json.dumps(config).encode())
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cdesc},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}],
        }
        mdesc = put(json.dumps(manifest).encode())
        manifests.append({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", **mdesc,
            "platform": {"architecture": arch, "os": "linux"},
        })
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }
    idesc = put(json.dumps(index).encode())
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (dest / "index.json").write_text(json.dumps({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", **idesc,
                       "annotations": {"org.opencontainers.image.ref.name": "multi"}}],
    }))


def test_oci_index_from_skopeo_platform_selection(daemon, registry, rootfs_tar, workdir):
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed (apt-get install skopeo)")
    token = uuid.uuid4().hex
    layout = workdir / f"oci-{token}"
    write_oci_layout(layout, unique_rootfs(rootfs_tar, workdir / f"o-{token}.tar", token), token)
    ref = f"{registry.host}/test/multi:1"
    p = subprocess.run(
        netns_prefix(daemon_netns(daemon)) + [
            "skopeo", "copy", "--all", "--dest-tls-verify=false",
            f"oci:{layout}:multi", f"docker://{ref}",
        ],
        capture_output=True, text=True, timeout=120,
    )
    assert p.returncode == 0, p.stderr
    out = daemon.ok("pull", ref)
    assert "Pull complete" in out or "Already exists" in out
    img = daemon.inspect(ref, "image")
    assert img["Architecture"] == "amd64"
    assert img["Config"]["Labels"]["arch"] == "amd64"
    assert daemon.ok(*daemon.run_args("--rm", ref)).strip() == token
    daemon.ok("rmi", ref)
    daemon.ok("pull", "--platform", "linux/arm64", ref)
    img = daemon.inspect(ref, "image")
    assert img["Architecture"] == "arm64"
    assert img["Config"]["Labels"]["arch"] == "arm64"
    daemon.ok("rmi", ref)
    rc, out, err = daemon.docker("pull", "--platform", "linux/s390x", ref)
    assert rc != 0
    assert "no matching manifest for linux/s390x in the manifest list entries" in err, err


# --- login --------------------------------------------------------------------


def bcrypt_hash(password: str) -> str | None:
    try:
        import bcrypt  # type: ignore

        return bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
    except ImportError:
        pass
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import crypt  # type: ignore
        h = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))
        return h if h and h.startswith("$2") else None
    except Exception:  # noqa: BLE001
        return None


@pytest.fixture(scope="module")
def auth_registry(daemon, workdir):
    h = bcrypt_hash("s3cret")
    if h is None:
        pytest.skip("no bcrypt implementation (python bcrypt or crypt with Blowfish) for htpasswd")
    pw = workdir / "htpasswd"
    pw.write_text(f"tester:{h}\n")
    r = Registry(htpasswd=pw)
    r.serve(daemon_netns(daemon))
    yield r
    r.stop()


def test_login_and_authenticated_push_pull(daemon, auth_registry, rootfs_tar, workdir):
    host = auth_registry.host
    cfg = tempfile.mkdtemp(prefix="berth-e2e-login-")
    env_host = daemon.host

    def cli(*args, input=None):
        # A private CLI config so stored credentials do not leak into other tests.
        import helpers

        old = helpers._CLI_CONFIG
        helpers._CLI_CONFIG = cfg
        try:
            return run_cli(env_host, *args, input=input)
        finally:
            helpers._CLI_CONFIG = old

    try:
        rc, out, err = cli("login", "-u", "tester", "--password-stdin", host, input="wrong\n")
        assert rc != 0
        assert "401 Unauthorized" in err, err
        rc, out, err = cli("login", "-u", "tester", "--password-stdin", host, input="s3cret\n")
        assert rc == 0, err
        assert "Login Succeeded" in out
        token = uuid.uuid4().hex
        ref = f"{host}/auth/bb:1"
        cli("import", str(unique_rootfs(rootfs_tar, workdir / f"a-{token}.tar", token)), ref)
        rc, out, err = cli("push", ref)
        assert rc == 0, err
        assert "Pushed" in out
        cli("rmi", ref)
        rc, out, err = cli("pull", ref)
        assert rc == 0, err
        assert run_cat_unique(daemon, ref) == token
        cli("rmi", ref)
        cli("logout", host)
        # Without credentials the registry refuses.
        rc, out, err = cli("pull", ref)
        assert rc != 0
    finally:
        shutil.rmtree(cfg, ignore_errors=True)


def test_multi_layer_push_pull(daemon, registry, rootfs_tar, workdir):
    """Three layers (import + two commits): layers download concurrently and extract in order."""
    token = uuid.uuid4().hex
    ref = f"{registry.host}/test/layers:3"
    tar = unique_rootfs(rootfs_tar, workdir / f"l-{token}.tar", token)
    base = f"{registry.host}/test/layers:base"
    daemon.ok("import", str(tar), base)
    names = []
    img = base
    for n in (1, 2):
        c = f"layers-{token[:8]}-{n}"
        names.append(c)
        daemon.ok(*daemon.run_args("--name", c, img, "sh", "-c",
                                   f"head -c 3000000 /dev/urandom > /blob{n}; sha256sum /blob{n} > /sum{n}"))
        img = f"{registry.host}/test/layers:{n}"
        daemon.ok("commit", c, img)
    daemon.ok("tag", img, ref)
    want = daemon.ok(*daemon.run_args("--rm", ref, "sh", "-c", "cat /sum1 /sum2"))
    layers = daemon.inspect(ref, "image")["RootFS"]["Layers"]
    assert len(layers) == 3
    daemon.ok("push", ref)
    for c in names:
        daemon.ok("rm", c)
    for t in ("base", "1", "2", "3"):
        daemon.ok("rmi", f"{registry.host}/test/layers:{t}")
    out = daemon.ok("pull", ref)
    assert out.count("Pull complete") == 3, out
    assert daemon.inspect(ref, "image")["RootFS"]["Layers"] == layers
    got = daemon.ok(*daemon.run_args("--rm", ref, "sh", "-c", "cat /sum1 /sum2; sha256sum -c /sum1 /sum2 >/dev/null && echo verified"))
    assert got == want + "verified\n"
    daemon.ok("rmi", ref)


def test_layer_blobs_are_collected_with_their_images(daemon, registry, rootfs_tar, workdir):
    """GC by reference: after the last image using a pulled layer goes, its compressed blob
    goes too; while a pull runs its blobs are leased."""
    if daemon.target != "berth":
        pytest.skip("inspects berthd's blob store")
    token = uuid.uuid4().hex
    ref = f"{registry.host}/test/gc:1"
    tar = unique_rootfs(rootfs_tar, workdir / f"g-{token}.tar", token)
    daemon.ok("import", str(tar), ref)
    daemon.ok("push", ref)
    daemon.ok("rmi", ref)
    blobs = daemon.data_root / "image" / "blobs" / "sha256"
    before = {p.name for p in blobs.iterdir()}
    daemon.ok("pull", ref)
    added = {p.name for p in blobs.iterdir()} - before
    assert len(added) >= 2, added  # the config and the compressed layer
    daemon.ok("rmi", ref)
    left = added & {p.name for p in blobs.iterdir()}
    assert left == set(), f"blobs survive their image: {left}"
