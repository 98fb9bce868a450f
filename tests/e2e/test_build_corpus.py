"""Differential build corpus (tests/e2e/build_corpus): every case is built by berthd and by
the reference dockerd from the same busybox base with the classic builder, and the results
compared: image config, layer count, and a manifest of the exported filesystem. Needs both
daemons (BERTH_E2E_DIFF=1, berth target; CI sets both)."""

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from helpers import DOCKER_CLI, RefDaemon, cli_env

CORPUS = Path(__file__).resolve().parent / "build_corpus"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
KEYS = ["Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels",
        "StopSignal", "Healthcheck", "OnBuild", "Shell"]
# paths the daemons create for containers (init layer), not the image's
SKIP = {".dockerenv", "etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/mtab", "dev", "proc",
        "sys", "etc"}

pytestmark = pytest.mark.skipif(
    os.environ.get("BERTH_E2E_DIFF") != "1" or os.environ.get("BERTH_E2E_TARGET", "berth") != "berth",
    reason="differential: set BERTH_E2E_DIFF=1 with the berth target",
)


@pytest.fixture(scope="module")
def ref(rootfs_tar):
    r = RefDaemon.primary()
    r.start()
    r.ok("import", str(rootfs_tar), "berth-corpus/base:1")
    yield r
    r.stop()


def build(d, ctx, tag):
    env = cli_env(d.host)
    env["DOCKER_BUILDKIT"] = "0"
    p = subprocess.run([DOCKER_CLI, "build", "--pull=false", "-t", tag, str(ctx)], env=env,
                       capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout + p.stderr


def manifest(d, tag):
    rc, cid, err = d.docker("create", tag, "/nonexistent")
    assert rc == 0, err
    cid = cid.strip()
    try:
        env = cli_env(d.host)
        data = subprocess.run([DOCKER_CLI, "export", cid], env=env, capture_output=True,
                              timeout=120).stdout
    finally:
        d.docker("rm", "-f", cid)
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf.getmembers():
            name = m.name.rstrip("/")
            while name.startswith("./"):
                name = name[2:]
            name = name.lstrip("/")
            if not name or name in SKIP or name.split("/")[0] in ("dev", "proc", "sys"):
                continue
            h = ""
            if m.isfile():
                h = hashlib.sha256(tf.extractfile(m).read()).hexdigest()[:16]
            kind = "f" if m.isfile() else "d" if m.isdir() else "l" if m.issym() else "h" if m.islnk() else "o"
            out[name] = (kind, oct(m.mode & 0o7777), m.uid, m.gid, m.size if m.isfile() else 0, h,
                         m.linkname if (m.issym() or m.islnk()) else "")
    return out


@pytest.mark.parametrize("case", CASES)
def test_corpus_case(case, daemon, ref, rootfs_tar, tmp_path):
    daemon.ok("import", str(rootfs_tar), "berth-corpus/base:1") if not daemon.docker(
        "image", "inspect", "berth-corpus/base:1")[0] == 0 else None
    src = CORPUS / case
    ctx = tmp_path / case
    shutil.copytree(src, ctx, symlinks=True)
    df = ctx / "Dockerfile"
    df.write_text(df.read_text().replace("{BASE}", "berth-corpus/base:1"))
    modes = ctx / ".modes"
    if modes.exists():
        for line in modes.read_text().split("\n"):
            if line.strip():
                n, m = line.split()
                os.chmod(ctx / n, int(m, 8))
        modes.unlink()
    tag = f"berth-corpus/{case}:1"
    results = {}
    try:
        for name, d in (("berth", daemon), ("ref", ref)):
            rc, out = build(d, ctx, tag)
            results[name] = (rc, out)
        if (ctx / "expect_fail").exists():
            for name, d in (("berth", daemon), ("ref", ref)):
                assert results[name][0] != 0, f"{name} built a failing case:\n{results[name][1]}"
                assert d.docker("image", "inspect", tag)[0] != 0, f"{name} tagged a failed build"
            return
        for name in results:
            assert results[name][0] == 0, f"{name} failed:\n{results[name][1]}"
        bi, ri = daemon.inspect(tag, "image"), ref.inspect(tag, "image")
        for k in KEYS:
            assert (bi["Config"].get(k) or None) == (ri["Config"].get(k) or None), (k, bi["Config"].get(k), ri["Config"].get(k))
        assert len(bi["RootFS"]["Layers"]) == len(ri["RootFS"]["Layers"])
        bm, rm = manifest(daemon, tag), manifest(ref, tag)
        diff = {p: (bm.get(p), rm.get(p)) for p in set(bm) | set(rm) if bm.get(p) != rm.get(p)}
        assert not diff, diff
    finally:
        daemon.docker("rmi", "-f", tag)
        ref.docker("rmi", "-f", tag)
