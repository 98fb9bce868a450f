//! Helpers for driving the real `berth-shim` binary end to end.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_shim::protocol::{self, ExitStatus};

pub struct Shim {
    pub dir: tempfile::TempDir,
    pub id: String,
    pub pid: i32,
}

/// Writes a bundle into the given directory.
pub type BundleFn = Box<dyn Fn(&Path)>;

pub struct Opts<'a> {
    pub args: &'a [&'a str],
    pub tty: bool,
    pub stdin: bool,
    /// Extra args (e.g. the runtime selection); `--test-host-runtime` unless overridden.
    pub runtime_args: Vec<String>,
    /// Prepares the bundle (rootfs, custom config.json); default writes a config.json only.
    pub bundle: Option<BundleFn>,
}

impl<'a> Opts<'a> {
    pub fn new(args: &'a [&'a str]) -> Self {
        Opts {
            args,
            tty: false,
            stdin: false,
            runtime_args: vec!["--test-host-runtime".into()],
            bundle: None,
        }
    }
}

pub fn host_config(args: &[&str], tty: bool) -> String {
    serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": tty,
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"],
            "cwd": "/",
        },
        "root": {"path": "rootfs"},
    })
    .to_string()
}

impl Shim {
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run").join("shim.sock")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.path().join(format!("{}-json.log", self.id))
    }
    pub fn exit_file(&self) -> PathBuf {
        self.dir.path().join("bundle").join("exit.json")
    }
    pub fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }
    pub fn runtime_root(&self) -> PathBuf {
        self.dir.path().join("rtroot")
    }
    pub fn connect(&self) -> Conn {
        Conn::new(UnixStream::connect(self.socket()).expect("connect shim socket"))
    }
}

/// Runs the shim binary; Ok(shim) when it printed a pid and exited 0, Err(stderr) when it exited 1.
pub fn launch(o: Opts) -> Result<Shim, (tempfile::TempDir, String)> {
    let dir = tempfile::tempdir().unwrap();
    let id = format!("c{}", std::process::id());
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    match &o.bundle {
        Some(f) => f(&bundle),
        None => std::fs::write(bundle.join("config.json"), host_config(o.args, o.tty)).unwrap(),
    }
    let shim = Shim { dir, id, pid: 0 };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth-shim"));
    cmd.arg("--id")
        .arg(&shim.id)
        .arg("--bundle")
        .arg(shim.bundle())
        .arg("--runtime-root")
        .arg(shim.runtime_root())
        .arg("--log-path")
        .arg(shim.log())
        .arg("--socket")
        .arg(shim.socket())
        .arg("--exit-file")
        .arg(shim.exit_file())
        .args(&o.runtime_args);
    if o.tty {
        cmd.arg("--tty");
    }
    if o.stdin {
        cmd.arg("--stdin");
    }
    // output() reads both pipes to EOF: this also proves the serving shim does not keep them.
    let out = cmd.output().unwrap();
    if out.status.success() {
        let pid: i32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("pid on stdout");
        assert!(pid > 1);
        assert!(
            out.stderr.is_empty(),
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(Shim { pid, ..shim })
    } else {
        assert_eq!(out.status.code(), Some(1));
        Err((shim.dir, String::from_utf8_lossy(&out.stderr).into_owned()))
    }
}

pub struct Conn {
    pub sock: UnixStream,
}

#[derive(Debug, Default)]
pub struct Collected {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit: Option<ExitStatus>,
    pub kinds: Vec<u8>,
}

impl Conn {
    pub fn new(sock: UnixStream) -> Self {
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Conn { sock }
    }

    pub fn send(&mut self, kind: u8, payload: &[u8]) {
        self.sock
            .write_all(&protocol::encode(kind, payload))
            .unwrap();
    }

    /// Next frame; None at EOF.
    pub fn next(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut hdr = [0u8; 5];
        match self.sock.read_exact(&mut hdr) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
            Err(e) => panic!("reading frame: {e}"),
        }
        let len = u32::from_be_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]) as usize;
        let mut buf = vec![0u8; len];
        self.sock.read_exact(&mut buf).unwrap();
        Some((hdr[0], buf))
    }

    /// Sends START and returns the pid from the STARTED reply (output frames before it are kept).
    pub fn start(&mut self, acc: &mut Collected) -> i32 {
        self.send(protocol::START, b"");
        loop {
            let (k, p) = self.next().expect("EOF before STARTED");
            if k == protocol::STARTED {
                let v: serde_json::Value = serde_json::from_slice(&p).unwrap();
                return v["Pid"].as_i64().unwrap() as i32;
            }
            assert_ne!(
                k,
                protocol::FAILED,
                "start failed: {}",
                String::from_utf8_lossy(&p)
            );
            acc.add(k, p);
        }
    }

    /// Reads frames until `pred` holds for what was collected (or EOF).
    pub fn read_until(&mut self, acc: &mut Collected, pred: impl Fn(&Collected) -> bool) {
        while !pred(acc) {
            match self.next() {
                Some((k, p)) => acc.add(k, p),
                None => return,
            }
        }
    }

    /// Reads everything up to EOF; asserts the exit frame was the last frame.
    pub fn read_to_end(&mut self, acc: &mut Collected) {
        while let Some((k, p)) = self.next() {
            acc.add(k, p);
        }
        assert_eq!(
            acc.kinds.last(),
            Some(&protocol::EXIT),
            "exit frame must come last: {:?}",
            acc.kinds
        );
    }
}

impl Collected {
    pub fn add(&mut self, k: u8, p: Vec<u8>) {
        self.kinds.push(k);
        match k {
            protocol::STDOUT => self.stdout.extend_from_slice(&p),
            protocol::STDERR => self.stderr.extend_from_slice(&p),
            protocol::EXIT => self.exit = Some(serde_json::from_slice(&p).unwrap()),
            other => panic!("unexpected frame {other}: {}", String::from_utf8_lossy(&p)),
        }
    }
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Process state letter from /proc/<pid>/stat, None if the pid does not exist.
pub fn proc_state(pid: i32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    after.chars().next()
}

/// Pids of serving shims whose command line mentions `needle`.
pub fn serving_shims(needle: &Path) -> Vec<i32> {
    let needle = needle.to_string_lossy().into_owned();
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let serving = args.iter().any(|a| a == "--serve") && args.contains(&needle);
        if serving && proc_state(pid) != Some('Z') {
            v.push(pid);
        }
    }
    v
}

/// Waits until `f` holds, panicking with `what` after `secs`.
pub fn wait_for(secs: u64, what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The shim has exited and removed its socket; the container init is gone (reaped).
pub fn assert_shim_gone(s: &Shim) {
    wait_for(10, "serving shim to exit", || {
        serving_shims(&s.socket()).is_empty()
    });
    assert!(!s.socket().exists(), "socket left behind");
    assert_eq!(
        proc_state(s.pid),
        None,
        "container init {} not reaped",
        s.pid
    );
}

/// Parses the json-file log: (log, stream) per line, checking every line's shape.
pub fn read_log(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad log line {l:?}: {e}"));
            let obj = v.as_object().unwrap();
            assert_eq!(obj.len(), 3, "{l}");
            let t = obj["time"].as_str().unwrap();
            chrono::DateTime::parse_from_rfc3339(t).unwrap_or_else(|e| panic!("bad time {t}: {e}"));
            assert!(t.ends_with('Z') && t.len() == 30, "time {t}");
            (
                obj["log"].as_str().unwrap().to_string(),
                obj["stream"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
