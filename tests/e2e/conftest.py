"""Shared fixtures for the Berth end-to-end suite.

The suite drives a Docker-compatible daemon through the real docker CLI
(/usr/local/bin/docker) and through docker-py. Which daemon:

* BERTH_E2E_TARGET=berth (default): start ``target/release/berthd`` (path from
  env BERTHD) on a temporary data root, exec root and socket; nothing is built.
* BERTH_E2E_TARGET=ref: the reference dockerd started by scripts/ref-dockerd.sh
  (the oracle). It lives in its own network namespace and never pulls.

Every test gets the session-wide ``daemon`` fixture (a ``Daemon``), plus
helpers to run the CLI. Expectations that legitimately differ between the two
targets go through ``daemon.target``. Both daemons give containers their default
bridge network; the reference's bridge lives inside its own network namespace.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import (  # noqa: E402
    DOCKER_CLI,
    REPO_ROOT,
    BerthDaemon,
    Daemon,
    RefDaemon,
    build_rootfs_tar,
)

TARGET = os.environ.get("BERTH_E2E_TARGET", "berth").strip().lower() or "berth"


def pytest_report_header(config):
    return [f"berth e2e target: {TARGET}", f"docker cli: {DOCKER_CLI}"]


@pytest.fixture(scope="session")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="berth-e2e-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def rootfs_tar(workdir) -> Path:
    """The deterministic busybox rootfs made by scripts/mkimage.sh."""
    return build_rootfs_tar(workdir / "rootfs.tar")


def make_daemon(target: str, workdir: Path, name: str = "main") -> Daemon:
    if target == "ref":
        return RefDaemon.primary() if name == "main" else RefDaemon.secondary(name, workdir)
    if target == "berth":
        return BerthDaemon(workdir / f"berthd-{name}")
    raise pytest.UsageError(f"BERTH_E2E_TARGET must be 'berth' or 'ref', not {target!r}")


@pytest.fixture(scope="session")
def daemon(workdir):
    d = make_daemon(TARGET, workdir)
    d.start()
    try:
        yield d
    finally:
        d.stop()
        d.check_clean_shutdown()


@pytest.fixture(scope="session")
def image(daemon, rootfs_tar) -> str:
    """A plain busybox image (no CMD), imported under a test-specific name."""
    ref = "berth-e2e/busybox:plain"
    daemon.ok("import", str(rootfs_tar), ref)
    return ref


@pytest.fixture(scope="session")
def sh_image(daemon, rootfs_tar) -> str:
    """busybox with CMD ["sh"] (like the real busybox image)."""
    ref = "berth-e2e/busybox:sh"
    daemon.ok("import", "--change", 'CMD ["sh"]', str(rootfs_tar), ref)
    return ref


@pytest.fixture(scope="session")
def make_image(daemon, rootfs_tar):
    """Import the rootfs with the given --change lines; returns the reference."""
    made = {}

    def _make(*changes: str, ref: str | None = None) -> str:
        key = (changes, ref)
        if key in made:
            return made[key]
        ref = ref or f"berth-e2e/img-{uuid.uuid4().hex[:10]}:t"
        args = ["import"]
        for c in changes:
            args += ["--change", c]
        daemon.ok(*args, str(rootfs_tar), ref)
        made[key] = ref
        return ref

    return _make


@pytest.fixture
def names(daemon):
    """Unique container names; every container so named is removed afterwards."""
    created: list[str] = []

    def _name(prefix: str = "c") -> str:
        n = f"e2e-{prefix}-{uuid.uuid4().hex[:8]}"
        created.append(n)
        return n

    yield _name
    for n in created:
        daemon.docker("rm", "-f", n, timeout=60)


@pytest.fixture(scope="session")
def second_daemon_factory(workdir):
    """Starts extra daemons of the same kind with their own roots."""
    started: list[Daemon] = []

    def _start(name: str) -> Daemon:
        d = make_daemon(TARGET, workdir, name=name)
        d.start()
        started.append(d)
        return d

    yield _start
    for d in started:
        d.stop()
