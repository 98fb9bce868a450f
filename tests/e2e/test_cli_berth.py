"""Berth's own CLI (`berth`) against the docker CLI, on the same daemon: the same listing
columns, JSON and `--format` output (ids and times normalised where they can move), the
same exit codes. Against BERTH_E2E_TARGET=ref the same comparisons run on the reference
dockerd ("berth works against dockerd too"). Commands the daemon does not serve yet (berthd
networks and builds while they are being written) are skipped with that reason.

Also: contexts in docker's store layout (docker and berth read each other's), login/logout
and push/pull against a local registry, and the generated completions and man pages."""

from __future__ import annotations

import json
import os
import re
import time
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from berth_cli import berth_binary, run_berth
from helpers import DOCKER_CLI, normalise

pytestmark = pytest.mark.skipif(berth_binary() is None, reason="no berth binary built")


def both(daemon, *args: str, input=None):
    """(berth result, docker result), each (rc, out, err)."""
    return run_berth(daemon.host, *args, input=input), daemon.docker(*args, input=input)


def same(daemon, *args: str, norm: bool = True):
    (brc, bout, berr), (drc, dout, derr) = both(daemon, *args)
    assert brc == drc == 0, f"{args}: berth rc={brc} {berr!r}, docker rc={drc} {derr!r}"
    if norm:
        bout, dout = normalise(bout), normalise(dout)
    assert bout == dout, f"berth {' '.join(args)}:\n{bout}\n--- docker:\n{dout}"
    return bout


@pytest.fixture(scope="module")
def containers(daemon, sh_image):
    """One running and one exited container with labels, removed afterwards."""
    tag = uuid.uuid4().hex[:8]
    run_name, done_name = f"cli-run-{tag}", f"cli-done-{tag}"
    try:
        daemon.ok(*daemon.run_args("-d", "--name", run_name, "-l", f"clitest={tag}", "-l", "b=2", sh_image, "sleep", "300"))
        rc, _, err = daemon.run("--name", done_name, "-l", f"clitest={tag}", sh_image, "sh", "-c", "echo x > /made; exit 3")
        assert rc == 3, err
        yield tag, run_name, done_name
    finally:
        daemon.docker("rm", "-f", run_name, done_name)


def test_ps_matches_docker(daemon, containers):
    tag, run_name, done_name = containers
    f = f"label=clitest={tag}"
    same(daemon, "ps", "-a", "--filter", f)
    same(daemon, "ps", "--filter", f)
    same(daemon, "ps", "-a", "-q", "--filter", f, norm=False)
    same(daemon, "ps", "-a", "--no-trunc", "--filter", f)
    same(daemon, "container", "ls", "-a", "--filter", f)
    same(daemon, "ps", "-a", "--filter", f, "--format", "json")
    same(daemon, "ps", "-a", "--filter", f, "--format", "table {{.Names}}\t{{.Labels}}\t{{.State}}", norm=False)
    same(daemon, "ps", "-a", "--filter", f, "--format", "{{.Names}} {{upper .State}} {{json .Command}} {{.Status}}")
    same(daemon, "ps", "-a", "--filter", f, "--format", "{{range split .Labels \",\"}}[{{.}}]{{end}} {{truncate .Names 8}}|{{pad .State 1 1}}|{{title .State}}", norm=False)


