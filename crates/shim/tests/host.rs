//! End-to-end tests of the shim binary with the host-process test runtime.

mod common;

use std::time::Duration;

use berth_shim::protocol;
use common::*;

#[test]
fn output_streams_exit_code_log_and_exit_file() {
    let s = launch(Opts::new(&["sh", "-c", "echo out; echo err >&2; echo 'more <&> \"q\"'; printf 'bad\\377\\n' >&2; printf tail; exit 3"]))
        .unwrap_or_else(|(_, e)| panic!("{e}"));
    let mut c = s.connect();
    let mut acc = Collected::default();
    let pid = c.start(&mut acc);
    assert_eq!(pid, s.pid);
    c.read_to_end(&mut acc);
    assert_eq!(acc.out(), "out\nmore <&> \"q\"\ntail");
    assert_eq!(acc.stderr, b"err\nbad\xff\n");
    let exit = acc.exit.clone().unwrap();
    assert_eq!(exit.exit_code, 3);
    assert!(!exit.oom_killed);
    chrono::DateTime::parse_from_rfc3339(&exit.finished_at).unwrap();

    // The exit file holds exactly what the exit frame carried.
    let file: protocol::ExitStatus =
        serde_json::from_slice(&std::fs::read(s.exit_file()).unwrap()).unwrap();
    assert_eq!(file, exit);
    let leftovers: Vec<_> = std::fs::read_dir(s.bundle())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "config.json" && n != "exit.json")
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");

    let log = read_log(&s.log());
    let stdout: Vec<_> = log
        .iter()
        .filter(|(_, st)| st == "stdout")
        .map(|(l, _)| l.as_str())
        .collect();
    let stderr: Vec<_> = log
        .iter()
        .filter(|(_, st)| st == "stderr")
        .map(|(l, _)| l.as_str())
        .collect();
    assert_eq!(stdout, vec!["out\n", "more <&> \"q\"\n", "tail"]);
    assert_eq!(stderr, vec!["err\n", "bad\u{fffd}\n"]);
    // Go-style escaping in the raw file.
    let raw = std::fs::read_to_string(s.log()).unwrap();
    assert!(
        raw.contains(r#""log":"more \u003c\u0026\u003e \"q\"\n","stream":"stdout""#),
        "{raw}"
    );
    assert!(raw.contains(r#""log":"bad\ufffd\n""#), "{raw}");

    // The runtime state was deleted, the socket removed, the shim is gone.
    assert!(!s.runtime_root().join(&s.id).exists());
    assert_shim_gone(&s);
}

#[test]
fn kill_by_signal_gives_128_plus_n() {
    for (sig, code) in [
        (nix::sys::signal::Signal::SIGKILL, 137),
        (nix::sys::signal::Signal::SIGTERM, 143),
    ] {
        let s = launch(Opts::new(&["sh", "-c", "echo ready; exec sleep 100"]))
            .unwrap_or_else(|(_, e)| panic!("{e}"));
        let mut c = s.connect();
        let mut acc = Collected::default();
        c.start(&mut acc);
        c.read_until(&mut acc, |a| a.stdout.ends_with(b"ready\n"));
        // The test started this container; signal its init by pid.
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(s.pid), sig).unwrap();
        c.read_to_end(&mut acc);
        assert_eq!(acc.exit.unwrap().exit_code, code, "{sig}");
        assert_shim_gone(&s);
    }
}

#[test]
fn stdin_is_piped_and_closed() {
    let mut o = Opts::new(&["sh", "-c", "cat; echo done-$?"]);
    o.stdin = true;
    let s = launch(o).unwrap_or_else(|(_, e)| panic!("{e}"));
    let mut c = s.connect();
    let mut acc = Collected::default();
    // Stdin sent before start is buffered in the pipe.
    c.send(protocol::STDIN, b"hello\n");
    c.start(&mut acc);
    c.read_until(&mut acc, |a| a.stdout.ends_with(b"hello\n"));
    c.send(protocol::STDIN, b"world");
    c.send(protocol::CLOSE_STDIN, b"");
    c.read_to_end(&mut acc);
    assert_eq!(acc.out(), "hello\nworlddone-0\n");
    assert_eq!(acc.exit.unwrap().exit_code, 0);
    assert_shim_gone(&s);
}

#[test]
fn without_stdin_flag_container_reads_dev_null() {
    let s =
        launch(Opts::new(&["sh", "-c", "cat; echo eof-$?"])).unwrap_or_else(|(_, e)| panic!("{e}"));
    let mut c = s.connect();
    let mut acc = Collected::default();
    c.send(protocol::STDIN, b"ignored\n");
    c.start(&mut acc);
    c.read_to_end(&mut acc);
    assert_eq!(acc.out(), "eof-0\n");
    assert_shim_gone(&s);
}

#[test]
fn two_clients_and_disconnects_do_not_affect_container() {
    let mut o = Opts::new(&["sh", "-c", "echo one; read x; echo two-$x; exit 5"]);
    o.stdin = true;
    let s = launch(o).unwrap_or_else(|(_, e)| panic!("{e}"));
    let mut a = s.connect();
    let mut b = s.connect();
    let mut accb = Collected::default();
    // A client that connects and leaves before start.
    drop(s.connect());
    let mut acca = Collected::default();
    a.start(&mut acca);
    a.read_until(&mut acca, |x| x.stdout.ends_with(b"one\n"));
    b.read_until(&mut accb, |x| x.stdout.ends_with(b"one\n"));
    // A leaves without a word; the container keeps running.
    drop(a);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        matches!(proc_state(s.pid), Some(st) if st != 'Z'),
        "container died with its client"
    );
    // A half-closed client (sends, then shuts down its writing side) still receives output.
    let mut late = s.connect();
    late.send(protocol::STDIN, b"x\n");
    late.sock.shutdown(std::net::Shutdown::Write).unwrap();
    let mut accl = Collected::default();
    late.read_to_end(&mut accl);
    b.read_to_end(&mut accb);
    assert_eq!(accb.out(), "one\ntwo-x\n");
    assert_eq!(accl.out(), "two-x\n");
    assert_eq!(accb.exit.as_ref().unwrap().exit_code, 5);
    assert_eq!(accl.exit, accb.exit);
    assert_shim_gone(&s);
}

