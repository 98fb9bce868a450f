"""`docker build` (the classic builder, DOCKER_BUILDKIT=0) and docker-py's images.build against
the daemon; the same expectations against berthd and the reference dockerd: image config,
files and owners in the result, history, the build cache, multi-stage and --target, build args,
.dockerignore, ADD of a local archive, stdin Dockerfiles, failing RUN."""

import io
import json
import subprocess
import tarfile
import textwrap

import pytest

from helpers import DOCKER_CLI, cli_env


def build(daemon, ctx, *args, stdin=None):
    env = cli_env(daemon.host)
    env["DOCKER_BUILDKIT"] = "0"
    p = subprocess.run([DOCKER_CLI, "build", "--pull=false", *args, str(ctx) if stdin is None else "-"],
                       cwd=ctx if stdin is None else None, input=stdin, env=env,
                       capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def write(ctx, files):
    for name, content in files.items():
        p = ctx / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(content))


@pytest.fixture
def tags(daemon):
    made = []

    def _tag(name):
        made.append(name)
        return name

    yield _tag
    for t in made:
        daemon.docker("rmi", "-f", t)


def test_build_config_files_history_and_cache(daemon, image, tmp_path, tags):
    write(tmp_path, {
        "Dockerfile": f"""\
            FROM {image}
            ARG GREETING=hello
            ENV APP=/app NAME="berth builder"
            WORKDIR $APP
            COPY hello.txt ./
            COPY dir/ sub/
            COPY --chown=1000:1000 hello.txt owned.txt
            RUN echo "$GREETING from RUN" > run.txt && chmod 604 run.txt
            LABEL org.test=1 other="two words"
            EXPOSE 8080/tcp 53/udp
            VOLUME /data
            STOPSIGNAL SIGUSR1
            HEALTHCHECK --interval=5s --retries=2 CMD true
            USER 1000
            ENTRYPOINT ["cat"]
            CMD ["/app/run.txt"]
            """,
        "hello.txt": "hi file\n",
        "dir/a": "a\n",
        "dir/b": "b\n",
        ".dockerignore": "dir/b\n",
    })
    t = tags("berth-e2e/built:1")
    rc, out, err = build(daemon, tmp_path, "-t", t, "--build-arg", "GREETING=hey")
    assert rc == 0, out + err
    assert "Step 1/16 : FROM" in out and f"Successfully tagged {t}" in out, out
    assert "hey" not in out.split("Step 8/16")[0]
    cfg = daemon.inspect(t, "image")["Config"]
    assert cfg["Env"][-2:] == ["APP=/app", "NAME=berth builder"], cfg
    assert (cfg["WorkingDir"], cfg["User"], cfg["StopSignal"]) == ("/app", "1000", "SIGUSR1")
    assert cfg["Labels"] == {"org.test": "1", "other": "two words"}
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert cfg["Volumes"] == {"/data": {}}
    assert (cfg["Entrypoint"], cfg["Cmd"]) == (["cat"], ["/app/run.txt"])
    assert cfg["Healthcheck"]["Test"] == ["CMD-SHELL", "true"] and cfg["Healthcheck"]["Retries"] == 2
    rc, out, err = daemon.docker("run", "--rm", t)
    assert (rc, out) == (0, "hey from RUN\n"), err
    rc, out, err = daemon.docker("run", "--rm", "--user", "0", "--entrypoint", "sh", t, "-c",
                                 "ls sub; stat -c '%u:%g %a' owned.txt hello.txt run.txt")
    assert out.split() == ["a", "1000:1000", "644", "0:0", "644", "0:0", "604"], out
    hist = json.loads(daemon.ok("image", "inspect", t))[0]
    created_by = daemon.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}", t).splitlines()
    assert "COPY" in created_by[-5 - 0] or any("COPY" in c for c in created_by), created_by
    assert any('echo "$GREETING from RUN"' in c for c in created_by), created_by
    assert len(hist["RootFS"]["Layers"]) == 6  # base + WORKDIR (mkdir) + 3 COPY + RUN
    # the same build again: every step after FROM from the cache
    rc, out, err = build(daemon, tmp_path, "-t", t, "--build-arg", "GREETING=hey")
    assert rc == 0 and out.count("Using cache") >= 14, out
    first_id = daemon.inspect(t, "image")["Id"]
    # a changed file: the cache stops at its COPY
    (tmp_path / "hello.txt").write_text("changed\n")
    rc, out, err = build(daemon, tmp_path, "-t", t, "--build-arg", "GREETING=hey")
    assert rc == 0, err
    assert out.split("Step 5/16")[0].count("Using cache") == 3, out
    assert "Using cache" not in out.split("Step 5/16")[1].split("Step 6/16")[0], out
    assert daemon.inspect(t, "image")["Id"] != first_id
    # --no-cache
    rc, out, _ = build(daemon, tmp_path, "-q", "--no-cache", "-t", t)
    assert rc == 0 and out.strip().startswith("sha256:") and len(out.split()) == 1, out