def test_images_history_inspect_match_docker(daemon, sh_image, containers):
    repo = sh_image.split(":")[0]
    same(daemon, "images", repo)
    same(daemon, "image", "ls", repo)
    same(daemon, "images", "--format", "json", repo)
    same(daemon, "images", "--format", "table {{.Repository}}:{{.Tag}}\t{{.Size}}", repo, norm=False)
    same(daemon, "images", "-q", repo, norm=False)
    same(daemon, "history", sh_image)
    same(daemon, "history", "--no-trunc", sh_image)
    same(daemon, "history", "--format", "json", sh_image)
    same(daemon, "history", "--format", "{{.ID}}: {{.CreatedBy}} {{.Size}}", sh_image)
    # inspect passes the daemon's documents through in docker's layout
    _, run_name, done_name = containers
    same(daemon, "inspect", done_name, norm=False)
    same(daemon, "inspect", sh_image, norm=False)
    same(daemon, "container", "inspect", "-f", "{{.State.ExitCode}} {{json .Config.Labels}} {{.Name}}", done_name, norm=False)
    same(daemon, "image", "inspect", "--format", "{{.Id}} {{len .RootFS.Layers}}", sh_image, norm=False)
    same(daemon, "inspect", "-f", "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}{{$n := .Name}}{{$n}}", done_name, norm=False)
    same(daemon, "ps", "-a", "--filter", f"name={done_name}", "--format", '{{.Label "b"}}|{{.Label "clitest"}}', norm=False)
    (brc, _, berr), (drc, _, derr) = both(daemon, "inspect", "no-such-thing-xyz")
    assert brc == drc == 1
    assert "No such object: no-such-thing-xyz" in berr and "No such object: no-such-thing-xyz" in derr


def test_container_commands_match_docker(daemon, containers):
    _, run_name, done_name = containers
    # `top` with ps's own -o: the %CPU (C) column moves between two calls, so not compared
    same(daemon, "top", run_name, "-o", "uid,pid,ppid,tty,cmd")
    same(daemon, "diff", done_name, norm=False)
    same(daemon, "port", run_name, norm=False)
    same(daemon, "stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", run_name, norm=False)
    same(daemon, "logs", done_name, norm=False)
    (brc, bout, _), (drc, dout, _) = both(daemon, "exec", run_name, "sh", "-c", "echo out; exit 5")
    assert brc == drc == 5 and bout == dout == "out\n"
    (brc, _, _), (drc, _, _) = both(daemon, "exec", run_name, "/no/such/binary")
    assert brc == drc and brc in (126, 127)
    (brc, _, _), (drc, _, _) = both(daemon, "exec", done_name, "true")
    assert brc == drc != 0


def test_run_exit_codes_match_docker(daemon, sh_image):
    args = daemon.run_args("--rm", sh_image, "sh", "-c", "echo o; echo e >&2; exit 3")
    (brc, bout, berr), (drc, dout, derr) = both(daemon, *args)
    assert (brc, bout, berr) == (drc, dout, derr) == (3, "o\n", "e\n")
    (brc, _, _), (drc, _, _) = both(daemon, *daemon.run_args("--rm", sh_image, "/no/such/cmd"))
    assert brc == drc == 127
    (brc, _, berr), (drc, _, derr) = both(daemon, *daemon.run_args("--rm", "no-such-image-xyz:1"))
    assert brc == drc == 125
    assert "No such image: no-such-image-xyz:1" in berr and "No such image: no-such-image-xyz:1" in derr
    # flag errors are 125; an unknown command or missing arguments 1
    (brc, _, _), (drc, _, _) = both(daemon, "run", "--no-such-flag", sh_image)
    assert brc == drc == 125
    for args in (["no-such-command"], ["run"], ["ps", "--bogus"], ["rm"]):
        (brc, _, _), (drc, _, _) = both(daemon, *args)
        assert brc == drc, args