#[test]
fn create_failure_reports_error_and_cleans_up() {
    let (dir, err) = match launch(Opts::new(&["nosuch-binary-xyz"])) {
        Ok(_) => panic!("create should fail"),
        Err(x) => x,
    };
    assert_eq!(
        err.trim(),
        "exec: \"nosuch-binary-xyz\": executable file not found in $PATH"
    );
    let sock = dir.path().join("run").join("shim.sock");
    assert!(!sock.exists());
    wait_for(5, "failed shim to exit", || serving_shims(&sock).is_empty());
}

#[test]
fn start_twice_replies_same_pid_and_late_start_fails() {
    let s = launch(Opts::new(&["sh", "-c", "sleep 0.3; exit 0"]))
        .unwrap_or_else(|(_, e)| panic!("{e}"));
    let mut c = s.connect();
    let mut acc = Collected::default();
    let p1 = c.start(&mut acc);
    let p2 = c.start(&mut acc);
    assert_eq!((p1, p2), (s.pid, s.pid));
    c.read_to_end(&mut acc);
    assert_eq!(acc.exit.unwrap().exit_code, 0);
    assert_shim_gone(&s);
}

#[test]
fn orphans_are_reaped_no_zombies() {
    // The inner shell exits at once, orphaning `sleep`; the shim is the subreaper and must reap it
    // while the container is still running.
    let s = launch(Opts::new(&[
        "sh",
        "-c",
        "sh -c 'sleep 0.2 & echo $!'; sleep 1.5; echo end",
    ]))
    .unwrap_or_else(|(_, e)| panic!("{e}"));
    let mut c = s.connect();
    let mut acc = Collected::default();
    c.start(&mut acc);
    c.read_until(&mut acc, |a| a.stdout.ends_with(b"\n"));
    let orphan: i32 = acc.out().trim().parse().unwrap();
    wait_for(1, "orphan to finish", || {
        proc_state(orphan).is_none_or(|st| st == 'Z')
    });
    // Either reaped already, or a zombie for a moment: within a short while it must be gone.
    wait_for(1, "orphan to be reaped", || proc_state(orphan).is_none());
    assert!(
        matches!(proc_state(s.pid), Some(st) if st != 'Z'),
        "container still running"
    );
    c.read_to_end(&mut acc);
    assert!(acc.out().ends_with("end\n"));
    assert_shim_gone(&s);
}