def test_multistage_target_and_copy_from(daemon, image, tmp_path, tags):
    write(tmp_path, {"Dockerfile": f"""\
        FROM {image} AS builder
        RUN mkdir /out && echo built > /out/artifact && echo extra > /out/extra
        FROM {image} AS test
        RUN echo test-stage > /test
        FROM {image}
        COPY --from=builder /out/artifact /artifact
        CMD ["cat", "/artifact"]
        """})
    t = tags("berth-e2e/multi:1")
    rc, out, err = build(daemon, tmp_path, "-t", t)
    assert rc == 0, out + err
    rc, out, _ = daemon.docker("run", "--rm", t)
    assert out == "built\n"
    rc, out, _ = daemon.docker("run", "--rm", t, "ls", "/")
    assert "test" not in out.split() and "out" not in out.split()
    t2 = tags("berth-e2e/multi:test")
    rc, out, err = build(daemon, tmp_path, "--target", "test", "-t", t2)
    assert rc == 0 and "Step 4/4" in out and "Step 5" not in out, out
    rc, out, _ = daemon.docker("run", "--rm", t2, "cat", "/test")
    assert out == "test-stage\n"
    rc, out, err = build(daemon, tmp_path, "--target", "nosuch")
    assert rc != 0 and "nosuch" in (out + err)


def test_failing_run_and_errors(daemon, image, tmp_path):
    write(tmp_path, {"Dockerfile": f"FROM {image}\nRUN echo before; exit 3\n"})
    rc, out, err = build(daemon, tmp_path)
    assert rc == 3, (rc, out, err)  # the CLI exits with the RUN's code
    assert "The command '/bin/sh -c echo before; exit 3' returned a non-zero code: 3" in err, err
    assert "before" in out
    write(tmp_path, {"Dockerfile": "RUN true\n"})
    rc, out, err = build(daemon, tmp_path)
    assert rc != 0 and "from" in err.lower(), err
    write(tmp_path, {"Dockerfile": f"FROM {image}\nCOPY missing.txt /\n"})
    rc, out, err = build(daemon, tmp_path)
    assert rc != 0 and "missing.txt" in err, err


def test_add_local_archive_and_build_args(daemon, image, tmp_path, tags):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        data = b"from the archive\n"
        ti = tarfile.TarInfo("inner/file.txt")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    (tmp_path / "pack.tar.gz").write_bytes(buf.getvalue())
    write(tmp_path, {"Dockerfile": f"""\
        FROM {image}
        ARG WHO
        ADD pack.tar.gz /opt/
        RUN echo "who=$WHO" > /who
        """})
    t = tags("berth-e2e/add:1")
    rc, out, err = build(daemon, tmp_path, "-t", t, "--build-arg", "WHO=me", "--build-arg", "UNUSED=1")
    assert rc == 0, out + err
    assert "[Warning] One or more build-args [UNUSED] were not consumed" in out + err
    rc, out, _ = daemon.docker("run", "--rm", t, "cat", "/opt/inner/file.txt", "/who")
    assert out == "from the archive\nwho=me\n"


