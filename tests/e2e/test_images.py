"""docker import / images / image inspect / reference normalisation."""

import hashlib
import json
import re

import pytest


def sha256_file(p) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def repo_tags(daemon):
    return daemon.ok("images", "--format", "{{.Repository}}:{{.Tag}}").split()


def test_import_file_prints_image_id(daemon, rootfs_tar):
    out = daemon.ok("import", str(rootfs_tar), "berth-e2e/imp:file")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", out), out
    img = daemon.inspect("berth-e2e/imp:file", "image")
    assert img["Id"] == out.strip()
    assert "berth-e2e/imp:file" in img["RepoTags"]


def test_import_stdin(daemon, rootfs_tar):
    data = rootfs_tar.read_bytes()
    out = daemon.ok("import", "-", "berth-e2e/imp:stdin", input=data)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", out), out
    assert "berth-e2e/imp:stdin" in repo_tags(daemon)


def test_import_layer_is_the_tar_digest(daemon, rootfs_tar):
    """The diff id of an imported uncompressed tar is the sha256 of the tar itself."""
    daemon.ok("import", str(rootfs_tar), "berth-e2e/imp:digest")
    img = daemon.inspect("berth-e2e/imp:digest", "image")
    assert img["RootFS"]["Type"] == "layers"
    assert img["RootFS"]["Layers"] == [sha256_file(rootfs_tar)]


def test_import_twice_same_layer(daemon, rootfs_tar):
    daemon.ok("import", str(rootfs_tar), "berth-e2e/imp:twice1")
    daemon.ok("import", "-", "berth-e2e/imp:twice2", input=rootfs_tar.read_bytes())
    a = daemon.inspect("berth-e2e/imp:twice1", "image")
    b = daemon.inspect("berth-e2e/imp:twice2", "image")
    assert a["RootFS"] == b["RootFS"]


def test_import_with_changes(daemon, rootfs_tar):
    daemon.ok(
        "import",
        "--change", 'CMD ["sh"]',
        "--change", "ENV FOO=bar",
        "--change", "ENV A=1 B=2",
        "--change", "WORKDIR /srv",
        "--change", "USER app",
        "--change", 'ENTRYPOINT ["/bin/echo"]',
        str(rootfs_tar),
        "berth-e2e/imp:changes",
    )
    cfg = daemon.inspect("berth-e2e/imp:changes", "image")["Config"]
    assert cfg["Cmd"] == ["sh"]
    assert cfg["Env"] == ["FOO=bar", "A=1", "B=2"]
    assert cfg["WorkingDir"] == "/srv"
    assert cfg["User"] == "app"
    assert cfg["Entrypoint"] == ["/bin/echo"]


def test_import_stdin_with_change(daemon, rootfs_tar):
    daemon.ok("import", "-c", 'CMD ["sh"]', "-c", "ENV X=y", "-", "berth-e2e/imp:stdinchg",
              input=rootfs_tar.read_bytes())
    cfg = daemon.inspect("berth-e2e/imp:stdinchg", "image")["Config"]
    assert cfg["Cmd"] == ["sh"]
    assert cfg["Env"] == ["X=y"]


def test_import_shell_form_changes(daemon, rootfs_tar):
    daemon.ok("import", "-c", "CMD echo hi $HOME", "-c", "ENTRYPOINT /bin/true x",
              str(rootfs_tar), "berth-e2e/imp:shellform")
    cfg = daemon.inspect("berth-e2e/imp:shellform", "image")["Config"]
    assert cfg["Cmd"] == ["/bin/sh", "-c", "echo hi $HOME"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "/bin/true x"]


def test_import_without_changes_has_empty_config(daemon, image):
    img = daemon.inspect(image, "image")
    cfg = img["Config"] or {}
    assert not cfg.get("Cmd")
    assert not cfg.get("Entrypoint")
    assert not cfg.get("Env")


def test_image_inspect_fields(daemon, image, rootfs_tar):
    img = daemon.inspect(image, "image")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", img["Id"])
    assert img["RepoTags"] == [image]
    assert img["Os"] == "linux"
    assert img["Architecture"] == "amd64"
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", img["Created"])
    # the rootfs is ~2 MB of busybox; the size is the unpacked content
    assert 1_500_000 < img["Size"] < 3_000_000, img["Size"]
    assert img["RootFS"]["Layers"] == [sha256_file(rootfs_tar)]


def test_images_lists_imports(daemon, image):
    out = daemon.ok("images")
    header = out.splitlines()[0].split()
    assert header[:3] == ["REPOSITORY", "TAG", "IMAGE"], out
    repo, tag = image.split(":")
    row = [l.split() for l in out.splitlines()[1:] if l.split()[:2] == [repo, tag]]
    assert row, out
    img_id = daemon.inspect(image, "image")["Id"]
    assert row[0][2] == img_id.split(":")[1][:12]


def test_images_quiet_and_format(daemon, image):
    img_id = daemon.inspect(image, "image")["Id"]
    ids = daemon.ok("images", "-q", "--no-trunc").split()
    assert img_id in ids
    rows = daemon.ok("images", "--format", "{{.Repository}}|{{.Tag}}|{{.ID}}").splitlines()
    repo, tag = image.split(":")
    assert f"{repo}|{tag}|{img_id.split(':')[1][:12]}" in rows


@pytest.mark.parametrize(
    "alias",
    ["busybox", "busybox:latest", "library/busybox", "docker.io/library/busybox",
     "docker.io/library/busybox:latest", "library/busybox:latest"],
)
def test_reference_normalisation(daemon, rootfs_tar, alias):
    daemon.ok("import", "-c", 'CMD ["sh"]', str(rootfs_tar), "busybox")
    want = daemon.inspect("docker.io/library/busybox:latest", "image")["Id"]
    assert daemon.inspect(alias, "image")["Id"] == want
    assert "busybox:latest" in daemon.inspect(alias, "image")["RepoTags"]


def test_import_fully_qualified_name_lists_short(daemon, rootfs_tar):
    daemon.ok("import", str(rootfs_tar), "docker.io/library/berthnorm:v2")
    assert "berthnorm:v2" in repo_tags(daemon)
    assert daemon.inspect("berthnorm:v2", "image")["RepoTags"] == ["berthnorm:v2"]


def test_unknown_image_inspect(daemon):
    rc, out, err = daemon.docker("image", "inspect", "nosuchimage-e2e")
    assert rc == 1
    assert "No such image: nosuchimage-e2e:latest" in err, err


def test_unknown_image_run_is_404(daemon):
    rc, out, err = daemon.run("--rm", "nosuchimage-e2e:v9", "true")
    assert rc == 125
    assert "No such image: nosuchimage-e2e:v9" in err, err


def test_import_bad_reference_rejected(daemon, rootfs_tar):
    rc, out, err = daemon.docker("import", str(rootfs_tar), "UPPER/case:bad")
    assert rc != 0
    assert "invalid reference format" in err, err
