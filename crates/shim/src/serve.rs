//! The serving shim: a single-threaded poll(2) loop that owns the control socket, the
//! container's stdio and the SIGCHLD signalfd (docs/DESIGN.md, "Shim").

use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::jsonlog::{format_time, JsonLog, Stream};
use crate::protocol::{self, Decoder, ExitStatus, Resize, Started};
use crate::runtime::{ContainerIo, ContainerRuntime};

/// Output bytes queued for one client before further output frames to it are dropped (the log
/// file stays complete; a slow client never blocks the container).
pub const CLIENT_BUF_MAX: usize = 4 << 20;
/// Stdin bytes queued for the container before the shim stops reading client sockets.
pub const STDIN_BUF_MAX: usize = 1 << 20;
/// How long output pipes are drained after init exited (grandchildren may hold them open).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the shim tries to deliver the exit frame to slow clients before exiting.
pub const FAREWELL_TIMEOUT: Duration = Duration::from_secs(2);

const READ_CHUNK: usize = 64 * 1024;

/// What one shim monitors.
#[derive(Debug, Clone)]
pub struct Config {
    pub id: String,
    pub bundle: PathBuf,
    pub log_path: PathBuf,
    pub socket: PathBuf,
    pub exit_file: PathBuf,
    pub tty: bool,
    pub stdin: bool,
    /// Log driver options (rotation, `none`, attributes).
    pub log: crate::jsonlog::LogOpts,
}

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Create(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> ShimError {
    let what = what.into();
    move |source| ShimError::Io { what, source }
}

fn nix_err(what: impl Into<String>) -> impl FnOnce(Errno) -> ShimError {
    let what = what.into();
    move |e| ShimError::Io {
        what,
        source: io::Error::from(e),
    }
}

fn set_nonblocking(fd: &impl AsFd) -> Result<(), Errno> {
    let raw = fd.as_fd().as_raw_fd();
    let fl = OFlag::from_bits_truncate(fcntl(raw, FcntlArg::F_GETFL)?);
    fcntl(raw, FcntlArg::F_SETFL(fl | OFlag::O_NONBLOCK))?;
    Ok(())
}

fn set_cloexec(fd: &impl AsFd) -> Result<(), Errno> {
    fcntl(
        fd.as_fd().as_raw_fd(),
        FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC),
    )?;
    Ok(())
}

/// Writes `data` to `path` atomically: temp file, rename (no fsync, see below).
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, "no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        drop(f);
        // No fsync: the exit file lives in the bundle under the exec root (runtime state, a
        // tmpfs in production); it must outlive berthd, not the machine.
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Exit code of a wait status: the code, or 128 + signal number.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

struct Client {
    sock: UnixStream,
    dec: Decoder,
    wbuf: Vec<u8>,
    /// The peer shut down its sending side (it may still read).
    read_closed: bool,
    dead: bool,
    dropped: usize,
}

impl Client {
    fn queue(&mut self, frame: &[u8], force: bool) {
        if !force && self.wbuf.len() + frame.len() > CLIENT_BUF_MAX {
            self.dropped += frame.len();
            return;
        }
        self.wbuf.extend_from_slice(frame);
    }

    /// Writes as much of the queue as the socket takes without blocking.
    fn flush(&mut self) {
        while !self.dead && !self.wbuf.is_empty() {
            match self.sock.write(&self.wbuf) {
                Ok(0) => self.dead = true,
                Ok(n) => {
                    self.wbuf.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.dead = true,
            }
        }
    }
}

struct Shim<'a> {
    cfg: &'a Config,
    rt: &'a mut dyn ContainerRuntime,
    pid: i32,
    started: bool,
    listener: Option<UnixListener>,
    clients: Vec<Client>,
    /// Read ends of stdout and stderr (with a tty: the pty master as stdout).
    out: [Option<File>; 2],
    /// Where client stdin goes (pipe write end, or a dup of the pty master).
    stdin: Option<File>,
    stdin_buf: Vec<u8>,
    stdin_close: bool,
    /// The pty master, for resizes.
    master: Option<File>,
    log: JsonLog,
    sfd: SignalFd,
    exit: Option<(i32, String)>,
    /// The container's memory cgroup and its oom_kill count at create time.
    oom_watch: Option<(PathBuf, u64)>,
    oom_killed: bool,
    drain_deadline: Option<Instant>,
}

