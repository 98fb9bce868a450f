"""Helpers for the tests of Berth's own CLI (`berth`), run next to the docker CLI."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from helpers import REPO_ROOT


def berth_binary() -> Path | None:
    """$BERTH, else the berth next to $BERTHD, else target/{release,debug}/berth."""
    cands = []
    if os.environ.get("BERTH"):
        cands.append(Path(os.environ["BERTH"]))
    if os.environ.get("BERTHD"):
        cands.append(Path(os.environ["BERTHD"]).with_name("berth"))
    cands += [REPO_ROOT / "target" / "release" / "berth", REPO_ROOT / "target" / "debug" / "berth"]
    for c in cands:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    return None


def run_berth(host: str, *args: str, input=None, timeout: float = 120, env: dict | None = None):
    """Run `berth -H host ARGS`; returns (rc, stdout, stderr) as text."""
    exe = berth_binary()
    assert exe, "no berth binary (build it with cargo build)"
    e = dict(os.environ)
    e.pop("DOCKER_HOST", None)
    e.pop("DOCKER_CONTEXT", None)
    if env:
        e.update(env)
    p = subprocess.run(
        [str(exe), "-H", host, *args],
        input=input.encode() if isinstance(input, str) else input,
        capture_output=True,
        timeout=timeout,
        env=e,
    )
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
