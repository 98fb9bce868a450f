//! Terminal handling for attached streams (`run -it`, `attach`, `exec -it`, `start -ai`):
//! raw mode, window size (sent at start and on every SIGWINCH), and docker's detach keys
//! (ctrl-p ctrl-q by default, `--detach-keys` to change them).

use anyhow::{bail, Result};
use berth_client::{Client, Hijacked};
use std::io::IsTerminal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Puts the local terminal into raw mode and restores it on drop.
pub struct RawModeGuard {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawModeGuard {
    pub fn enable(want: bool) -> Self {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        if !want || !stdin.is_terminal() {
            return RawModeGuard { saved: None };
        }
        let Ok(orig) = tcgetattr(&stdin) else {
            return RawModeGuard { saved: None };
        };
        let mut raw = orig.clone();
        cfmakeraw(&mut raw);
        if tcsetattr(&stdin, SetArg::TCSANOW, &raw).is_err() {
            return RawModeGuard { saved: None };
        }
        RawModeGuard { saved: Some(orig) }
    }
}

impl Drop for RawModeGuard {
    fn drop(&mut self) {
        if let Some(t) = self.saved.take() {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                &t,
            );
        }
    }
}

/// The terminal's size as (rows, cols), from stdout (then stdin), if either is a terminal.
pub fn terminal_size() -> Option<(u16, u16)> {
    use std::os::fd::AsFd;
    let out = std::io::stdout();
    if out.is_terminal() {
        if let Ok(s) = berth_sys::get_winsize(out.as_fd()) {
            return Some(s).filter(|(h, w)| *h > 0 && *w > 0);
        }
    }
    let inp = std::io::stdin();
    if inp.is_terminal() {
        if let Ok(s) = berth_sys::get_winsize(inp.as_fd()) {
            return Some(s).filter(|(h, w)| *h > 0 && *w > 0);
        }
    }
    None
}

/// What a resize applies to.
#[derive(Debug, Clone)]
pub enum ResizeTarget {
    Container(String),
    Exec(String),
}

async fn resize(client: &Client, target: &ResizeTarget, h: u16, w: u16) {
    // Errors (the process already exited: 409) are ignored, as the docker CLI does.
    let _ = match target {
        ResizeTarget::Container(id) => client.resize_container(id, h, w).await,
        ResizeTarget::Exec(id) => client.resize_exec(id, h, w).await,
    };
}

/// Send the current size now and again on every SIGWINCH until the returned task is
/// aborted. Does nothing without a terminal.
pub fn monitor_size(client: &Client, target: ResizeTarget) -> Option<tokio::task::JoinHandle<()>> {
    terminal_size()?;
    let client = client.clone();
    Some(tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut winch = signal(SignalKind::window_change()).ok();
        let mut last = None;
        loop {
            if let Some(sz) = terminal_size() {
                if Some(sz) != last {
                    resize(&client, &target, sz.0, sz.1).await;
                    last = Some(sz);
                }
            }
            match winch.as_mut() {
                Some(w) => {
                    if w.recv().await.is_none() {
                        return;
                    }
                }
                None => return,
            }
        }
    }))
}

/// `--sig-proxy`: forward the signals berth receives to the container (docker does this for
/// attached containers without a TTY). Returns the task to abort when the session ends.
pub fn proxy_signals(client: &Client, id: &str) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let client = client.clone();
    let id = id.to_string();
    tokio::spawn(async move {
        let kinds = [
            (SignalKind::interrupt(), "SIGINT"),
            (SignalKind::terminate(), "SIGTERM"),
            (SignalKind::hangup(), "SIGHUP"),
            (SignalKind::quit(), "SIGQUIT"),
            (SignalKind::user_defined1(), "SIGUSR1"),
            (SignalKind::user_defined2(), "SIGUSR2"),
        ];
        let (tx, mut rx) = tokio::sync::mpsc::channel::<&'static str>(8);
        for (kind, name) in kinds {
            let Ok(mut sig) = signal(kind) else { continue };
            let tx = tx.clone();
            tokio::spawn(async move {
                while sig.recv().await.is_some() {
                    if tx.send(name).await.is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        while let Some(name) = rx.recv().await {
            let _ = client.kill_container(&id, Some(name)).await;
        }
    })
}

/// Parse docker's `--detach-keys` syntax: comma-separated `ctrl-<key>` or single characters
/// (`ctrl-p,ctrl-q`, `ctrl-@`, `a`).
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for k in s.split(',') {
        let k = k.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b @ b'a'..=b'z'] => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => bail!("Unknown character: '{k}'"),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            bail!("Unknown character: '{k}'");
        }
    }
    if out.is_empty() {
        bail!("invalid detach keys {s:?}");
    }
    Ok(out)
}

/// The `detachKeys` query value for the daemon: the flag, the config's, or docker's default.
pub fn detach_keys_spec(flag: Option<&str>) -> String {
    if let Some(f) = flag.filter(|f| !f.is_empty()) {
        return f.to_string();
    }
    crate::context::config_value("detachKeys")
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "ctrl-p,ctrl-q".to_string())
}

/// The detach sequence: `--detach-keys`, else `detachKeys` from the docker config file,
/// else ctrl-p ctrl-q.
pub fn detach_keys(flag: Option<&str>) -> Result<Vec<u8>> {
    if let Some(f) = flag.filter(|f| !f.is_empty()) {
        return parse_detach_keys(f);
    }
    if let Some(k) = crate::context::config_value("detachKeys") {
        if let Some(k) = k.as_str() {
            return parse_detach_keys(k);
        }
    }
    parse_detach_keys("ctrl-p,ctrl-q")
}