/// Sets up the socket and stdio, creates the container through `rt`, reports the outcome with
/// `report` (`Ok(pid)` or `Err(text)`), then serves until the container's init exits.
/// Returns the exit status that was written to the exit file.
///
/// The calling process must be single-threaded and should be a child subreaper.
pub fn serve(
    cfg: &Config,
    rt: &mut dyn ContainerRuntime,
    report: impl FnOnce(Result<i32, String>),
) -> Result<ExitStatus, ShimError> {
    match setup(cfg, rt) {
        Ok(mut shim) => {
            report(Ok(shim.pid));
            shim.run()
        }
        Err(e) => {
            let _ = std::fs::remove_file(&cfg.socket);
            report(Err(e.to_string()));
            Err(e)
        }
    }
}

fn setup<'a>(cfg: &'a Config, rt: &'a mut dyn ContainerRuntime) -> Result<Shim<'a>, ShimError> {
    // SIGCHLD is blocked and read from a signalfd, so no exit can be missed between create and
    // the first poll. (Children get an empty mask again: std's spawn and the runtime's init
    // reset it.)
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
        .map_err(nix_err("block SIGCHLD"))?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(nix_err("signalfd"))?;

    if let Some(dir) = cfg.socket.parent() {
        std::fs::create_dir_all(dir).map_err(io_err(format!("mkdir {}", dir.display())))?;
    }
    let _ = std::fs::remove_file(&cfg.socket);
    let listener = UnixListener::bind(&cfg.socket)
        .map_err(io_err(format!("listen on {}", cfg.socket.display())))?;
    listener
        .set_nonblocking(true)
        .map_err(io_err("socket nonblocking"))?;

    let log = JsonLog::open_with(&cfg.log_path, cfg.log.clone())
        .map_err(io_err(format!("open {}", cfg.log_path.display())))?;

    let (io, pipes) = if cfg.tty {
        (ContainerIo::Terminal, None)
    } else {
        let (in_r, in_w): (OwnedFd, Option<File>) = if cfg.stdin {
            let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(nix_err("pipe"))?;
            set_nonblocking(&w).map_err(nix_err("stdin nonblocking"))?;
            (r, Some(File::from(w)))
        } else {
            let f = File::open("/dev/null").map_err(io_err("open /dev/null"))?;
            (OwnedFd::from(f), None)
        };
        let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(nix_err("pipe"))?;
        let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(nix_err("pipe"))?;
        set_nonblocking(&out_r).map_err(nix_err("stdout nonblocking"))?;
        set_nonblocking(&err_r).map_err(nix_err("stderr nonblocking"))?;
        (
            ContainerIo::Pipes([in_r, out_w, err_w]),
            Some((File::from(out_r), File::from(err_r), in_w)),
        )
    };

    // The container's ends are moved into the runtime and closed once it returns, so that EOF
    // on the read ends means every writer in the container is gone.
    let created = rt
        .create(&cfg.id, &cfg.bundle, io)
        .map_err(|e| ShimError::Create(e.0))?;
    let pid = created.pid;

    let (out, stdin, master) = match (pipes, created.console) {
        (Some((o, e, i)), _) => ([Some(o), Some(e)], i, None),
        (None, Some(m)) => {
            set_cloexec(&m).map_err(nix_err("pty master cloexec"))?;
            set_nonblocking(&m).map_err(nix_err("pty master nonblocking"))?;
            let master = File::from(m);
            let dup = |f: &File| f.try_clone().map_err(io_err("dup pty master"));
            let stdin = if cfg.stdin { Some(dup(&master)?) } else { None };
            ([Some(dup(&master)?), None], stdin, Some(master))
        }
        (None, None) => {
            let _ = rt.delete(&cfg.id);
            return Err(ShimError::Create(
                "the runtime returned no terminal for --tty".into(),
            ));
        }
    };

    Ok(Shim {
        cfg,
        rt,
        pid,
        started: false,
        listener: Some(listener),
        clients: Vec::new(),
        out,
        stdin,
        stdin_buf: Vec::new(),
        stdin_close: false,
        master,
        log,
        sfd,
        exit: None,
        // Only a cgroup of its own (not the shim's, as with the host test runtime).
        oom_watch: crate::oom::watch(pid).filter(|(d, _)| {
            crate::oom::watch(std::process::id() as i32).is_none_or(|(own, _)| own != *d)
        }),
        oom_killed: false,
        drain_deadline: None,
    })
}