def test_lifecycle_commands(daemon, sh_image, names):
    n = names("cli-life")
    rc, out, err = run_berth(daemon.host, "create", *daemon.net_args, "--name", n, "-e", "A=1", sh_image, "sleep", "300")
    assert rc == 0 and len(out.strip()) == 64, err
    assert run_berth(daemon.host, "start", n)[1].strip() == n
    assert run_berth(daemon.host, "pause", n)[1].strip() == n
    assert daemon.inspect(n)["State"]["Paused"] is True
    assert run_berth(daemon.host, "unpause", n)[1].strip() == n
    rc, out, err = run_berth(daemon.host, "update", "--memory", "64m", "--memory-swap", "128m", "--restart", "on-failure:2", n)
    assert rc == 0, err
    st = daemon.inspect(n)
    assert st["HostConfig"]["Memory"] == 64 << 20
    assert st["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    n2 = names("cli-renamed")
    assert run_berth(daemon.host, "rename", n, n2)[0] == 0
    assert run_berth(daemon.host, "restart", "-t", "1", n2)[0] == 0
    assert daemon.inspect(n2)["State"]["Running"] is True
    rc, out, err = run_berth(daemon.host, "exec", "-e", "B=2", "-w", "/bin", "-u", "1234", n2, "sh", "-c", "echo $A$B $(pwd) $(id -u)")
    assert (rc, out) == (0, "12 /bin 1234\n"), err
    assert run_berth(daemon.host, "exec", "-d", n2, "touch", "/bg")[0] == 0
    img = f"berth-e2e/committed-{uuid.uuid4().hex[:8]}:v1"
    rc, out, err = run_berth(daemon.host, "commit", "-m", "msg", "-c", 'CMD ["echo","hi"]', n2, img)
    assert rc == 0 and out.startswith("sha256:"), err
    assert daemon.inspect(img, "image")["Config"]["Cmd"] == ["echo", "hi"]
    assert run_berth(daemon.host, "rmi", img)[0] == 0
    # back to no restart policy, so the cleanup's rm -f cannot race a policy restart
    assert run_berth(daemon.host, "update", "--restart", "no", n2)[0] == 0


def test_cp_export_save_load(daemon, sh_image, names, workdir):
    n = names("cli-cp")
    daemon.ok(*daemon.run_args("-d", "--name", n, sh_image, "sleep", "300"))
    d = Path(tempfile.mkdtemp(dir=workdir))
    (d / "src" / "sub").mkdir(parents=True)
    (d / "src" / "sub" / "a.txt").write_text("A\n")
    (d / "f.txt").write_text("F\n")
    assert run_berth(daemon.host, "cp", str(d / "f.txt"), f"{n}:/f2.txt")[0] == 0
    assert run_berth(daemon.host, "cp", str(d / "src"), f"{n}:/tree")[0] == 0
    assert daemon.ok("exec", n, "cat", "/f2.txt", "/tree/sub/a.txt") == "F\nA\n"
    assert run_berth(daemon.host, "cp", f"{n}:/tree", str(d / "back"))[0] == 0
    assert (d / "back" / "sub" / "a.txt").read_text() == "A\n"
    assert run_berth(daemon.host, "cp", f"{n}:/f2.txt", str(d))[0] == 0
    assert (d / "f2.txt").read_text() == "F\n"
    (brc, _, berr), (drc, _, derr) = both(daemon, "cp", f"{n}:/nonexistent", str(d / "x"))
    assert brc == drc == 1 and "Could not find the file /nonexistent" in berr
    assert run_berth(daemon.host, "export", "-o", str(d / "exp.tar"), n)[0] == 0
    assert subprocess.run(["tar", "tf", str(d / "exp.tar")], capture_output=True, text=True).stdout.count("f2.txt") == 1
    assert run_berth(daemon.host, "save", "-o", str(d / "img.tar"), sh_image)[0] == 0
    rc, out, err = run_berth(daemon.host, "load", "-i", str(d / "img.tar"))
    assert rc == 0 and f"Loaded image: {sh_image}" in out, err


def test_volumes_and_networks_match_docker(daemon):
    v = f"clivol-{uuid.uuid4().hex[:8]}"
    assert run_berth(daemon.host, "volume", "create", "--label", "cli=1", v)[1].strip() == v
    try:
        same(daemon, "volume", "ls", "--filter", "label=cli=1")
        same(daemon, "volume", "inspect", v, norm=False)
        same(daemon, "inspect", "--type", "volume", "-f", "{{.Name}} {{.Driver}} {{.Labels}}", v, norm=False)
    finally:
        run_berth(daemon.host, "volume", "rm", v)
    rc, _, err = daemon.docker("network", "ls")
    if rc != 0:
        pytest.skip(f"the daemon serves no networks yet: {err.strip()}")
    net = f"clinet-{uuid.uuid4().hex[:8]}"
    rc, out, err = run_berth(daemon.host, "network", "create", "--label", "cli=1", net)
    assert rc == 0 and len(out.strip()) == 64, err
    try:
        same(daemon, "network", "ls")
        same(daemon, "network", "ls", "--format", "json", "--filter", "label=cli=1")
        same(daemon, "network", "inspect", net, norm=False)
        same(daemon, "network", "ls", "--filter", "label=cli=1", "--format", "{{.Name}} {{.Driver}} {{.Labels}}", norm=False)
    finally:
        assert run_berth(daemon.host, "network", "rm", net)[1].strip() == net


def test_system_commands_match_docker(daemon):
    same(daemon, "system", "df")
    same(daemon, "version", "--format", "{{.Server.APIVersion}} {{.Server.Os}} {{.Client.Os}}", norm=False)
    same(daemon, "info", "--format", "{{.OSType}} {{.Driver}} {{json .Plugins.Volume}}", norm=False)
    now = time.time()
    same(daemon, "events", "--since", f"{now - 2:.3f}", "--until", f"{now:.3f}", norm=False)
    same(daemon, "events", "--since", f"{now - 2:.3f}", "--until", f"{now:.3f}", "--format", "{{.Type}} {{.Action}}", norm=False)


def test_build_matches_docker(daemon, sh_image, workdir):
    ctx = Path(tempfile.mkdtemp(dir=workdir))
    (ctx / "Dockerfile").write_text(f"FROM {sh_image}\nCOPY keep.txt /keep.txt\nRUN cat /keep.txt\nLABEL built=1\n")
    (ctx / "keep.txt").write_text("kept\n")
    (ctx / "secret.log").write_text("nope\n")
    (ctx / ".dockerignore").write_text("*.log\n")
    token = uuid.uuid4().hex[:8]
    tag = f"berth-e2e/built-{token}:1"
    label = f"berth-cli-e2e={token}"
    rc, out, err = run_berth(daemon.host, "build", "--no-cache", "--label", label, "-t", tag, str(ctx))
    if rc != 0 and ("page not found" in err or "not implemented" in err.lower()):
        pytest.skip(f"the daemon has no /build yet: {err.strip()}")
    try:
        assert rc == 0, err
        assert "Step 1/5 : FROM" in out and "kept" in out and f"Successfully tagged {tag}" in out
        rc, dout, _ = daemon.docker("build", "--no-cache", "--label", label, "-t", tag, str(ctx))
        assert rc == 0
        assert normalise(out) == normalise(dout), f"{out}\n---\n{dout}"
        # the second build hits the cache
        rc, out, _ = run_berth(daemon.host, "build", "--label", label, "-t", tag, str(ctx))
        assert rc == 0 and "Using cache" in out
        # BuildKit's plain style: one vertex per step, cache hits, DONE with times
        rc, out, err = run_berth(daemon.host, "build", "--progress", "plain", "--label", label, "-t", tag, str(ctx))
        assert rc == 0, err
        assert all(l.startswith("#") for l in out.splitlines()), out
        assert "#2 [2/5] COPY keep.txt /keep.txt\n#2 CACHED" in out and f"naming to {tag} done" in out
        # .dockerignore kept secret.log out of the context
        (ctx / "Dockerfile").write_text(f"FROM {sh_image}\nCOPY . /ctx/\nRUN ls /ctx\n")
        rc, out, err = run_berth(daemon.host, "build", "--no-cache", "-q", "--label", label, "-t", tag, str(ctx))
        assert rc == 0 and out.strip().startswith("sha256:"), err
        rc, out, _ = daemon.run("--rm", tag, "ls", "/ctx")
        assert "keep.txt" in out and "secret.log" not in out
        # a failing RUN exits with its code, as docker build does
        (ctx / "Dockerfile").write_text(f"FROM {sh_image}\nRUN exit 7\n")
        rc, out, err = run_berth(daemon.host, "build", str(ctx))
        assert rc == 7 and "returned a non-zero code: 7" in err
    finally:
        daemon.docker("rmi", "-f", tag)
        # replaced builds leave untagged images (with their intermediate parents) behind
        daemon.docker("image", "prune", "-f", "--filter", f"label={label}")
        # the classic builder leaves a failed step's container behind
        rc, out, _ = daemon.docker("ps", "-aq", "--filter", "status=exited", "--filter", f"ancestor={sh_image}")
        for cid in out.split():
            cmd = daemon.ok("inspect", "-f", "{{json .Config.Cmd}}", cid)
            if "exit 7" in cmd:
                daemon.docker("rm", cid)


def test_contexts_are_docker_compatible(daemon, containers):
    cfg = tempfile.mkdtemp(prefix="berth-e2e-ctx-")
    env = {"DOCKER_CONFIG": cfg}
    try:
        exe = str(berth_binary())
        def berth(*args):
            e = dict(os.environ, **env)
            e.pop("DOCKER_HOST", None)
            p = subprocess.run([exe, *args], capture_output=True, text=True, env=e, timeout=60)
            return p.returncode, p.stdout, p.stderr
        def docker(*args):
            e = dict(os.environ, **env)
            e.pop("DOCKER_HOST", None)
            p = subprocess.run([DOCKER_CLI, *args], capture_output=True, text=True, env=e, timeout=60)
            return p.returncode, p.stdout, p.stderr
        rc, out, err = berth("context", "create", "--description", "the daemon", "--docker", f"host={daemon.host}", "e2e")
        assert rc == 0 and out.strip() == "e2e", err
        # docker reads berth's context store and vice versa
        assert docker("context", "inspect", "-f", "{{.Endpoints.docker.Host}}", "e2e")[1].strip() == daemon.host
        assert docker("context", "create", "--docker", f"host={daemon.host}", "fromdocker")[0] == 0
        assert berth("context", "inspect", "-f", "{{.Name}} {{.Endpoints.docker.Host}}", "fromdocker")[1].strip() == f"fromdocker {daemon.host}"
        assert berth("context", "inspect", "e2e")[1] == docker("context", "inspect", "e2e")[1]
        assert berth("context", "use", "e2e")[0] == 0
        assert json.loads(Path(cfg, "config.json").read_text())["currentContext"] == "e2e"
        assert docker("context", "show")[1].strip() == "e2e"
        # the current context routes commands; --context and -H override it
        _, run_name, _ = containers
        assert run_name in berth("ps", "--format", "{{.Names}}")[1]
        assert run_name in berth("--context", "fromdocker", "ps", "--format", "{{.Names}}")[1]
        rc, _, err = berth("--context", "e2e", "-H", daemon.host, "ps")
        assert rc != 0 and "conflicting options" in err
        rc, _, err = berth("context", "rm", "e2e")
        assert rc == 1 and "in use" in err
        b = berth("context", "ls")[1].replace("unix:///run/berth/berth.sock", "DEFAULT")
        d = docker("context", "ls")[1].replace("unix:///var/run/docker.sock", "DEFAULT")
        assert normalise(b) == normalise(d), f"{b}\n---\n{d}"
        assert berth("context", "use", "default")[0] == 0
        assert berth("context", "rm", "e2e", "fromdocker")[1].split() == ["e2e", "fromdocker"]
    finally:
        shutil.rmtree(cfg, ignore_errors=True)


def test_no_daemon_errors_say_what_to_do(tmp_path):
    sock = tmp_path / "nothing.sock"
    rc, _, err = run_berth(f"unix://{sock}", "ps")
    assert rc == 1
    assert f"Cannot connect to the Berth daemon at unix://{sock}" in err
    assert "Start it with: sudo berthd --host" in err
    rc, _, err = run_berth(f"unix://{sock}", "run", "x")
    assert rc == 125 and err.startswith("berth: Cannot connect")


@pytest.mark.skipif(os.geteuid() != 0, reason="daemon on demand is for root")
def test_daemon_on_demand(daemon, tmp_path):
    if daemon.target != "berth":
        pytest.skip("starts berthd; nothing to compare on the reference")
    root = Path(tempfile.mkdtemp(prefix="berth-e2e-ondemand-"))
    sock = root / "b.sock"
    env = {"BERTH_DAEMON_ARGS": f"--data-root {root}/data --exec-root {root}/exec"}
    pids: list[str] = []
    try:
        rc, out, err = run_berth(f"unix://{sock}", "--start-daemon", "version", "--format", "{{.Server.Os}}", env=env)
        m = re.search(r"\(pid (\d+),", err)
        if m:
            pids.append(m.group(1))
        assert rc == 0 and out.strip() == "linux", err
        assert "started" in err and "berthd" in err and "--start-daemon" in err
        # the next call finds it running and says nothing
        rc, out, err = run_berth(f"unix://{sock}", "ps", "-q", env={**env, "BERTH_START_DAEMON": "1"})
        assert rc == 0 and err == "", err
    finally:
        for pid in pids:
            subprocess.run(["kill", "-TERM", pid])
        for pid in pids:
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)
        shutil.rmtree(root, ignore_errors=True)