/// Scans input for the detach sequence, holding back a partial match (like docker's escape
/// proxy): bytes that turn out not to be the sequence are passed on unchanged.
#[derive(Debug)]
pub struct EscapeScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl EscapeScanner {
    pub fn new(keys: Vec<u8>) -> Self {
        EscapeScanner { keys, matched: 0 }
    }

    /// Feed input; returns (bytes to forward, whether the full sequence was seen).
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            // mismatch: release what was held back, then look at this byte afresh
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    self.matched = 0;
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

/// How an attached session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum PumpEnd {
    /// The daemon closed the stream (the process ended).
    Eof,
    /// The user typed the detach sequence.
    Detached,
}

/// Options of an attached stream.
pub struct PumpOpts {
    /// The container/exec has a TTY: output is raw, not multiplexed.
    pub tty: bool,
    /// Local stdin is sent up.
    pub stdin: bool,
    /// Detach sequence, checked when stdin is a terminal.
    pub detach_keys: Vec<u8>,
    /// Pass the detach keys on to the daemon (dockerd detaches itself, leaving the
    /// container's stdin open); berthd does not watch for them, so they are kept back.
    pub forward_keys: bool,
}

/// Whether the daemon watches attach streams for the detach keys (dockerd does).
pub fn daemon_detaches(client: &Client) -> bool {
    !client.server().is_some_and(|s| s.starts_with("Berth"))
}

/// Stream a hijacked connection: stdin up (raw, watching for the detach keys), output down
/// (demultiplexed unless TTY). Returns when the daemon closes the stream or on detach.
pub async fn pump(stream: Hijacked, o: PumpOpts) -> Result<PumpEnd> {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (detach_tx, mut detach_rx) = tokio::sync::oneshot::channel::<()>();
    if o.stdin {
        let watch = std::io::stdin().is_terminal();
        let keys = o.detach_keys.clone();
        let keys_sent = if o.forward_keys {
            o.detach_keys.clone()
        } else {
            Vec::new()
        };
        let tty = o.tty;
        tokio::spawn(async move {
            let mut input = tokio::io::stdin();
            let mut scanner = EscapeScanner::new(keys);
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                let n = match input.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let (data, detach) = if watch {
                    scanner.feed(&buf[..n])
                } else {
                    (buf[..n].to_vec(), false)
                };
                if !data.is_empty() && wr.write_all(&data).await.is_err() {
                    break;
                }
                if detach {
                    // Pass the keys on: a daemon that watches for them (dockerd) detaches
                    // itself without closing the container's stdin.
                    if !keys_sent.is_empty() {
                        let _ = wr.write_all(&keys_sent).await;
                    }
                    let _ = wr.flush().await;
                    let _ = detach_tx.send(());
                    std::future::pending::<()>().await;
                    return;
                }
                let _ = wr.flush().await;
            }
            // With a TTY docker keeps the write side open until the output ends; without one
            // the half-close makes the daemon close the process's stdin (StdinOnce).
            if !tty {
                let _ = wr.shutdown().await;
            }
            // Keep the write half (and so the connection) alive until the output ends.
            std::future::pending::<()>().await;
            drop(wr);
        });
    } else {
        // Nothing to send: half-close at once, like the docker CLI.
        let _ = wr.shutdown().await;
        drop(detach_tx);
        tokio::spawn(async move {
            std::future::pending::<()>().await;
            drop(wr);
        });
    }
    let output = async move {
        let mut out = tokio::io::stdout();
        if o.tty {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                let n = rd.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n]).await?;
                out.flush().await?;
            }
        } else {
            let mut err = tokio::io::stderr();
            berth_client::demux_copy(rd, &mut out, &mut err).await?;
        }
        anyhow::Ok(())
    };
    tokio::pin!(output);
    tokio::select! {
        r = &mut output => { r?; Ok(PumpEnd::Eof) }
        d = &mut detach_rx => {
            if d.is_ok() {
                // give a detaching daemon a moment to end the stream itself
                let _ = tokio::time::timeout(std::time::Duration::from_millis(300), output).await;
                Ok(PumpEnd::Detached)
            } else {
                // stdin was not watched (the sender is gone): wait for the output alone
                output.await?;
                Ok(PumpEnd::Eof)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_key_syntax() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("ctrl-@,a").unwrap(), vec![0, b'a']);
        assert!(parse_detach_keys("ctrl-").is_err());
        assert!(parse_detach_keys("abc").is_err());
    }

    #[test]
    fn scanner_holds_partial_matches() {
        let mut s = EscapeScanner::new(vec![16, 17]);
        assert_eq!(s.feed(b"ab"), (b"ab".to_vec(), false));
        assert_eq!(s.feed(&[16]), (vec![], false));
        assert_eq!(s.feed(b"x"), (vec![16, b'x'], false));
        assert_eq!(s.feed(&[16, 16]), (vec![16], false));
        assert_eq!(s.feed(&[17, b'z']), (vec![], true));
        let mut s = EscapeScanner::new(vec![16, 17]);
        assert_eq!(s.feed(&[b'l', b's', 16, 17]), (b"ls".to_vec(), true));
    }
}
