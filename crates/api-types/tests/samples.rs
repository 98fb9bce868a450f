//! Round-trips the captured dockerd samples in /work/shared/reference/docker-engine-api/samples:
//! deserialize into our model, serialize again, and require that every key dockerd sent is
//! still present at every nesting level (top-level key sets must be equal), and that values
//! we model survive unchanged.

use std::path::PathBuf;

use berth_api_types::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

fn sample(name: &str) -> Value {
    let p = PathBuf::from("/work/shared/reference/docker-engine-api/samples").join(name);
    let s = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&s).unwrap()
}

/// Every key of `orig` exists in `ours` (recursively); scalars and nulls must be equal.
fn assert_covers(orig: &Value, ours: &Value, path: &str, ignore: &[&str]) {
    match (orig, ours) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let p = format!("{path}.{k}");
                if ignore.contains(&p.as_str()) {
                    continue;
                }
                let vb = b
                    .get(k)
                    .unwrap_or_else(|| panic!("{p} lost in re-serialisation"));
                assert_covers(va, vb, &p, ignore);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{path} length");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_covers(x, y, &format!("{path}[{i}]"), ignore);
            }
        }
        _ => assert_eq!(orig, ours, "{path}"),
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(name: &str, ignore: &[&str]) -> T {
    let orig = sample(name);
    let t: T = serde_json::from_value(orig.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let ours = serde_json::to_value(&t).unwrap();
    assert_covers(&orig, &ours, "", ignore);
    t
}

fn top_keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn container_inspect() {
    // dockerd 20.10 still emitted KernelMemory{,TCP}: 0; since API 1.42 they are omitempty.
    let c: ContainerInspect = round_trip(
        "container-inspect-size.response.json",
        &[".HostConfig.KernelMemory", ".HostConfig.KernelMemoryTCP"],
    );
    assert_eq!(c.state.status, "running");
    assert_eq!(c.size_rw, Some(16));
    assert_eq!(c.config.entrypoint, None);
    assert_eq!(c.host_config.pids_limit, None);
    assert_eq!(c.host_config.shm_size, 67108864);
    let orig = sample("container-inspect-size.response.json");
    let ours = serde_json::to_value(&c).unwrap();
    assert_eq!(top_keys(&orig), top_keys(&ours));
    assert_eq!(top_keys(&orig["Config"]), top_keys(&ours["Config"]));
    assert_eq!(top_keys(&orig["State"]), top_keys(&ours["State"]));
    assert_eq!(
        top_keys(&orig["NetworkSettings"]),
        top_keys(&ours["NetworkSettings"])
    );
    // Without ?size the size fields disappear.
    let mut c2 = c.clone();
    c2.size_rw = None;
    c2.size_root_fs = None;
    let v = serde_json::to_value(&c2).unwrap();
    assert!(v.get("SizeRw").is_none());
}

#[test]
fn containers_list() {
    let l: Vec<ContainerSummary> = round_trip("containers-list.response.json", &[]);
    assert_eq!(l[0].ports.len(), 2);
    assert_eq!(l[0].mounts[1].name, "dpmvol");
    let orig = sample("containers-list.response.json");
    let ours = serde_json::to_value(&l).unwrap();
    assert_eq!(top_keys(&orig[0]), top_keys(&ours[0]));
    // Mount without Name/Driver keeps them omitted, like dockerd.
    assert!(ours[0]["Mounts"][0].get("Name").is_none());
}

#[test]
fn create_requests() {
    let r: ContainerCreateRequest = round_trip("container-create.request.run-many-flags.json", &[]);
    assert_eq!(
        r.config.entrypoint.as_deref(),
        Some(&["/bin/sh".to_string()][..])
    );
    assert_eq!(r.config.stop_timeout, Some(3));
    assert_eq!(r.host_config.nano_cpus, 500_000_000);
    assert_eq!(r.host_config.init, Some(true));
    assert_eq!(r.host_config.ulimits.as_ref().unwrap()[0].soft, 1024);
    assert_eq!(r.host_config.mounts.as_ref().unwrap()[1].r#type, "tmpfs");
    assert_eq!(
        r.config.healthcheck.as_ref().unwrap().interval,
        5_000_000_000
    );

    for name in [
        "container-create.request.run-d.json",
        "container-create.request.run-it.json",
    ] {
        let _: ContainerCreateRequest = round_trip(name, &[]);
    }

    // docker-compose: minimal body, IPAMConfig {} (empty object).
    // NetworkDisabled is omitempty in dockerd's Config; compose sends false.
    let r: ContainerCreateRequest = round_trip(
        "container-create.request.docker-compose.json",
        &[".NetworkDisabled"],
    );
    assert_eq!(r.host_config.network_mode, "dpcompose_backend");
    assert_eq!(
        r.host_config.binds.as_deref(),
        Some(&["dpcompose_data:/data:rw".to_string()][..])
    );
    assert_eq!(
        r.config.labels.as_ref().unwrap()["com.docker.compose.service"],
        "web"
    );
    assert!(r.config.volumes.as_ref().unwrap().contains_key("/data"));
}

#[test]
fn minimal_and_odd_create_bodies() {
    let r: ContainerCreateRequest = serde_json::from_str(r#"{"Image":"busybox"}"#).unwrap();
    assert_eq!(r.config.image, "busybox");
    assert_eq!(r.config.cmd, None);
    assert_eq!(r.config.entrypoint, None);
    // docker-py style explicit nulls, string Cmd, [""] entrypoint
    let r: ContainerCreateRequest = serde_json::from_str(
        r#"{"Image":"b","Hostname":null,"User":null,"Cmd":"echo hi","Entrypoint":[""],"Tty":null,"HostConfig":null,"StopSignal":null,"WorkingDir":null,"NetworkingConfig":null}"#,
    )
    .unwrap();
    assert_eq!(r.config.cmd, Some(vec!["echo hi".to_string()]));
    assert_eq!(r.config.entrypoint, Some(vec![String::new()]));
    assert!(!r.config.tty);
    let r: ContainerCreateRequest = serde_json::from_str(r#"{"Entrypoint":[],"HostConfig":{"CapAdd":"NET_ADMIN","Memory":null,"PortBindings":{"80/tcp":null,"81/tcp":[{"HostPort":"8081"}]}}}"#).unwrap();
    assert_eq!(r.config.entrypoint, Some(vec![]));
    assert_eq!(r.host_config.cap_add, Some(vec!["NET_ADMIN".to_string()]));
    let pb = r.host_config.port_bindings.unwrap();
    assert_eq!(pb["80/tcp"], None);
    assert_eq!(pb["81/tcp"].as_ref().unwrap()[0].host_port, "8081");
    // Entrypoint null vs [""] vs [] serialise distinctly.
    let ser = |e: Option<Vec<String>>| {
        serde_json::to_value(ContainerConfig {
            entrypoint: e,
            ..Default::default()
        })
        .unwrap()["Entrypoint"]
            .clone()
    };
    assert_eq!(ser(None), Value::Null);
    assert_eq!(ser(Some(vec![])), serde_json::json!([]));
    assert_eq!(ser(Some(vec![String::new()])), serde_json::json!([""]));
    // omitempty fields stay out
    let v = serde_json::to_value(ContainerConfig::default()).unwrap();
    for k in [
        "ExposedPorts",
        "Healthcheck",
        "ArgsEscaped",
        "MacAddress",
        "StopSignal",
        "StopTimeout",
        "Shell",
        "NetworkDisabled",
    ] {
        assert!(v.get(k).is_none(), "{k}");
    }
    for k in ["Env", "Cmd", "Entrypoint", "OnBuild", "Labels", "Volumes"] {
        assert_eq!(v[k], Value::Null, "{k}");
    }
}

#[test]
fn images() {
    let l: Vec<ImageSummary> = round_trip("images-list.response.json", &[]);
    assert_eq!(l[0].repo_digests, None);
    let orig = sample("images-list.response.json");
    assert_eq!(
        top_keys(&orig[0]),
        top_keys(&serde_json::to_value(&l).unwrap()[0])
    );

    let i: ImageInspect = round_trip("image-inspect.response.json", &[]);
    assert_eq!(i.root_fs.layers.as_ref().unwrap().len(), 2);
    assert_eq!(i.metadata.last_tag_time, "2026-11-23T18:18:09.249654228Z");
    let orig = sample("image-inspect.response.json");
    assert_eq!(
        top_keys(&orig),
        top_keys(&serde_json::to_value(&i).unwrap())
    );

    let h: Vec<HistoryItem> = round_trip("image-history.response.json", &[]);
    assert_eq!(h[1].comment, "Imported from -");

    let d: Vec<ImageDeleteResponseItem> = round_trip("image-delete.response.json", &[]);
    assert_eq!(d[0].untagged.as_deref(), Some("committed:v1"));
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(top_keys(&v[1]), ["Deleted"]);
}

#[test]
fn system() {
    let v: Version = round_trip("version.response.json", &[]);
    assert_eq!(v.api_version, "1.41");
    assert_eq!(v.components.len(), 4);
    let orig = sample("version.response.json");
    assert_eq!(
        top_keys(&orig),
        top_keys(&serde_json::to_value(&v).unwrap())
    );

    let i: Info = round_trip("info.response.json", &[]);
    assert_eq!(i.ncpu, 2);
    assert_eq!(i.cgroup_version, "1");
    assert_eq!(i.driver_status[0][0], "Backing Filesystem");
    assert!(
        i.extra.is_empty(),
        "unexpected untyped fields: {:?}",
        i.extra.keys()
    );
    let orig = sample("info.response.json");
    assert_eq!(
        top_keys(&orig),
        top_keys(&serde_json::to_value(&i).unwrap())
    );
    // Unknown fields are kept.
    let i: Info = serde_json::from_str(r#"{"ID":"x","CDISpecDirs":["/etc/cdi"]}"#).unwrap();
    assert_eq!(
        serde_json::to_value(&i).unwrap()["CDISpecDirs"][0],
        "/etc/cdi"
    );
}

#[test]
fn progress_streams() {
    let dir = PathBuf::from("/work/shared/reference/docker-engine-api/samples");
    let mut n = 0;
    for f in [
        "pull.progress.jsonl",
        "push.progress.jsonl",
        "build.progress.jsonl",
        "build-failed.progress.jsonl",
        "import.progress.jsonl",
        "load.progress.jsonl",
    ] {
        for line in std::fs::read_to_string(dir.join(f))
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            let orig: Value = serde_json::from_str(line).unwrap();
            let m: ProgressMessage =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{f}: {line}: {e}"));
            let ours = serde_json::to_value(&m).unwrap();
            assert_eq!(orig, ours, "{f}: {line}");
            n += 1;
        }
    }
    assert!(n > 10);
    let e = ProgressMessage::error("boom");
    assert_eq!(
        serde_json::to_string(&e).unwrap(),
        r#"{"errorDetail":{"message":"boom"},"error":"boom"}"#
    );
    assert_eq!(e.error_text(), Some("boom"));
}

#[test]
fn small_bodies() {
    let w = WaitResponse {
        status_code: 3,
        error: None,
    };
    assert_eq!(
        serde_json::to_string(&w).unwrap(),
        r#"{"StatusCode":3,"Error":null}"#
    );
    let w: WaitResponse =
        serde_json::from_str(r#"{"StatusCode":1,"Error":{"Message":"x"}}"#).unwrap();
    assert_eq!(w.error.unwrap().message, "x");
    assert_eq!(
        serde_json::to_string(&ErrorResponse::new("no such container")).unwrap(),
        r#"{"message":"no such container"}"#
    );
    let c = ContainerCreateResponse {
        id: "abc".into(),
        warnings: vec![],
    };
    assert_eq!(
        serde_json::to_string(&c).unwrap(),
        r#"{"Id":"abc","Warnings":[]}"#
    );
    let _: ExecConfig = round_trip("exec-create.request.json", &[]);
    let _: ContainerTopResponse = round_trip("container-top.response.json", &[]);
    let _: Vec<FilesystemChange> = round_trip("container-changes.response.json", &[]);
}
