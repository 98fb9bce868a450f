"""docker events: the same container and image action sequences as dockerd, since/until,
filters, and the attributes the CLI formats."""

import json
import time


def events(daemon, since, *args):
    until = int(time.time()) + 1
    out = daemon.ok("events", "--since", str(since), "--until", str(until),
                    "--format", "{{json .}}", *args)
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def test_run_rm_sequence(daemon, image, names):
    n = names("ev")
    since = int(time.time())
    rc, _, _ = daemon.docker(*daemon.run_args("--rm", "--name", n, image, "sh", "-c", "exit 3"))
    assert rc == 3
    evs = [e for e in events(daemon, since, "--filter", "type=container")
           if e["Actor"]["Attributes"].get("name") == n]
    assert [e["Action"] for e in evs] == ["create", "attach", "start", "die", "destroy"]
    die = evs[3]
    assert die["Actor"]["Attributes"]["exitCode"] == "3"
    assert die["Actor"]["Attributes"]["image"] == image
    assert die["id"] == die["Actor"]["ID"] and len(die["id"]) == 64
    assert die["from"] == image and die["scope"] == "local"
    assert isinstance(die["timeNano"], int) and die["time"] == die["timeNano"] // 10**9


def test_image_tag_untag_and_filters(daemon, image, names):
    since = int(time.time())
    ref = names("evimg") + ":t1"
    daemon.ok("tag", image, ref)
    daemon.ok("rmi", ref)
    img_id = daemon.inspect(image, "image")["Id"]
    evs = events(daemon, since, "--filter", "type=image")
    acts = [(e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"]["name"]) for e in evs]
    assert ("tag", img_id, ref) in acts, acts
    # dockerd names the image id, not the removed reference, in untag events
    assert ("untag", img_id, img_id) in acts, acts
    only = events(daemon, since, "--filter", "type=image", "--filter", "event=untag")
    assert only and all(e["Action"] == "untag" for e in only)


def test_oom_kill_event(daemon, image, names):
    """A container killed by the kernel's OOM killer: `oom` then `die` (137), and
    State.OOMKilled."""
    n = names("oom")
    since = int(time.time())
    rc, _, _ = daemon.docker(*daemon.run_args(
        "--name", n, "-m", "8m", "--memory-swap", "8m", image, "sh", "-c",
        "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo survived"))
    assert rc == 137, rc
    assert daemon.inspect(n, "container")["State"]["OOMKilled"] is True
    evs = [e["Action"] for e in events(daemon, since, "--filter", "type=container",
                                       "--filter", f"container={n}")]
    assert "oom" in evs and evs.index("oom") < evs.index("die"), evs