/// What one poll slot refers to.
#[derive(Clone, Copy)]
enum Slot {
    Signal,
    Listener,
    Out(usize),
    Stdin,
    Client(usize),
}

impl Shim<'_> {
    fn run(&mut self) -> Result<ExitStatus, ShimError> {
        loop {
            if self.exit.is_some() {
                let drained = self.out.iter().all(Option::is_none);
                let late = self.drain_deadline.is_some_and(|d| Instant::now() >= d);
                if drained || late {
                    return self.finish();
                }
            }
            self.poll_once()?;
        }
    }

    fn poll_once(&mut self) -> Result<(), ShimError> {
        let mut slots = Vec::new();
        let mut fds = Vec::new();
        fds.push(PollFd::new(self.sfd.as_fd(), PollFlags::POLLIN));
        slots.push(Slot::Signal);
        if let Some(l) = &self.listener {
            fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
            slots.push(Slot::Listener);
        }
        // Backpressure from the first client (berthd, which fans output out to attach
        // streams): while its queue could not take another full wakeup of reads, the
        // container's output waits in the pipe, so nothing berthd relays is ever dropped.
        // Other clients (and the log file) never hold the container back.
        let primary_full = self
            .clients
            .first()
            .is_some_and(|c| !c.dead && c.wbuf.len() + 16 * (READ_CHUNK + 64) > CLIENT_BUF_MAX);
        for (i, o) in self.out.iter().enumerate() {
            if let Some(f) = o {
                if primary_full {
                    continue;
                }
                fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
                slots.push(Slot::Out(i));
            }
        }
        if let Some(f) = &self.stdin {
            if !self.stdin_buf.is_empty() {
                fds.push(PollFd::new(f.as_fd(), PollFlags::POLLOUT));
                slots.push(Slot::Stdin);
            }
        }
        let stdin_full = self.stdin_buf.len() >= STDIN_BUF_MAX;
        for (i, c) in self.clients.iter().enumerate() {
            let mut ev = PollFlags::empty();
            if !c.read_closed && !stdin_full {
                ev |= PollFlags::POLLIN;
            }
            if !c.wbuf.is_empty() {
                ev |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(c.sock.as_fd(), ev));
            slots.push(Slot::Client(i));
        }
        let timeout = match self.drain_deadline {
            Some(d) => {
                let ms = d
                    .saturating_duration_since(Instant::now())
                    .as_millis()
                    .min(60_000) as i32;
                PollTimeout::try_from(ms.max(1)).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(Errno::EINTR) => return Ok(()),
            Err(e) => return Err(nix_err("poll")(e)),
        }
        let ready: Vec<(Slot, PollFlags)> = fds
            .iter()
            .zip(slots)
            .filter_map(|(fd, s)| fd.revents().filter(|r| !r.is_empty()).map(|r| (s, r)))
            .collect();
        drop(fds);

        for (slot, rev) in ready {
            match slot {
                Slot::Signal => self.on_sigchld(),
                Slot::Listener => self.accept(),
                Slot::Out(i) => self.read_output(i),
                Slot::Stdin => self.flush_stdin(),
                Slot::Client(i) => self.on_client(i, rev),
            }
        }
        self.clients.retain(|c| !c.dead);
        Ok(())
    }

    fn on_sigchld(&mut self) {
        while let Ok(Some(_)) = self.sfd.read_signal() {}
        // As a subreaper we reap every orphan that lands on us, not just init.
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(st) => {
                    if st.pid() == Some(Pid::from_raw(self.pid)) && self.exit.is_none() {
                        if let Some(code) = exit_code(st) {
                            self.exit = Some((code, format_time(Utc::now())));
                            // Read now: the cgroup disappears with the runtime delete.
                            if let Some((dir, before)) = &self.oom_watch {
                                self.oom_killed =
                                    crate::oom::oom_kills(dir).is_some_and(|n| n > *before);
                            }
                            self.drain_deadline = Some(Instant::now() + DRAIN_TIMEOUT);
                            // Nothing can read stdin any more.
                            self.stdin = None;
                            self.stdin_buf.clear();
                        }
                    }
                }
            }
        }
    }

    fn accept(&mut self) {
        let Some(l) = &self.listener else { return };
        loop {
            match l.accept() {
                Ok((sock, _)) => {
                    if sock.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.clients.push(Client {
                        sock,
                        dec: Decoder::new(),
                        wbuf: Vec::new(),
                        read_closed: false,
                        dead: false,
                        dropped: 0,
                    });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }

    fn read_output(&mut self, i: usize) {
        let stream = if i == 0 {
            Stream::Stdout
        } else {
            Stream::Stderr
        };
        let kind = if i == 0 {
            protocol::STDOUT
        } else {
            protocol::STDERR
        };
        let mut buf = vec![0u8; READ_CHUNK];
        // A bounded number of reads per wakeup keeps one busy stream from starving the rest.
        for _ in 0..16 {
            let Some(f) = self.out[i].as_mut() else {
                return;
            };
            match f.read(&mut buf) {
                Ok(0) => return self.close_output(i),
                Ok(n) => self.emit(stream, kind, &buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // EIO on a pty master: every slave fd is closed.
                Err(_) => return self.close_output(i),
            }
        }
    }

    fn close_output(&mut self, i: usize) {
        self.out[i] = None;
        let stream = if i == 0 {
            Stream::Stdout
        } else {
            Stream::Stderr
        };
        let _ = self.log.flush_partial(stream, Utc::now());
    }

    fn emit(&mut self, stream: Stream, kind: u8, data: &[u8]) {
        let _ = self.log.write(stream, data, Utc::now());
        let frame = protocol::encode(kind, data);
        for c in &mut self.clients {
            c.queue(&frame, false);
            c.flush();
        }
    }

    fn flush_stdin(&mut self) {
        while let Some(f) = self.stdin.as_mut() {
            if self.stdin_buf.is_empty() {
                break;
            }
            match f.write(&self.stdin_buf) {
                Ok(n) => {
                    self.stdin_buf.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    // EPIPE: the container closed its stdin.
                    self.stdin = None;
                    self.stdin_buf.clear();
                }
            }
        }
        if self.stdin_close && self.stdin_buf.is_empty() {
            self.stdin = None;
        }
    }

    fn on_client(&mut self, i: usize, rev: PollFlags) {
        if rev.contains(PollFlags::POLLIN) || rev.contains(PollFlags::POLLHUP) {
            let mut buf = [0u8; 16 * 1024];
            loop {
                let c = &mut self.clients[i];
                if c.read_closed || c.dead {
                    break;
                }
                match c.sock.read(&mut buf) {
                    Ok(0) => c.read_closed = true,
                    Ok(n) => {
                        c.dec.push(&buf[..n]);
                        self.handle_frames(i);
                        if self.stdin_buf.len() >= STDIN_BUF_MAX {
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => c.dead = true,
                }
            }
        }
        let c = &mut self.clients[i];
        if rev.intersects(PollFlags::POLLERR | PollFlags::POLLNVAL) {
            c.dead = true;
        }
        // Fully closed by the peer (a half-closed peer only shut its sending side).
        if rev.contains(PollFlags::POLLHUP) && c.read_closed {
            c.dead = true;
        }
        c.flush();
    }

    fn reply(&mut self, i: usize, kind: u8, payload: &[u8]) {
        let c = &mut self.clients[i];
        c.queue(&protocol::encode(kind, payload), true);
        c.flush();
    }

    fn handle_frames(&mut self, i: usize) {
        loop {
            let frame = match self.clients[i].dec.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(_) => {
                    self.clients[i].dead = true;
                    return;
                }
            };
            match frame.0 {
                protocol::START => self.start(i),
                protocol::STDIN if self.stdin.is_some() && !self.stdin_close => {
                    self.stdin_buf.extend_from_slice(&frame.1);
                    self.flush_stdin();
                }
                protocol::CLOSE_STDIN if self.stdin.is_some() && !self.stdin_close => {
                    self.stdin_close = true;
                    if self.cfg.tty {
                        // A pty has no half-close: send the EOF character (^D).
                        self.stdin_buf.push(0x04);
                    }
                    self.flush_stdin();
                }
                protocol::RESIZE => {
                    if let (Some(m), Ok(r)) =
                        (&self.master, serde_json::from_slice::<Resize>(&frame.1))
                    {
                        let _ = berth_sys::set_winsize(m.as_fd(), r.h, r.w);
                    }
                }
                _ => {} // unknown frames are ignored
            }
        }
    }

    fn start(&mut self, i: usize) {
        if !self.started {
            if let Some((code, _)) = &self.exit {
                let msg = format!(
                    "container {} has already exited with code {code}",
                    self.cfg.id
                );
                return self.reply(i, protocol::FAILED, msg.as_bytes());
            }
            if let Err(e) = self.rt.start(&self.cfg.id) {
                return self.reply(i, protocol::FAILED, e.0.as_bytes());
            }
            self.started = true;
        }
        let body = serde_json::to_vec(&Started { pid: self.pid }).unwrap_or_default();
        self.reply(i, protocol::STARTED, &body);
    }

    fn finish(&mut self) -> Result<ExitStatus, ShimError> {
        let now = Utc::now();
        self.out = [None, None];
        let _ = self.log.finish(now);
        let (code, finished_at) = self.exit.clone().unwrap_or((255, format_time(now)));
        let status = ExitStatus {
            exit_code: code,
            finished_at,
            oom_killed: self.oom_killed,
        };
        let body = serde_json::to_vec(&status).unwrap_or_default();
        let wrote = write_atomic(&self.cfg.exit_file, &body)
            .map_err(io_err(format!("write {}", self.cfg.exit_file.display())));
        // The runtime state and the socket are gone before anyone hears about the exit, so a
        // client may immediately create a container with the same id and socket path.
        if let Err(e) = self.rt.delete(&self.cfg.id) {
            eprintln!("berth-shim: delete {}: {e}", self.cfg.id);
        }
        self.listener = None;
        let _ = std::fs::remove_file(&self.cfg.socket);
        for c in &mut self.clients {
            c.queue(&protocol::encode(protocol::EXIT, &body), true);
            c.flush();
        }
        self.farewell();
        wrote?;
        Ok(status)
    }

    /// Delivers what is still queued for clients, for at most [`FAREWELL_TIMEOUT`].
    fn farewell(&mut self) {
        let deadline = Instant::now() + FAREWELL_TIMEOUT;
        loop {
            self.clients.retain(|c| !c.dead && !c.wbuf.is_empty());
            let left = deadline.saturating_duration_since(Instant::now());
            if self.clients.is_empty() || left.is_zero() {
                return;
            }
            let mut fds: Vec<PollFd> = self
                .clients
                .iter()
                .map(|c| PollFd::new(c.sock.as_fd(), PollFlags::POLLOUT))
                .collect();
            let ms = (left.as_millis() as i32).max(1);
            let _ = poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            );
            drop(fds);
            for c in &mut self.clients {
                c.flush();
            }
        }
    }
}
