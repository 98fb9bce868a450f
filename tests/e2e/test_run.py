"""docker run: output, exit codes, config application, the container's view."""

import json
import re
import time

import pytest


# --- output and exit codes ---------------------------------------------------

def test_run_echo_hello(daemon, image):
    rc, out, err = daemon.run("--rm", image, "echo", "hello")
    assert (rc, out) == (0, "hello\n"), err


def test_exit_code_propagated(daemon, image):
    rc, out, err = daemon.run("--rm", image, "sh", "-c", "exit 3")
    assert rc == 3, (out, err)


@pytest.mark.parametrize("code", [0, 1, 42, 255])
def test_exit_codes(daemon, image, code):
    rc, _, _ = daemon.run("--rm", image, "sh", "-c", f"exit {code}")
    assert rc == code


def test_pid1_ignores_signals_without_handler(daemon, image):
    """The kernel protects a namespace's PID 1 from signals it has no handler for."""
    rc, out, _ = daemon.run("--rm", image, "sh", "-c", "kill -KILL $$; echo survived")
    assert (rc, out) == (0, "survived\n")


def test_stdout_and_stderr_kept_apart(daemon, image):
    rc, out, err = daemon.run("--rm", image, "sh", "-c", "echo to-out; echo to-err >&2; echo more-out")
    assert rc == 0
    assert out == "to-out\nmore-out\n"
    assert err == "to-err\n"