def test_dockerfile_from_stdin(daemon, image, tmp_path, tags):
    t = tags("berth-e2e/stdin:1")
    env = cli_env(daemon.host)
    env["DOCKER_BUILDKIT"] = "0"
    p = subprocess.run([DOCKER_CLI, "build", "-t", t, "-"], input=f"FROM {image}\nCMD [\"echo\", \"stdin\"]\n",
                       env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    rc, out, _ = daemon.docker("run", "--rm", t)
    assert out == "stdin\n"


def test_dockerpy_build(daemon, image, tmp_path, tags):
    write(tmp_path, {"Dockerfile": f"FROM {image}\nLABEL via=dockerpy\nRUN echo py > /py\n"})
    cli = daemon.client()
    t = tags("berth-e2e/py:1")
    img, logs = cli.images.build(path=str(tmp_path), tag=t, rm=True)
    assert img.labels.get("via") == "dockerpy"
    assert any("Successfully built" in (l.get("stream") or "") for l in logs)
    rc, out, _ = daemon.docker("run", "--rm", t, "cat", "/py")
    assert out == "py\n"


def test_global_arg_onbuild_and_dockerignore(daemon, image, tmp_path, tags):
    write(tmp_path, {"Dockerfile": f"""\
        ARG BASE={image}
        ARG VERSION=1.2
        FROM $BASE
        ARG VERSION
        ONBUILD RUN echo triggered > /onbuild
        RUN echo "v=$VERSION" > /version
        COPY . /ctx/
        """, "keep.txt": "k\n", "secret.txt": "s\n", ".dockerignore": "secret.txt\n"})
    t = tags("berth-e2e/onb:1")
    rc, out, err = build(daemon, tmp_path, "-t", t)
    assert rc == 0, out + err
    rc, out, _ = daemon.docker("run", "--rm", t, "sh", "-c", "cat /version; ls /ctx")
    assert out.split() == ["v=1.2", "Dockerfile", "keep.txt"], out
    assert daemon.inspect(t, "image")["Config"]["OnBuild"] == ["RUN echo triggered > /onbuild"]
    child = tmp_path / "child"
    child.mkdir()
    write(child, {"Dockerfile": f"FROM {t}\n"})
    t2 = tags("berth-e2e/onb:child")
    rc, out, err = build(daemon, child, "-t", t2)
    assert rc == 0, out + err
    rc, out, _ = daemon.docker("run", "--rm", t2, "cat", "/onbuild")
    assert out == "triggered\n"
    assert not daemon.inspect(t2, "image")["Config"].get("OnBuild")


def test_hostile_context_stays_inside(daemon, image, tmp_path, tags):
    """A symlink in the context cannot make COPY read the daemon host's files, and `..` sources
    are refused."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("context-passwd\n")
    (tmp_path / "link").symlink_to("/etc")
    (tmp_path / "up").symlink_to("../../../../../../etc")
    write(tmp_path, {"Dockerfile": f"FROM {image}\nCOPY link/passwd /a\nCOPY up/passwd /b\n"})
    t = tags("berth-e2e/hostile:1")
    rc, out, err = build(daemon, tmp_path, "-t", t)
    assert rc == 0, out + err
    rc, out, _ = daemon.docker("run", "--rm", t, "cat", "/a", "/b")
    assert out == "context-passwd\ncontext-passwd\n", out
    write(tmp_path, {"Dockerfile": f"FROM {image}\nCOPY ../outside /x\n"})
    rc, out, err = build(daemon, tmp_path)
    assert rc != 0 and ("outside" in err or "forbidden" in err), err


def test_remote_context_and_add_url(daemon, image, tmp_path, tags):
    """Remote contexts: the docker CLI downloads a URL context itself, docker-py passes
    `remote=` for the daemon to fetch (a plain Dockerfile, or a tar); `ADD <url>` is fetched by
    the daemon. The HTTP server runs on loopback, in the host namespace (for the CLI) and, for
    the reference dockerd, also inside its namespace, on the same port."""
    import socket
    import tarfile as _tf
    import time

    srv = tmp_path / "srv"
    srv.mkdir()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    (srv / "Dockerfile").write_text(
        f"FROM {image}\nADD http://127.0.0.1:{port}/data.txt /fetched/\nCMD [\"cat\", \"/fetched/data.txt\"]\n")
    (srv / "data.txt").write_text("over http\n")
    with _tf.open(srv / "ctx.tar.gz", "w:gz") as tf:
        tf.add(srv / "Dockerfile", "Dockerfile")
    servers = [subprocess.Popen(["python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                                cwd=srv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    if daemon.target == "ref":
        servers.append(subprocess.Popen(
            ["ip", "netns", "exec", daemon.netns, "python3", "-m", "http.server", str(port), "--bind",
             "127.0.0.1"], cwd=srv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        time.sleep(1.0)
        env = cli_env(daemon.host)
        env["DOCKER_BUILDKIT"] = "0"
        t = tags("berth-e2e/remote:1")
        for path in ("Dockerfile", "ctx.tar.gz"):
            p = subprocess.run([DOCKER_CLI, "build", "-t", t, f"http://127.0.0.1:{port}/{path}"],
                               env=env, capture_output=True, text=True, timeout=120)
            assert p.returncode == 0, p.stdout + p.stderr
            rc, out, _ = daemon.docker("run", "--rm", t)
            assert out == "over http\n", out
        rc, out, _ = daemon.docker("run", "--rm", t, "stat", "-c", "%a", "/fetched/data.txt")
        assert out.strip() == "600", out
        # daemon-side fetch (remote=) through docker-py
        cli = daemon.client()
        for path in ("Dockerfile", "ctx.tar.gz"):
            img, _ = cli.images.build(path=f"http://127.0.0.1:{port}/{path}", tag=t)
            rc, out, _ = daemon.docker("run", "--rm", t)
            assert out == "over http\n", out
    finally:
        for h in servers:
            h.kill()
            h.wait()


def test_copy_chmod_is_a_berth_extension(daemon, image, tmp_path, tags):
    """`COPY --chmod` works in Berth's classic builder (dockerd's needs BuildKit for it)."""
    write(tmp_path, {"Dockerfile": f"FROM {image}\nCOPY --chmod=751 f.txt /m\n", "f.txt": "f\n"})
    rc, out, err = build(daemon, tmp_path, "-t", tags("berth-e2e/chmod:1"))
    if daemon.target == "ref":
        assert rc != 0 and "requires BuildKit" in err, err
        return
    assert rc == 0, out + err
    rc, out, _ = daemon.docker("run", "--rm", "berth-e2e/chmod:1", "stat", "-c", "%a", "/m")
    assert out.strip() == "751"


def test_build_network_and_iidfile(daemon, image, tmp_path, tags):
    write(tmp_path, {"Dockerfile": f"FROM {image}\nRUN ls /sys/class/net > /nets\n"})
    t = tags("berth-e2e/netmode:1")
    iid = tmp_path / "iid"
    rc, out, err = build(daemon, tmp_path, "--network", "none", "--iidfile", str(iid), "-t", t)
    assert rc == 0, out + err
    assert iid.read_text().strip() == daemon.inspect(t, "image")["Id"]
    rc, out, _ = daemon.docker("run", "--rm", t, "cat", "/nets")
    assert out.split() == ["lo"], out
