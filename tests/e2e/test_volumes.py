"""Volumes through the docker CLI and docker-py, with the same expectations against berthd and
the reference dockerd: named and anonymous volumes, copy-up of image content, nocopy, ro,
binds, tmpfs, --volumes-from, in-use refusal, rm -v, prune, inspect shapes, and a mount target
that is a symlink pointing out of the rootfs.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest


def vname(prefix="v"):
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@pytest.fixture
def cleanup(daemon):
    names = {"containers": [], "volumes": []}
    yield names
    for c in names["containers"]:
        daemon.docker("rm", "-f", "-v", c)
    for v in names["volumes"]:
        daemon.docker("volume", "rm", "-f", v)


def test_named_volume_persists_and_ro(daemon, image, cleanup):
    v = vname()
    cleanup["volumes"].append(v)
    daemon.ok(*daemon.run_args("--rm", "-v", f"{v}:/data", image, "sh", "-c", "echo hello > /data/f"))
    out = daemon.ok(*daemon.run_args("--rm", "-v", f"{v}:/data:ro", image, "sh", "-c",
                                     "cat /data/f; echo x > /data/g 2>/dev/null || echo refused"))
    assert out.split() == ["hello", "refused"]
    info = json.loads(daemon.ok("volume", "inspect", v))[0]
    assert (info["Name"], info["Driver"], info["Scope"], info["Options"]) == (v, "local", "local", None)
    assert info["Mountpoint"].endswith(f"/volumes/{v}/_data")


def test_volume_create_errors_and_ls_filters(daemon, cleanup):
    v = vname()
    cleanup["volumes"].append(v)
    daemon.ok("volume", "create", "--label", "team=berth", v)
    rc, _, err = daemon.docker("volume", "create", "x/y")
    assert rc != 0 and 'includes invalid characters for a local volume name' in err
    rc, _, err = daemon.docker("volume", "create", "a")
    assert rc != 0 and "volume name is too short" in err
    rc, _, err = daemon.docker("volume", "inspect", "nosuchvol" + uuid.uuid4().hex[:6])
    assert rc != 0 and "no such volume" in err
    assert daemon.ok("volume", "ls", "-q", "--filter", "label=team=berth", "--filter", f"name={v}").split() == [v]
    assert v in daemon.ok("volume", "ls", "-q", "--filter", "dangling=true").split()


def test_copy_up_nocopy_and_image_volume(daemon, image, make_image, cleanup):
    cu, nc = vname("cu"), vname("nc")
    cleanup["volumes"] += [cu, nc]
    # A fresh named volume gets the image's content at the mount point.
    daemon.ok(*daemon.run_args("--rm", "-v", f"{cu}:/etc", image, "true"))
    out = daemon.ok(*daemon.run_args("--rm", "-v", f"{cu}:/mnt", image, "ls", "/mnt"))
    assert "passwd" in out.split()
    # nocopy: it stays empty.
    daemon.ok(*daemon.run_args("--rm", "-v", f"{nc}:/etc:nocopy", image, "true"))
    # (the runtime's mount points for /etc/hostname, hosts and resolv.conf are all it has)
    listing = daemon.ok(*daemon.run_args("--rm", "-v", f"{nc}:/mnt", image, "ls", "-A", "/mnt")).split()
    assert "passwd" not in listing and set(listing) <= {"hostname", "hosts", "resolv.conf"}
    # An image VOLUME becomes an anonymous volume with the image's content.
    img = make_image("VOLUME /etc")
    c = vname("c")
    cleanup["containers"].append(c)
    daemon.ok(*daemon.run_args("--name", c, img, "cat", "/etc/passwd"))
    mounts = daemon.inspect(c, "container")["Mounts"]
    assert len(mounts) == 1 and mounts[0]["Type"] == "volume" and mounts[0]["Destination"] == "/etc"
    assert len(mounts[0]["Name"]) == 64 and mounts[0]["Mode"] == "" and mounts[0]["RW"] is True
    anon = mounts[0]["Name"]
    daemon.ok("rm", "-v", c)
    cleanup["containers"].remove(c)
    assert anon not in daemon.ok("volume", "ls", "-q").split()


def normalized_mounts(info: dict) -> list[dict]:
    out = []
    for m in info["Mounts"]:
        m = dict(m)
        if m["Type"] == "volume":
            if len(m.get("Name", "")) == 64:
                m["Name"] = "<anon>"
            m["Source"] = "<volume>"
        out.append(m)
    return sorted(out, key=lambda m: m["Destination"])


def test_inspect_mounts_shape(daemon, image, cleanup, tmp_path):
    v, c = vname(), vname("c")
    cleanup["volumes"].append(v)
    cleanup["containers"].append(c)
    host = tmp_path / "hostdir"
    host.mkdir()
    daemon.ok("create", "--pull", "never", *daemon.net_args, "--name", c, "-v", f"{v}:/data", "-v", f"{host}:/h:ro",
              "-v", "/anon", "--mount", "type=tmpfs,target=/t", "--tmpfs", "/t2", image, "true")
    info = daemon.inspect(c, "container")
    assert normalized_mounts(info) == [
        {"Type": "volume", "Name": "<anon>", "Source": "<volume>", "Destination": "/anon", "Driver": "local",
         "Mode": "", "RW": True, "Propagation": ""},
        {"Type": "volume", "Name": v, "Source": "<volume>", "Destination": "/data", "Driver": "local",
         "Mode": "z", "RW": True, "Propagation": ""},
        {"Type": "bind", "Source": str(host), "Destination": "/h", "Mode": "ro", "RW": False, "Propagation": "rprivate"},
        {"Type": "tmpfs", "Source": "", "Destination": "/t", "Mode": "", "RW": True, "Propagation": ""},
    ]
    assert info["HostConfig"]["Binds"] == [f"{v}:/data", f"{host}:/h:ro"]
    assert info["HostConfig"]["Tmpfs"] == {"/t2": ""}
    assert info["Config"]["Volumes"] == {"/anon": {}}
    # A volume in use cannot be removed.
    rc, _, err = daemon.docker("volume", "rm", v)
    assert rc != 0 and f"remove {v}: volume is in use - [" in err
    assert v in daemon.ok("ps", "-a", "-q", "--no-trunc", "--filter", f"volume={v}") or \
        daemon.ok("ps", "-a", "-q", "--filter", f"volume={v}").strip() != ""


def test_binds_tmpfs_and_volumes_from(daemon, image, cleanup, tmp_path):
    host = tmp_path / "share"
    host.mkdir()
    (host / "in").write_text("from-host\n")
    out = daemon.ok(*daemon.run_args("--rm", "-v", f"{host}:/h", "--tmpfs", "/t:size=1m",
                                     "--mount", "type=tmpfs,target=/t2", image, "sh", "-c",
                                     "cat /h/in; echo back > /h/out; grep -c ' /t tmpfs\\| /t2 tmpfs' /proc/mounts"))
    assert out.split() == ["from-host", "2"]
    assert (host / "out").read_text() == "back\n"
    v, src = vname(), vname("src")
    cleanup["volumes"].append(v)
    cleanup["containers"].append(src)
    daemon.ok(*daemon.run_args("--name", src, "-v", f"{v}:/data", image, "sh", "-c", "echo shared > /data/x"))
    out = daemon.ok(*daemon.run_args("--rm", "--volumes-from", f"{src}:ro", image, "sh", "-c",
                                     "cat /data/x; touch /data/y 2>/dev/null || echo ro"))
    assert out.split() == ["shared", "ro"]
    rc, _, err = daemon.docker(*daemon.run_args("--rm", "--mount", f"type=bind,source={tmp_path}/missing,target=/m",
                                                image, "true"))
    assert rc != 0 and "bind source path does not exist" in err


def test_prune_anonymous_by_default_all_with_flag(daemon, image, cleanup):
    named = vname("keep")
    daemon.ok("volume", "create", named)
    c = vname("c")
    daemon.ok("create", "--pull", "never", *daemon.net_args, "--name", c, "-v", "/scratch", image, "true")
    anon = daemon.inspect(c, "container")["Mounts"][0]["Name"]
    daemon.ok("rm", c)  # without -v: the anonymous volume stays, unused
    assert anon in daemon.ok("volume", "ls", "-q").split()
    out = daemon.ok("volume", "prune", "-f")
    api = tuple(int(x) for x in daemon.ok("version", "--format", "{{.Server.APIVersion}}").strip().split("."))
    # API >= 1.42 prunes only anonymous volumes by default; older API versions prune all.
    assert anon in out and ((named in out) == (api < (1, 42))), out
    if api >= (1, 42):
        out = daemon.ok("volume", "prune", "-f", "--all", "--filter", "label!=nosuch")
        assert named in out and named not in daemon.ok("volume", "ls", "-q").split()
    daemon.docker("volume", "rm", "-f", named)


def test_symlinked_mount_target_stays_inside(daemon, image, cleanup):
    """An image whose /lnk points at a host path: mounting a volume on /lnk must land inside
    the container root, never on the host's directory."""
    escape = f"/tmp/berth-escape-{uuid.uuid4().hex[:8]}"
    c, img, v = vname("c"), f"berth-e2e/symlink:{uuid.uuid4().hex[:8]}", vname()
    cleanup["volumes"].append(v)
    daemon.ok(*daemon.run_args("--name", c, image, "ln", "-s", escape, "/lnk"))
    daemon.ok("commit", c, img)
    daemon.ok("rm", c)
    try:
        daemon.ok(*daemon.run_args("--rm", "-v", f"{v}:/lnk", img, "sh", "-c", "echo inside > /lnk/file"))
        assert not os.path.exists(escape), f"the mount followed the symlink to the host: {escape}"
        assert daemon.ok(*daemon.run_args("--rm", "-v", f"{v}:/m", image, "cat", "/m/file")).strip() == "inside"
    finally:
        daemon.docker("rmi", img)


def test_docker_py_volumes(daemon, cleanup):
    cli = daemon.client()
    v = vname("py")
    cleanup["volumes"].append(v)
    vol = cli.volumes.create(name=v, labels={"k": "v"})
    assert vol.name == v and vol.attrs["Labels"] == {"k": "v"}
    assert v in [x.name for x in cli.volumes.list(filters={"label": "k=v"})]
    cli.volumes.get(v).remove()
    assert v not in [x.name for x in cli.volumes.list()]
    cli.close()