#[test]
fn exit_file_appears_atomically() {
    let s = launch(Opts::new(&["sh", "-c", "sleep 0.3; exit 7"]))
        .unwrap_or_else(|(_, e)| panic!("{e}"));
    let path = s.exit_file();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let reader = std::thread::spawn(move || {
        let mut seen = 0;
        while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
            if let Ok(b) = std::fs::read(&path) {
                let st: protocol::ExitStatus = serde_json::from_slice(&b)
                    .unwrap_or_else(|e| panic!("partial exit file {b:?}: {e}"));
                assert_eq!(st.exit_code, 7);
                seen += 1;
            }
        }
        seen
    });
    let mut c = s.connect();
    let mut acc = Collected::default();
    c.start(&mut acc);
    c.read_to_end(&mut acc);
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(reader.join().unwrap() > 0);
    assert_shim_gone(&s);
}

#[test]
fn slow_client_does_not_block_container_and_log_is_complete() {
    const N: usize = 12 << 20;
    let cmd = format!("head -c {N} /dev/zero | tr '\\0' a; echo; echo fin >&2");
    let s = launch(Opts::new(&["sh", "-c", &cmd])).unwrap_or_else(|(_, e)| panic!("{e}"));
    // `c` connects first: it is the primary client (berthd's place), which gets everything
    // (backpressure); `slow` reads nothing until the end and loses frames instead.
    let mut c = s.connect();
    let mut slow = s.connect();
    let mut acc = Collected::default();
    c.start(&mut acc);
    // Read from `c` only; `slow` reads nothing until the end.
    c.read_to_end(&mut acc);
    assert_eq!(acc.stdout.len(), N + 1);
    assert_eq!(acc.exit.as_ref().unwrap().exit_code, 0);
    let mut accs = Collected::default();
    slow.read_to_end(&mut accs);
    assert!(
        accs.stdout.len() < N,
        "slow client got everything ({}), nothing was dropped?",
        accs.stdout.len()
    );
    assert_eq!(accs.stderr, b"fin\n");
    assert_eq!(accs.exit, acc.exit);
    let log = read_log(&s.log());
    let total: usize = log
        .iter()
        .filter(|(_, st)| st == "stdout")
        .map(|(l, _)| l.len())
        .sum();
    assert_eq!(total, N + 1);
    assert!(log
        .iter()
        .all(|(l, _)| l.len() <= berth_shim::jsonlog::MAX_LINE));
    assert_shim_gone(&s);
}

#[test]
fn tty_resize_and_input() {
    let mut o = Opts::new(&[
        "sh",
        "-c",
        "stty size; read x; echo got-$x; echo to-stderr >&2",
    ]);
    o.tty = true;
    o.stdin = true;
    let s = launch(o).unwrap_or_else(|(_, e)| panic!("{e}"));
    let mut c = s.connect();
    c.send(protocol::RESIZE, br#"{"h":40,"w":100}"#);
    let mut acc = Collected::default();
    c.start(&mut acc);
    c.read_until(&mut acc, |a| a.out().contains("40 100"));
    c.send(protocol::STDIN, b"abc\n");
    c.read_to_end(&mut acc);
    let out = acc.out();
    // A pty: output is one stream, with \r\n line endings and the input echoed.
    assert!(out.contains("40 100\r\n"), "{out:?}");
    assert!(out.contains("got-abc\r\n"), "{out:?}");
    assert!(out.contains("to-stderr\r\n"), "{out:?}");
    assert!(acc.stderr.is_empty());
    assert_eq!(acc.exit.unwrap().exit_code, 0);
    assert!(read_log(&s.log()).iter().all(|(_, st)| st == "stdout"));
    assert_shim_gone(&s);
}

#[test]
fn slow_primary_client_holds_output_back_instead_of_losing_it() {
    const N: usize = 12 << 20;
    let cmd = format!("head -c {N} /dev/zero | tr '\\0' b; echo");
    let s = launch(Opts::new(&["sh", "-c", &cmd])).unwrap_or_else(|(_, e)| panic!("{e}"));
    let mut c = s.connect();
    let mut acc = Collected::default();
    c.start(&mut acc);
    // The primary client stalls: the container must wait for it, not drop its output.
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        matches!(proc_state(s.pid), Some(st) if st != 'Z'),
        "the container finished while its primary client had not read"
    );
    c.read_to_end(&mut acc);
    assert_eq!(acc.stdout.len(), N + 1);
    assert_eq!(acc.exit.as_ref().unwrap().exit_code, 0);
    assert_shim_gone(&s);
}