def test_output_is_streamed(daemon, image):
    """A line printed before a long sleep reaches the client before the container exits."""
    import subprocess
    from helpers import DOCKER_CLI, cli_env

    p = subprocess.Popen(
        [DOCKER_CLI, *daemon.run_args("--rm", image, "sh", "-c", "echo early; sleep 3; echo late")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        env=cli_env(daemon.host),
    )
    t0 = time.monotonic()
    first = p.stdout.readline()
    t_first = time.monotonic() - t0
    rest, err = p.communicate(timeout=60)
    assert first == b"early\n", err
    assert rest == b"late\n"
    assert t_first < 2.5, f"first line took {t_first:.2f}s: output not streamed"
    assert p.returncode == 0


def test_large_output(daemon, image):
    rc, out, err = daemon.run("--rm", image, "sh", "-c", "seq 1 20000")
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 20000 and lines[0] == "1" and lines[-1] == "20000"


def test_stdin_piped(daemon, image):
    rc, out, err = daemon.run("--rm", "-i", image, "sh", "-c", "tr a-z A-Z", input="hello stdin\n")
    assert (rc, out) == (0, "HELLO STDIN\n"), err


def test_missing_executable_127(daemon, image):
    rc, out, err = daemon.run("--rm", image, "/nonexistent")
    assert rc == 127, (out, err)
    assert "/nonexistent" in err
    assert "no such file or directory" in err.lower()


def test_missing_executable_in_path_127(daemon, image):
    rc, out, err = daemon.run("--rm", image, "nosuchcmd-e2e")
    assert rc == 127, (out, err)
    assert "nosuchcmd-e2e" in err
    assert "executable file not found in $PATH" in err


def test_not_executable_126(daemon, image):
    rc, out, err = daemon.run("--rm", image, "/etc/passwd")
    assert rc == 126, (out, err)
    assert "permission denied" in err.lower()


def test_no_command_specified(daemon, image):
    rc, out, err = daemon.run("--rm", image)
    assert rc == 125
    assert "No command specified" in err


# --- image config and run flags -------------------------------------------------

def test_image_cmd_used_without_args(daemon, make_image):
    img = make_image('CMD ["echo", "from-cmd"]')
    assert daemon.run("--rm", img)[:2] == (0, "from-cmd\n")
    # arguments replace CMD
    assert daemon.run("--rm", img, "echo", "args")[:2] == (0, "args\n")


def test_image_entrypoint_and_cmd(daemon, make_image):
    img = make_image('ENTRYPOINT ["echo", "ep"]', 'CMD ["cmd"]')
    assert daemon.run("--rm", img)[:2] == (0, "ep cmd\n")
    assert daemon.run("--rm", img, "x", "y")[:2] == (0, "ep x y\n")


def test_entrypoint_flag_clears_image_cmd(daemon, make_image):
    img = make_image('ENTRYPOINT ["echo", "ep"]', 'CMD ["cmd"]')
    # --entrypoint replaces the image entrypoint and drops the image CMD
    assert daemon.run("--rm", "--entrypoint", "echo", img)[:2] == (0, "\n")
    assert daemon.run("--rm", "--entrypoint", "echo", img, "a", "b")[:2] == (0, "a b\n")


def test_empty_entrypoint_flag_resets(daemon, make_image):
    img = make_image('ENTRYPOINT ["echo", "ep"]', 'CMD ["cmd"]')
    assert daemon.run("--rm", "--entrypoint", "", img, "echo", "reset")[:2] == (0, "reset\n")


def test_entrypoint_flag_on_plain_image(daemon, image):
    rc, out, err = daemon.run("--rm", "--entrypoint", "/bin/sh", image, "-c", "echo via-ep")
    assert (rc, out) == (0, "via-ep\n"), err


def test_shell_form_entrypoint_ignores_cmd_and_args(daemon, make_image):
    img = make_image("ENTRYPOINT echo shellform", 'CMD ["ignored"]')
    assert daemon.run("--rm", img)[:2] == (0, "shellform\n")
    assert daemon.run("--rm", img, "extra")[:2] == (0, "shellform\n")


def test_shell_form_cmd_expands_env(daemon, make_image):
    img = make_image("CMD echo home=$HOME")
    assert daemon.run("--rm", img)[:2] == (0, "home=/root\n")


def env_of(daemon, *args):
    rc, out, err = daemon.run("--rm", *args)
    assert rc == 0, err
    return dict(l.split("=", 1) for l in out.splitlines() if "=" in l)


def test_default_env(daemon, image):
    env = env_of(daemon, image, "env")
    assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert env["HOME"] == "/root"
    assert re.fullmatch(r"[0-9a-f]{12}", env["HOSTNAME"])
    assert set(env) == {"PATH", "HOME", "HOSTNAME"}, env


def test_env_flag_and_image_env(daemon, make_image):
    img = make_image("ENV A=1 B=2", "ENV PATH=/bin:/custom")
    env = env_of(daemon, "-e", "A=9", "-e", "C=3", img, "env")
    assert env["A"] == "9"  # -e overrides image ENV
    assert env["B"] == "2"
    assert env["C"] == "3"
    assert env["PATH"] == "/bin:/custom"  # image PATH replaces the default


def test_env_flag_from_host_env_and_empty(daemon, image):
    import os

    os.environ["BERTH_E2E_PASSTHRU"] = "host-value"
    try:
        env = env_of(daemon, "-e", "BERTH_E2E_PASSTHRU", "-e", "EMPTY=", image, "env")
    finally:
        del os.environ["BERTH_E2E_PASSTHRU"]
    assert env["BERTH_E2E_PASSTHRU"] == "host-value"
    assert env["EMPTY"] == ""


def test_home_follows_user(daemon, image):
    assert env_of(daemon, "-u", "app", image, "env")["HOME"] == "/home/app"
    assert env_of(daemon, "-u", "app", "-e", "HOME=/x", image, "env")["HOME"] == "/x"


def test_workdir_flag(daemon, image):
    assert daemon.run("--rm", "-w", "/tmp", image, "pwd")[:2] == (0, "/tmp\n")


def test_workdir_created_when_missing(daemon, image):
    assert daemon.run("--rm", "-w", "/new/dir", image, "pwd")[:2] == (0, "/new/dir\n")


def test_image_workdir_and_override(daemon, make_image):
    img = make_image("WORKDIR /srv")
    assert daemon.run("--rm", img, "pwd")[:2] == (0, "/srv\n")
    assert daemon.run("--rm", "-w", "/root", img, "pwd")[:2] == (0, "/root\n")


def test_default_workdir_is_root(daemon, image):
    assert daemon.run("--rm", image, "pwd")[:2] == (0, "/\n")


@pytest.mark.parametrize(
    "user,want",
    [
        ("0", "uid=0(root) gid=0(root) groups=0(root)"),
        ("1000", "uid=1000(app) gid=1000(app) groups=1000(app)"),
        ("app", "uid=1000(app) gid=1000(app) groups=1000(app)"),
        ("1000:0", "uid=1000(app) gid=0(root) groups=0(root)"),
        ("nobody", "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)"),
        ("4242", "uid=4242 gid=0(root) groups=0(root)"),
        ("4242:4343", "uid=4242 gid=4343 groups=4343"),
    ],
)
def test_user_flag(daemon, image, user, want):
    rc, out, err = daemon.run("--rm", "-u", user, image, "id")
    assert (rc, out.strip()) == (0, want), err


def test_default_user_is_root(daemon, image):
    assert daemon.run("--rm", image, "id", "-u")[:2] == (0, "0\n")


def test_image_user_and_override(daemon, make_image):
    img = make_image("USER app")
    assert daemon.run("--rm", img, "id", "-u")[:2] == (0, "1000\n")
    assert daemon.run("--rm", "-u", "0", img, "id", "-u")[:2] == (0, "0\n")


def test_unknown_user_fails(daemon, image):
    rc, out, err = daemon.run("--rm", "-u", "nosuchuser", image, "id")
    assert rc in (125, 126), (rc, err)
    assert "unable to find user nosuchuser" in err, err


def test_all_image_settings_together(daemon, make_image):
    img = make_image('ENTRYPOINT ["sh", "-c"]', 'CMD ["echo $A $(id -u) $(pwd)"]',
                     "ENV A=fromimage", "WORKDIR /srv", "USER app")
    assert daemon.run("--rm", img)[:2] == (0, "fromimage 1000 /srv\n")
    rc, out, _ = daemon.run("--rm", "-e", "A=flag", "-u", "0", "-w", "/tmp", img)
    assert (rc, out) == (0, "flag 0 /tmp\n")


# --- inside the container -------------------------------------------------------

def test_pid1_is_the_command(daemon, image):
    rc, out, err = daemon.run("--rm", image, "sh", "-c", "echo $$; cat /proc/1/cmdline | tr '\\0' ' '")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "1"
    assert lines[1].startswith("sh -c echo $$;")


def test_pid_namespace_only_container_processes(daemon, image):
    rc, out, err = daemon.run("--rm", image, "sh", "-c", "ls -d /proc/[0-9]* | wc -l")
    # sh (1), ls and wc at most
    assert rc == 0 and int(out) <= 3, (out, err)


def test_hostname_is_short_id(daemon, image, names):
    n = names("host")
    cid = daemon.ok(*daemon.run_args("-d", "--name", n, image, "sh", "-c", "hostname; cat /etc/hostname")).strip()
    daemon.ok("wait", n)
    out = daemon.ok("logs", n)
    assert out == f"{cid[:12]}\n{cid[:12]}\n"


def test_hostname_flag(daemon, image):
    rc, out, err = daemon.run("--rm", "-h", "myhost", image, "sh", "-c", "hostname; cat /etc/hostname")
    assert (rc, out) == (0, "myhost\nmyhost\n"), err


def test_hosts_file_has_hostname(daemon, image):
    rc, out, err = daemon.run("--rm", "-h", "myhost", image, "cat", "/etc/hosts")
    assert rc == 0, err
    assert re.search(r"^127\.0\.0\.1\s+localhost", out, re.M), out


def test_only_loopback_interface(daemon, image):
    rc, out, err = daemon.run("--rm", "--network", "none", image, "ls", "/sys/class/net")
    assert (rc, out.split()) == (0, ["lo"]), err


def test_proc_mounted(daemon, image):
    rc, out, err = daemon.run("--rm", image, "sh", "-c", "grep ' /proc ' /proc/self/mountinfo; cat /proc/self/stat | cut -d' ' -f1")
    assert rc == 0, err
    assert " - proc " in out.splitlines()[0]


def test_sys_read_only(daemon, image):
    rc, out, err = daemon.run("--rm", image, "sh", "-c", "grep ' /sys ' /proc/self/mountinfo; touch /sys/x")
    assert rc == 1
    line = out.splitlines()[0]
    assert " - sysfs " in line and line.split()[5].split(",")[0] == "ro", line
    assert "Read-only file system" in err


def test_dev_contents(daemon, image):
    rc, out, err = daemon.run("--rm", image, "ls", "/dev")
    assert rc == 0, err
    entries = set(out.split())
    want = {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue"}
    assert want <= entries, f"missing {want - entries}"


def test_dev_devices_work(daemon, image):
    script = (
        "echo x > /dev/null && echo null-ok; "
        "head -c 4 /dev/zero | od -An -tx1; "
        "head -c 16 /dev/urandom | wc -c; "
        "echo x > /dev/full || echo full-fails; "
        "test -c /dev/null && test -c /dev/tty && test -d /dev/pts && echo chars-ok"
    )
    rc, out, err = daemon.run("--rm", image, "sh", "-c", script)
    assert out.split("\n")[0] == "null-ok", (out, err)
    assert out.split()[1:5] == ["00", "00", "00", "00"]
    assert "16" in out.split()
    assert "full-fails" in out and "chars-ok" in out
    assert "No space left on device" in err


def test_dev_shm_and_mqueue_mounted(daemon, image):
    rc, out, err = daemon.run("--rm", image, "cat", "/proc/self/mountinfo")
    assert rc == 0, err
    points = {l.split()[4]: l for l in out.splitlines()}
    assert "/dev" in points and "/dev/pts" in points and "/dev/shm" in points and "/dev/mqueue" in points
    assert " - devpts " in points["/dev/pts"]
    assert " - mqueue " in points["/dev/mqueue"]


def test_etc_files_exist(daemon, image):
    rc, out, err = daemon.run("--rm", image, "sh", "-c", "for f in /etc/hosts /etc/hostname /etc/resolv.conf; do test -f $f && echo $f; done")
    assert out.split() == ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"], err


def test_rootfs_is_writable_and_private(daemon, image):
    rc, out, err = daemon.run("--rm", image, "sh", "-c", "echo data > /newfile && cat /newfile")
    assert (rc, out) == (0, "data\n"), err
    rc, out, err = daemon.run("--rm", image, "ls", "/newfile")
    assert rc == 1, "a write leaked from one container into the image"


def test_tmp_permissions(daemon, image):
    rc, out, err = daemon.run("--rm", image, "stat", "-c", "%a", "/tmp")
    assert (rc, out) == (0, "1777\n"), err
