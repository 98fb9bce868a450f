"""docker-compose 1.29 (Debian's, on docker-py) against the daemon: a project network, service
names in DNS, published ports, `ps`, `exec`, `logs`, `down` removing containers and network.
The same test runs against the reference dockerd."""

import shutil
import subprocess
import textwrap

import pytest

from helpers import cli_env, wait_for

pytestmark = pytest.mark.skipif(shutil.which("docker-compose") is None,
                                reason="docker-compose not installed")


def compose(daemon, d, *args, timeout=120):
    env = cli_env(daemon.host)
    env["COMPOSE_INTERACTIVE_NO_CLI"] = "1"
    p = subprocess.run(["docker-compose", "-p", "berthe2e", *args], cwd=d, env=env,
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def test_compose_project(daemon, image, tmp_path):
    (tmp_path / "docker-compose.yml").write_text(textwrap.dedent(f"""\
        version: "3.7"
        services:
          web:
            image: {image}
            command: ["sh", "-c", "echo web-up; while true; do echo hello-from-web | nc -l -p 80; done"]
            ports: ["18681:80"]
          client:
            image: {image}
            command: ["sleep", "300"]
            depends_on: [web]
        """))
    try:
        rc, out, err = compose(daemon, tmp_path, "up", "-d")
        assert rc == 0, err
        nets = daemon.ok("network", "ls", "--format", "{{.Name}}").split()
        assert "berthe2e_default" in nets, nets
        rc, out, err = compose(daemon, tmp_path, "ps")
        assert rc == 0 and "berthe2e_web_1" in out and "Up" in out, (out, err)
        assert "0.0.0.0:18681->80/tcp" in out, out
        # service name resolution on the project network
        script = "for i in 1 2 3 4 5 6 7 8; do nc -w 2 web 80 </dev/null && break; sleep 0.3; done"
        rc, out, err = compose(daemon, tmp_path, "exec", "-T", "client", "sh", "-c", script)
        assert rc == 0 and "hello-from-web" in out, (out, err)
        wait_for(lambda: "web-up" in compose(daemon, tmp_path, "logs", "web")[1], what="logs")
        info = daemon.inspect("berthe2e_web_1", "container")
        aliases = info["NetworkSettings"]["Networks"]["berthe2e_default"]["Aliases"]
        assert "web" in aliases, aliases
    finally:
        rc, out, err = compose(daemon, tmp_path, "down")
    assert rc == 0, err
    assert "berthe2e_default" not in daemon.ok("network", "ls", "--format", "{{.Name}}").split()
    assert "berthe2e" not in daemon.ok("ps", "-a", "--format", "{{.Names}}")
