//! The two-process start-up: the process berthd starts (already running from a sealed memfd,
//! or re-executed into one) forks the serving shim, which starts a new session, with the write
//! end of a pipe as its stdout. The serving shim writes one report line there once the runtime `create`
//! finished (`ok <pid>` or `err <text>`), then points its stdout at /dev/null. The launcher
//! relays the report: the pid on stdout and exit 0, or the error on stderr and exit 1.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;

use nix::fcntl::OFlag;

/// The hidden flag that makes the binary the serving shim.
pub const SERVE_FLAG: &str = "--serve";

/// One report line written by the serving shim.
pub fn encode_report(r: &Result<i32, String>) -> String {
    match r {
        Ok(pid) => format!("ok {pid}\n"),
        // Newlines are kept: the launcher reads to EOF.
        Err(e) => format!("err {e}\n"),
    }
}

/// Parses what the serving shim wrote; `None` if it wrote nothing recognisable.
pub fn decode_report(s: &str) -> Option<Result<i32, String>> {
    if let Some(rest) = s.strip_prefix("ok ") {
        return rest.trim().parse().ok().map(Ok);
    }
    s.strip_prefix("err ")
        .map(|e| Err(e.trim_end().to_string()))
}

/// Writes the report to stdout (the launcher's pipe), then detaches stdout to /dev/null so the
/// launcher sees EOF and nothing later can block on it.
pub fn send_report(r: &Result<i32, String>) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(encode_report(r).as_bytes());
    let _ = out.flush();
    drop(out);
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
        let _ = nix::unistd::dup2(null.as_raw_fd(), 2);
    }
}

/// Forks the serving shim (which runs `serve` and reports through its stdout) and relays its
/// report: the pid on stdout and 0, or the error on stderr and 1. The caller must be
/// single-threaded (it is: `main` before anything else) and should already run from a sealed
/// memfd, so the child inherits it without another exec or copy.
pub fn launch(serve: impl FnOnce() -> i32) -> i32 {
    match launch_inner(serve) {
        Ok(Ok(pid)) => {
            println!("{pid}");
            0
        }
        Ok(Err(msg)) => {
            eprintln!("{msg}");
            1
        }
        Err(e) => {
            eprintln!("berth-shim: {e}");
            1
        }
    }
}

fn launch_inner(serve: impl FnOnce() -> i32) -> io::Result<Result<i32, String>> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    match berth_sys::fork_single_threaded()? {
        berth_sys::Forked::Child => {
            drop(r);
            // stdout: the report pipe; stdin and stderr: /dev/null (never berthd's pipes: the
            // shim outlives the launcher, and berthd reads the launcher's output to EOF).
            let null = File::options().read(true).write(true).open("/dev/null");
            let ok = nix::unistd::dup2(w.as_raw_fd(), 1).is_ok()
                && null.as_ref().is_ok_and(|n| {
                    nix::unistd::dup2(n.as_raw_fd(), 0).is_ok()
                        && nix::unistd::dup2(n.as_raw_fd(), 2).is_ok()
                });
            drop(w);
            drop(null);
            if !ok {
                std::process::exit(1);
            }
            std::process::exit(serve());
        }
        berth_sys::Forked::Parent(pid) => {
            drop(w);
            let mut text = String::new();
            File::from(r).read_to_string(&mut text)?;
            let reap = || {
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            };
            match decode_report(&text) {
                Some(Ok(pid)) => Ok(Ok(pid)),
                Some(Err(msg)) => {
                    // The serving shim exits right after a failed create; reap it.
                    reap();
                    Ok(Err(msg))
                }
                None => {
                    reap();
                    Ok(Err("berth-shim exited before reporting".to_string()))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_roundtrip() {
        for r in [
            Ok(42),
            Err("exec: \"nosuch\": executable file not found in $PATH".to_string()),
        ] {
            assert_eq!(decode_report(&encode_report(&r)), Some(r));
        }
        assert_eq!(decode_report(""), None);
        assert_eq!(
            decode_report("err line1\nline2\n"),
            Some(Err("line1\nline2".into()))
        );
    }
}
