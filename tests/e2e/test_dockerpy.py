"""The core flows through docker-py (the Python SDK), not the Go CLI."""

import uuid

import pytest

docker = pytest.importorskip("docker")


@pytest.fixture(scope="module")
def client(daemon):
    c = daemon.client()
    yield c
    c.close()


@pytest.fixture
def net_kw(daemon):
    return {"network_mode": "none"} if daemon.target == "ref" else {}


@pytest.fixture
def pyname(client):
    made = []

    def _n(prefix="py"):
        n = f"e2e-{prefix}-{uuid.uuid4().hex[:8]}"
        made.append(n)
        return n

    yield _n
    for n in made:
        try:
            client.containers.get(n).remove(force=True)
        except docker.errors.NotFound:
            pass


def test_ping_version_info(client, daemon):
    assert client.ping() is True
    v = client.version()
    assert v["Os"] == "linux" and v["ApiVersion"].startswith("1.")
    info = client.info()
    assert info["DockerRootDir"] == str(daemon.data_root)


def test_run_remove_returns_output(client, image, net_kw):
    out = client.containers.run(image, ["echo", "hello"], remove=True, **net_kw)
    assert out == b"hello\n"


def test_run_stdout_only_by_default(client, image, net_kw):
    out = client.containers.run(image, ["sh", "-c", "echo o; echo e >&2"], remove=True, **net_kw)
    assert out == b"o\n"
    out = client.containers.run(image, ["sh", "-c", "echo e >&2"], remove=True,
                                stdout=False, stderr=True, **net_kw)
    assert out == b"e\n"


def test_run_nonzero_raises_container_error(client, image, net_kw):
    with pytest.raises(docker.errors.ContainerError) as ei:
        client.containers.run(image, ["sh", "-c", "echo bad >&2; exit 3"], remove=True, **net_kw)
    assert ei.value.exit_status == 3
    assert b"bad" in ei.value.stderr


def test_detach_logs_wait(client, image, net_kw, pyname):
    c = client.containers.run(image, ["sh", "-c", "echo out; echo err >&2; exit 4"],
                              detach=True, name=pyname(), **net_kw)
    assert len(c.id) == 64
    assert c.wait(timeout=60) == {"Error": None, "StatusCode": 4}
    assert c.logs(stdout=True, stderr=False) == b"out\n"
    assert c.logs(stdout=False, stderr=True) == b"err\n"
    c.reload()
    assert c.status == "exited"
    assert c.attrs["State"]["ExitCode"] == 4


def test_env_workdir_user_hostname(client, image, net_kw):
    out = client.containers.run(
        image, ["sh", "-c", 'echo "$FOO $(pwd) $(id -u) $(hostname)"'],
        environment={"FOO": "bar"}, working_dir="/tmp", user="1000", hostname="pyhost",
        remove=True, **net_kw)
    assert out == b"bar /tmp 1000 pyhost\n"


def test_entrypoint(client, make_image, net_kw):
    img = make_image('ENTRYPOINT ["echo", "ep"]', 'CMD ["cmd"]')
    assert client.containers.run(img, remove=True, **net_kw) == b"ep cmd\n"
    assert client.containers.run(img, ["x"], remove=True, **net_kw) == b"ep x\n"
    assert client.containers.run(img, ["y"], entrypoint=["echo"], remove=True, **net_kw) == b"y\n"


def test_list_stop_remove(client, image, net_kw, pyname):
    n = pyname()
    c = client.containers.run(image, ["sleep", "100"], detach=True, name=n, **net_kw)
    assert n in [x.name for x in client.containers.list()]
    c.stop(timeout=1)
    c.reload()
    assert c.status == "exited" and c.attrs["State"]["ExitCode"] == 137
    assert n not in [x.name for x in client.containers.list()]
    assert n in [x.name for x in client.containers.list(all=True)]
    c.remove()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(n)


def test_images_list_and_get(client, image, daemon):
    tags = [t for img in client.images.list() for t in img.tags]
    assert image in tags
    img = client.images.get(image)
    assert img.id == daemon.inspect(image, "image")["Id"]
    assert image in [t for i in client.images.list(name=image.split(":")[0]) for t in i.tags]


def test_unknown_image_is_404(client):
    with pytest.raises(docker.errors.ImageNotFound) as ei:
        client.images.get("nosuchimage-e2e:v1")
    assert ei.value.status_code == 404
    with pytest.raises(docker.errors.ImageNotFound) as ei:
        client.containers.create("nosuchimage-e2e:v1", ["true"])
    assert ei.value.status_code == 404


def test_unknown_container_is_404(client):
    with pytest.raises(docker.errors.NotFound) as ei:
        client.containers.get("nosuchcontainer-e2e")
    assert ei.value.status_code == 404
    assert "No such container: nosuchcontainer-e2e" in str(ei.value)


def test_name_conflict_is_409(client, image, net_kw, pyname):
    n = pyname()
    client.containers.create(image, ["true"], name=n, **net_kw)
    with pytest.raises(docker.errors.APIError) as ei:
        client.containers.create(image, ["true"], name=n, **net_kw)
    assert ei.value.status_code == 409
    assert "is already in use" in str(ei.value)


def test_remove_running_is_409(client, image, net_kw, pyname):
    c = client.containers.run(image, ["sleep", "100"], detach=True, name=pyname(), **net_kw)
    with pytest.raises(docker.errors.APIError) as ei:
        c.remove()
    assert ei.value.status_code == 409
    c.remove(force=True)


def test_start_failure_missing_executable(client, image, net_kw, pyname):
    c = client.containers.create(image, ["/nonexistent"], name=pyname(), **net_kw)
    with pytest.raises(docker.errors.APIError) as ei:
        c.start()
    assert ei.value.status_code in (400, 500)
    assert "/nonexistent" in str(ei.value)
    c.reload()
    assert c.attrs["State"]["ExitCode"] == 127
    assert c.status in ("created", "exited")
