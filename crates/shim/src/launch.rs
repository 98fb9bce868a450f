//! The two-process start-up: the process berthd starts re-executes itself (`/proc/self/exe`)
//! with a hidden flag as the serving shim in a new session, passing the write end of a pipe as
//! the child's stdout. The serving shim writes one report line there once the runtime `create`
//! finished (`ok <pid>` or `err <text>`), then points its stdout at /dev/null. The launcher
//! relays the report: the pid on stdout and exit 0, or the error on stderr and exit 1.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};

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

/// Runs the serving shim as a detached child and relays its report. `args` are this process's
/// arguments (without argv[0]). Returns the process exit code.
pub fn launch(args: &[OsString]) -> i32 {
    match launch_inner(args) {
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

fn launch_inner(args: &[OsString]) -> io::Result<Result<i32, String>> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let mut child = Command::new(exe)
        .arg(SERVE_FLAG)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(w))
        // Never the caller's stderr: berthd reads it to EOF, and the shim outlives this process.
        .stderr(Stdio::null())
        .spawn()?;
    let mut text = String::new();
    File::from(r).read_to_string(&mut text)?;
    match decode_report(&text) {
        Some(Ok(pid)) => Ok(Ok(pid)),
        Some(Err(msg)) => {
            // The serving shim exits right after a failed create; reap it.
            let _ = child.wait();
            Ok(Err(msg))
        }
        None => {
            let st = child.wait()?;
            Ok(Err(format!("berth-shim exited before reporting ({st})")))
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