def test_completions_and_man_pages(tmp_path):
    exe = str(berth_binary())
    for sh in ("bash", "zsh", "fish"):
        p = subprocess.run([exe, "gen", "completions", sh], capture_output=True, text=True)
        assert p.returncode == 0 and "__complete" in p.stdout
        if sh == "bash":
            f = tmp_path / "berth.bash"
            f.write_text(p.stdout)
            assert subprocess.run(["bash", "-n", str(f)]).returncode == 0
    p = subprocess.run([exe, "gen", "man", str(tmp_path / "man")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    pages = {f.name for f in (tmp_path / "man").iterdir()}
    for page in ("berth.1", "berth-run.1", "berth-container-ls.1", "berth-network-create.1", "berth-context-use.1"):
        assert page in pages
        assert (tmp_path / "man" / page).stat().st_size > 200
    assert "__complete" not in " ".join(pages)


def test_dynamic_completion_lists_daemon_names(daemon, containers):
    _, run_name, _ = containers
    rc, out, _ = run_berth(daemon.host, "__complete", "stop", "cli-run")
    assert rc == 0 and run_name in out.split()
    rc, out, _ = run_berth(daemon.host, "__complete", "container", "rm", "")
    assert run_name in out.split()
    rc, out, _ = run_berth(daemon.host, "__complete", "rmi", "berth-e2e/busybox:s")
    assert "berth-e2e/busybox:sh" in out.split()


# --- registries: push, pull, login (Debian's docker-registry on loopback) ---------------

REGISTRY_BIN = "/usr/bin/docker-registry"


@pytest.mark.skipif(not os.path.exists(REGISTRY_BIN), reason="docker-registry is not installed")
def test_push_pull_plain_output(daemon, rootfs_tar, workdir):
    from test_registry import Registry, daemon_netns, unique_rootfs

    reg = Registry()
    reg.serve(daemon_netns(daemon))
    ref = f"{reg.host}/cli/bb:1"
    try:
        token = uuid.uuid4().hex
        daemon.ok("import", str(unique_rootfs(rootfs_tar, workdir / f"cli-{token}.tar", token)), ref)
        rc, out, err = run_berth(daemon.host, "push", ref)
        assert rc == 0, err
        lines = out.splitlines()
        assert lines[0] == f"The push refers to repository [{reg.host}/cli/bb]"
        assert any(l.endswith(": Pushed") for l in lines), out
        assert lines[-1].startswith("1: digest: sha256:") and "size:" in lines[-1]
        assert "Pushing" not in out  # progress updates are not printed without a terminal
        daemon.ok("rmi", ref)
        rc, out, err = run_berth(daemon.host, "pull", ref)
        assert rc == 0, err
        first = out.splitlines()[0]
        assert first.startswith("1: Pulling from ") and first.endswith("cli/bb"), out
        assert "Pull complete" in out and "Downloading" not in out
        assert out.splitlines()[-1] == ref
        # docker's own pull of the same (present) image: same closing lines
        rc, dout, _ = daemon.docker("pull", ref)
        bout = run_berth(daemon.host, "pull", ref)[1]
        assert normalise(bout) == normalise(dout), f"{bout}\n---\n{dout}"
        rc, out, err = run_berth(daemon.host, "pull", f"{reg.host}/cli/nosuch:1")
        assert rc == 1 and "not found" in err
        # run of an absent image pulls it first, progress on stderr, as docker run does
        daemon.ok("rmi", ref)
        rc, out, err = run_berth(daemon.host, "run", "--rm", *daemon.net_args, ref, "cat", "/unique")
        assert (rc, out.strip()) == (0, token), err
        assert f"Unable to find image '{ref}' locally" in err and "Pull complete" in err
    finally:
        daemon.docker("rmi", "-f", ref)
        reg.stop()


@pytest.mark.skipif(not os.path.exists(REGISTRY_BIN), reason="docker-registry is not installed")
def test_login_is_shared_with_docker(daemon, rootfs_tar, workdir):
    from test_registry import Registry, bcrypt_hash, daemon_netns, unique_rootfs

    h = bcrypt_hash("s3cret")
    if h is None:
        pytest.skip("no bcrypt implementation for htpasswd")
    pw = workdir / f"htpasswd-{uuid.uuid4().hex[:6]}"
    pw.write_text(f"tester:{h}\n")
    reg = Registry(htpasswd=pw)
    reg.serve(daemon_netns(daemon))
    cfg = tempfile.mkdtemp(prefix="berth-e2e-login-")
    env = {"DOCKER_CONFIG": cfg}
    ref = f"{reg.host}/auth/bb:1"
    try:
        rc, out, err = run_berth(daemon.host, "login", "-u", "tester", "--password-stdin", reg.host, input="wrong\n", env=env)
        assert rc != 0 and "401" in err
        rc, out, err = run_berth(daemon.host, "login", "-u", "tester", "--password-stdin", reg.host, input="s3cret\n", env=env)
        assert rc == 0 and "Login Succeeded" in out, err
        auths = json.loads(Path(cfg, "config.json").read_text())["auths"]
        assert reg.host in auths and "auth" in auths[reg.host]
        token = uuid.uuid4().hex
        daemon.ok("import", str(unique_rootfs(rootfs_tar, workdir / f"la-{token}.tar", token)), ref)
        assert run_berth(daemon.host, "push", ref, env=env)[0] == 0
        daemon.ok("rmi", ref)
        # the docker CLI uses the credentials berth stored
        p = subprocess.run([DOCKER_CLI, "-H", daemon.host, "pull", ref], capture_output=True, text=True,
                           env={**os.environ, "DOCKER_CONFIG": cfg}, timeout=120)
        assert p.returncode == 0, p.stderr
        daemon.ok("rmi", ref)
        rc, out, _ = run_berth(daemon.host, "logout", reg.host, env=env)
        assert rc == 0 and out.strip() == f"Removing login credentials for {reg.host}"
        rc, _, err = run_berth(daemon.host, "pull", ref, env=env)
        assert rc != 0
    finally:
        daemon.docker("rmi", "-f", ref)
        reg.stop()
        shutil.rmtree(cfg, ignore_errors=True)


# --- tcp:// with mutual TLS (berthd's own listener) ------------------------------------


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_tcp_tls_host_env_and_context(daemon, tmp_path):
    if daemon.target != "berth":
        pytest.skip("starts a berthd with a TLS listener")
    from helpers import BerthDaemon
    from test_access import free_port, openssl

    pki = tmp_path / "pki"
    pki.mkdir()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=berth-cli-ca", cwd=pki)
    (pki / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    (pki / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, subj, ext in [("server", "/CN=127.0.0.1", "server.ext"), ("cert", "/CN=cli", "client.ext")]:
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-key.pem", "-out", f"{name}.csr",
                "-subj", subj, cwd=pki)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", ext, cwd=pki)
    (pki / "key.pem").write_bytes((pki / "cert-key.pem").read_bytes())
    port = free_port()
    d = BerthDaemon(tmp_path / "tlsd")
    d.extra_args = ["--host", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", str(pki / "ca.pem"),
                    "--tlscert", str(pki / "server.pem"), "--tlskey", str(pki / "server-key.pem")]
    d.start()
    host = f"tcp://127.0.0.1:{port}"
    cfg = tempfile.mkdtemp(prefix="berth-e2e-tls-")
    try:
        # flags
        rc, out, err = run_berth(host, "--tlsverify", "--tlscacert", str(pki / "ca.pem"), "--tlscert",
                                 str(pki / "cert.pem"), "--tlskey", str(pki / "key.pem"),
                                 "version", "--format", "{{.Server.Os}}")
        assert (rc, out.strip()) == (0, "linux"), err
        # DOCKER_TLS_VERIFY + DOCKER_CERT_PATH, as the docker CLI reads them
        env = {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(pki), "DOCKER_CONFIG": cfg}
        rc, out, err = run_berth(host, "ps", "-q", env=env)
        assert rc == 0, err
        # without a client certificate berthd refuses the handshake
        rc, out, err = run_berth(host, "--tlsverify", "--tlscacert", str(pki / "ca.pem"), "ps",
                                 env={"DOCKER_CERT_PATH": str(tmp_path)})
        assert rc == 1 and "Cannot connect to the Berth daemon at tcp://127.0.0.1" in err
        # a context carrying the TLS material (docker's contexts/tls layout)
        exe = str(berth_binary())
        e = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        e["DOCKER_CONFIG"] = cfg
        p = subprocess.run([exe, "context", "create", "tlsctx", "--docker",
                            f"host={host},ca={pki / 'ca.pem'},cert={pki / 'cert.pem'},key={pki / 'key.pem'}"],
                           capture_output=True, text=True, env=e)
        assert p.returncode == 0, p.stderr
        p = subprocess.run([exe, "--context", "tlsctx", "version", "--format", "{{.Server.Os}}"],
                           capture_output=True, text=True, env=e)
        assert (p.returncode, p.stdout.strip()) == (0, "linux"), p.stderr
        # and the docker CLI uses that same context
        p = subprocess.run([DOCKER_CLI, "--context", "tlsctx", "version", "--format", "{{.Server.Os}}"],
                           capture_output=True, text=True, env=e)
        assert (p.returncode, p.stdout.strip()) == (0, "linux"), p.stderr
    finally:
        d.stop()
        shutil.rmtree(cfg, ignore_errors=True)


def test_prune_by_label_and_streaming_stats(daemon, sh_image, names):
    tag = uuid.uuid4().hex[:8]
    n1, n2 = names("prune1"), names("prune2")
    for n in (n1, n2):
        daemon.run("--name", n, "-l", f"prunetest={tag}", sh_image, "true")
    rc, out, err = run_berth(daemon.host, "container", "prune", "-f", "--filter", f"label=prunetest={tag}")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "Deleted Containers:" and len(lines[1:3]) == 2 and lines[-1].startswith("Total reclaimed space:")
    assert daemon.docker("inspect", n1)[0] != 0
    # empty the build cache first: the comparison is of the output for the same state
    daemon.docker("builder", "prune", "-f")
    same(daemon, "builder", "prune", "-f", norm=False)
    # `stats` without --no-stream keeps printing a table until stopped
    s = names("stats")
    daemon.ok(*daemon.run_args("-d", "--name", s, sh_image, "sleep", "300"))
    exe = str(berth_binary())
    p = subprocess.Popen([exe, "-H", daemon.host, "stats", "--format", "{{.Name}} {{.PIDs}}", s],
                         stdout=subprocess.PIPE, text=True)
    try:
        first = p.stdout.readline().strip()
        second = p.stdout.readline().strip()
    finally:
        p.terminate()
        p.wait(10)
    assert first.startswith(f"{s} ") and second.startswith(f"{s} "), (first, second)


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_completion_asks_the_daemon(daemon, containers, tmp_path):
    _, run_name, _ = containers
    exe = berth_binary()
    script = tmp_path / "berth.fish"
    script.write_text(subprocess.run([str(exe), "gen", "completions", "fish"], capture_output=True, text=True).stdout)
    env = {**os.environ, "PATH": f"{exe.parent}:{os.environ['PATH']}", "DOCKER_HOST": daemon.host}
    p = subprocess.run(["fish", "-c", f"source {script}; complete -C 'berth stop cli-run'"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert run_name in p.stdout.split(), p.stdout + p.stderr


def test_signals_are_proxied_to_the_container(daemon, sh_image, names):
    import signal

    n = names("sigproxy")
    exe = str(berth_binary())
    script = 'trap "echo got-term; exit 7" TERM; echo ready; while true; do sleep 0.1; done'
    p = subprocess.Popen([exe, "-H", daemon.host, "run", "--rm", *daemon.net_args, "--name", n, sh_image, "sh", "-c", script],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert (p.returncode, out.strip()) == (7, "got-term")
