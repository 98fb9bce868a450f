//! `--init`: a tiny PID 1 kept in the container's own init process (the binary already in
//! memory, sealed; nothing from the host is mounted into the container). Enabled by the spec
//! annotation `org.berth.init=true` (berthd sets it for `docker run --init`).
//!
//! Like docker-init (tini): all signals are blocked; the child gets a clean mask and execs the
//! workload; the reaper forwards every signal it receives to the child, reaps every zombie,
//! and exits with the child's status (128 + signal when the child was killed).

use std::ffi::CString;
use std::io::{Seek, SeekFrom, Write};

use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// The annotation that asks for the reaper.
pub const INIT_ANNOTATION: &str = "org.berth.init";

/// Runs `exec` (which execs the workload) in a forked child and reaps until it exits.
/// Returns the exit code for the init process.
pub fn run(args: &[CString], exec: impl FnOnce() -> i32) -> i32 {
    let all = SigSet::all();
    if sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None).is_err() {
        return exec();
    }
    let child = match berth_sys::fork_single_threaded() {
        Ok(berth_sys::Forked::Child) => {
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
            berth_sys::exit_immediately(exec());
        }
        Ok(berth_sys::Forked::Parent(pid)) => Pid::from_raw(pid),
        Err(e) => {
            eprintln!("init: fork: {e}");
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
            return exec();
        }
    };
    rename_self(args);
    loop {
        let sig = match all.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig != Signal::SIGCHLD {
            let _ = kill(child, sig);
            continue;
        }
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => return code,
                Ok(WaitStatus::Signaled(pid, s, _)) if pid == child => return 128 + s as i32,
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }
}

/// Shows `/sbin/docker-init -- <args>` as the reaper's command line, as dockerd's init does,
/// instead of the monitor's host command line: rewritten in place through /proc/self/mem
/// (the argv area is this process's own memory; no privilege is needed).
fn rename_self(args: &[CString]) {
    let _ = nix::sys::prctl::set_name(c"docker-init");
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command (which may contain spaces) start after the last ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // arg_start and arg_end are fields 48 and 49 (1-based) of the whole line; `rest` starts
    // at field 3.
    let (Some(a), Some(b)) = (f.get(45), f.get(46)) else {
        return;
    };
    let (Ok(start), Ok(end)) = (a.parse::<u64>(), b.parse::<u64>()) else {
        return;
    };
    if end <= start {
        return;
    }
    let room = (end - start) as usize;
    let mut line: Vec<u8> = b"/sbin/docker-init\0--\0".to_vec();
    for a in args {
        line.extend_from_slice(a.as_bytes_with_nul());
    }
    line.truncate(room);
    line.resize(room, 0);
    if let Ok(mut mem) = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/mem")
    {
        if mem.seek(SeekFrom::Start(start)).is_ok() {
            let _ = mem.write_all(&line);
        }
    }
}
