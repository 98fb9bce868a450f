"""Differential test: the same CLI commands against berthd and the reference dockerd.

Runs only with BERTH_E2E_DIFF=1, and needs both a berthd binary and dockerd.
Outputs are normalised (ids, times, sizes masked) before comparison. Each step
says what must match: the exit code, stdout, stderr (runtime error texts differ
in wording between runc and berth, so those compare the exit code only).
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from helpers import BerthDaemon, RefDaemon, build_rootfs_tar, normalise

needs_diff = pytest.mark.skipif(
    os.environ.get("BERTH_E2E_DIFF") != "1", reason="set BERTH_E2E_DIFF=1 to run differential tests"
)

IMG = "berth-diff/busybox:v1"
EP_IMG = "berth-diff/ep:v1"

# (name, args, compare) — compare is a subset of {"rc", "out", "err"}, plus "sorted"
# for listings whose order is unspecified (images created within the same second).
# "{tar}" is replaced by the rootfs tar path; "{net}" by the target's network flags.
STEPS = [
    ("version-os", ["version", "--format", "{{.Server.Os}} {{.Server.Arch}}"], {"rc", "out"}),
    ("import", ["import", "-c", 'CMD ["sh"]', "{tar}", IMG], {"rc", "out"}),
    ("import-ep", ["import", "-c", 'ENTRYPOINT ["echo","ep"]', "-c", 'CMD ["c"]', "-c", "ENV A=1",
                   "-c", "WORKDIR /srv", "-c", "USER app", "{tar}", EP_IMG], {"rc", "out"}),
    ("images", ["images", "--format", "{{.Repository}}:{{.Tag}}", "berth-diff/*"], {"rc", "out", "sorted"}),
    ("image-cfg", ["image", "inspect", "--format", "{{json .Config}} {{json .RootFS}}", EP_IMG], {"rc", "out"}),
    ("echo", ["run", "--rm", "--pull", "never", "{net}", IMG, "echo", "hello"], {"rc", "out", "err"}),
    ("exit3", ["run", "--rm", "--pull", "never", "{net}", IMG, "sh", "-c", "exit 3"], {"rc", "out", "err"}),
    ("streams", ["run", "--rm", "--pull", "never", "{net}", IMG, "sh", "-c", "echo o; echo e >&2"], {"rc", "out", "err"}),
    ("ep", ["run", "--rm", "--pull", "never", "{net}", EP_IMG], {"rc", "out", "err"}),
    ("ep-args", ["run", "--rm", "--pull", "never", "{net}", EP_IMG, "x"], {"rc", "out", "err"}),
    ("ep-override", ["run", "--rm", "--pull", "never", "{net}", "--entrypoint", "sh", EP_IMG, "-c",
                     "echo $A $(id -u) $(pwd) $HOME"], {"rc", "out", "err"}),
    ("flags", ["run", "--rm", "--pull", "never", "{net}", "-e", "A=2", "-w", "/tmp", "-u", "0", "-h", "hh",
               "--entrypoint", "sh", EP_IMG, "-c", "echo $A $(id) $(pwd) $(hostname)"], {"rc", "out", "err"}),
    ("env", ["run", "--rm", "--pull", "never", "{net}", IMG, "env"], {"rc", "out"}),
    ("dev", ["run", "--rm", "--pull", "never", "{net}", IMG, "ls", "/dev"], {"rc", "out"}),
    ("net", ["run", "--rm", "--pull", "never", "{net}", IMG, "ls", "/sys/class/net"], {"rc", "out"}),
    ("nonexistent", ["run", "--rm", "--pull", "never", "{net}", IMG, "/nonexistent"], {"rc"}),
    ("no-image", ["run", "--rm", "--pull", "never", "{net}", "nosuch-diff:v1", "true"], {"rc", "err"}),
    ("no-image-inspect", ["image", "inspect", "nosuch-diff"], {"rc", "out", "err"}),
    ("no-container", ["logs", "nosuch-diff"], {"rc", "out", "err"}),
    ("detached", ["run", "-d", "--pull", "never", "{net}", "--name", "diff1", IMG, "sh", "-c",
                  "echo started; echo warn >&2; sleep 100"], {"rc", "out"}),
    ("conflict", ["run", "-d", "--pull", "never", "{net}", "--name", "diff1", IMG, "true"], {"rc", "err"}),
    ("ps", ["ps", "--format", "{{.Names}} {{.Image}} {{.Command}} {{.Status}}"], {"rc", "out"}),
    ("logs", ["logs", "diff1"], {"rc", "out", "err"}),
    ("rm-running", ["rm", "diff1"], {"rc", "err"}),
    ("stop", ["stop", "-t", "1", "diff1"], {"rc", "out"}),
    ("ps-a", ["ps", "-a", "--format", "{{.Names}} {{.Status}}"], {"rc", "out"}),
    ("exitcode", ["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.Name}} {{json .Config.Cmd}}",
                  "diff1"], {"rc", "out"}),
    ("rm", ["rm", "diff1"], {"rc", "out"}),
    ("ps-a-empty", ["ps", "-a", "-q"], {"rc", "out"}),
]


def run_steps(d):
    tar = str(build_rootfs_tar(Path(tempfile.gettempdir()) / "berth-diff-rootfs.tar"))
    results = {}
    for name, args, compare in STEPS:
        argv = []
        for a in args:
            if a == "{tar}":
                argv.append(tar)
            elif a == "{net}":
                argv.extend(d.net_args)
            else:
                argv.append(a)
        rc, out, err = d.docker(*argv)
        out = normalise(out)
        if "sorted" in compare:
            out = "\n".join(sorted(out.splitlines()))
        results[name] = {"rc": rc, "out": out, "err": normalise(err)}
    return results


@pytest.fixture(scope="module")
def both():
    berthd = Path(os.environ.get("BERTHD") or Path(__file__).resolve().parents[2] / "target/release/berthd")
    if not berthd.exists():
        pytest.skip(f"no berthd at {berthd}")
    if not shutil.which("dockerd"):
        pytest.skip("no dockerd")
    root = Path(tempfile.mkdtemp(prefix="berth-diff-"))
    b = BerthDaemon(root / "berthd")
    r = RefDaemon.secondary("diff", root)
    b.start()
    r.start()
    try:
        yield b, r
    finally:
        b.stop()
        r.stop()
        shutil.rmtree(root, ignore_errors=True)
        b.check_clean_shutdown()


@needs_diff
def test_same_outputs(both):
    berth, ref = both
    got, want = run_steps(berth), run_steps(ref)
    diffs = []
    for name, _, compare in STEPS:
        for k in sorted(compare - {"sorted"}):
            if got[name][k] != want[name][k]:
                diffs.append(f"[{name}] {k}: berth={got[name][k]!r} ref={want[name][k]!r}")
    assert not diffs, "berth differs from dockerd:\n" + "\n".join(diffs)


def test_normalise_masks_volatile_fields():
    a = "abc123def456  busybox  Up 3 seconds  2024-01-02T03:04:05.123Z  1.98MB sha256:" + "a" * 64
    b = "0123456789ab  busybox  Up About a minute  2025-11-12T13:14:15Z  2MB sha256:" + "b" * 64
    assert normalise(a) != normalise("xyz")
    assert normalise(a) == normalise(b)
    assert normalise("Exited (3) 5 seconds ago") == normalise("Exited (3) About a minute ago")
    assert normalise("Exited (3) 5 seconds ago") != normalise("Exited (4) 5 seconds ago")
