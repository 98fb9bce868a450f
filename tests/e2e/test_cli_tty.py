"""`berth run -it` with a real terminal, driven through tmux: type a command and see its
output, resize the window (the container's tty follows through SIGWINCH -> resize), detach
with ctrl-p ctrl-q (the container keeps running) and `berth attach` again.

Runs against both targets: berthd, and the reference dockerd through the same berth binary
("works against dockerd too")."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid

import pytest

from berth_cli import berth_binary

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None or berth_binary() is None,
    reason="needs tmux (scripts/test.sh installs it) and a built berth binary",
)


def tmux(*args: str) -> str:
    p = subprocess.run(["tmux", *args], capture_output=True, timeout=20)
    return p.stdout.decode(errors="replace")


def screen(session: str) -> str:
    return tmux("capture-pane", "-t", session, "-p")


def wait_screen(session: str, text: str, timeout: float = 15.0) -> str:
    deadline = time.time() + timeout
    s = ""
    while time.time() < deadline:
        s = screen(session)
        if text in s:
            return s
        time.sleep(0.1)
    raise AssertionError(f"{text!r} did not appear on the terminal:\n{s}")


@pytest.fixture
def tmux_sessions():
    made: list[str] = []

    def _new(cmd: str, width: int = 100, height: int = 30) -> str:
        name = f"berth-tty-{uuid.uuid4().hex[:8]}"
        made.append(name)
        tmux("new-session", "-d", "-s", name, "-x", str(width), "-y", str(height), cmd)
        return name

    yield _new
    for s in made:
        tmux("kill-session", "-t", s)


def test_run_it_type_resize_detach_attach(daemon, sh_image, names, tmux_sessions):
    exe = berth_binary()
    name = names("tty")
    net = " ".join(daemon.net_args)
    # `; sleep` keeps the pane (and its last lines) after berth exits
    s = tmux_sessions(
        f"{exe} -H {daemon.host} run -it --pull never {net} --name {name} {sh_image} sh;"
        " echo EXITED rc=$?; sleep 60"
    )
    wait_screen(s, "/ #")
    tmux("send-keys", "-t", s, "echo hello-$((6*7))", "Enter")
    wait_screen(s, "hello-42")

    # the container's terminal has the window's size, and follows a resize
    tmux("send-keys", "-t", s, "stty size", "Enter")
    wait_screen(s, "30 100")
    tmux("resize-window", "-t", s, "-x", "120", "-y", "40")
    deadline = time.time() + 10
    while "40 120" not in screen(s):
        assert time.time() < deadline, screen(s)
        tmux("send-keys", "-t", s, "clear; stty size", "Enter")
        time.sleep(0.5)

    # ctrl-p ctrl-q detaches: berth exits 0 and the container keeps running
    tmux("send-keys", "-t", s, "C-p", "C-q")
    wait_screen(s, "EXITED rc=0")
    assert daemon.inspect(name)["State"]["Running"] is True

    # attach again: same shell, then its exit code comes back through berth
    a = tmux_sessions(f"{exe} -H {daemon.host} attach {name}; echo EXITED rc=$?; sleep 60", 90, 20)
    time.sleep(1.0)
    tmux("send-keys", "-t", a, "echo again-$((1+1))", "Enter")
    wait_screen(a, "again-2")
    tmux("send-keys", "-t", a, "exit 4", "Enter")
    wait_screen(a, "EXITED rc=4")
    st = daemon.inspect(name)["State"]
    assert st["Running"] is False and st["ExitCode"] == 4


def test_exec_it_gets_a_terminal(daemon, sh_image, names, tmux_sessions):
    exe = berth_binary()
    name = names("ttyexec")
    daemon.ok(*daemon.run_args("-d", "--name", name, sh_image, "sleep", "300"))
    s = tmux_sessions(f"{exe} -H {daemon.host} exec -it {name} sh; echo EXITED rc=$?; sleep 60", 80, 24)
    wait_screen(s, "#")
    tmux("send-keys", "-t", s, "tty; stty size", "Enter")
    wait_screen(s, "/dev/pts/")
    wait_screen(s, "24 80")
    tmux("send-keys", "-t", s, "exit 3", "Enter")
    wait_screen(s, "EXITED rc=3")


def test_docker_cli_detach_keeps_stdin(daemon, sh_image, names, tmux_sessions):
    """The docker CLI leaves detach keys to the daemon: `docker run -it`, ctrl-p ctrl-q, then
    `docker attach` finds the same shell with its stdin still open."""
    from helpers import DOCKER_CLI, _CLI_CONFIG

    name = names("dtty")
    env = f"DOCKER_CONFIG={_CLI_CONFIG} DOCKER_CLI_HINTS=false"
    s = tmux_sessions(f"{env} {DOCKER_CLI} -H {daemon.host} run -it --pull never --name {name}"
                      f" {sh_image} sh; echo EXITED rc=$?; sleep 60")
    wait_screen(s, "/ #")
    tmux("send-keys", "-t", s, "echo one-$((2*3))", "Enter")
    wait_screen(s, "one-6")
    tmux("send-keys", "-t", s, "C-p", "C-q")
    wait_screen(s, "EXITED")
    assert daemon.inspect(name)["State"]["Running"] is True
    a = tmux_sessions(f"{env} {DOCKER_CLI} -H {daemon.host} attach {name}; echo EXITED rc=$?;"
                      " sleep 60", 90, 20)
    time.sleep(1.0)
    tmux("send-keys", "-t", a, "echo two-$((3+4))", "Enter")
    wait_screen(a, "two-7")
    tmux("send-keys", "-t", a, "exit 5", "Enter")
    wait_screen(a, "EXITED rc=5")
