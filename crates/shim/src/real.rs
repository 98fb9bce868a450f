//! [`ContainerRuntime`] over `berth_runtime_lib::Runtime`, the production runtime.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_runtime_lib::{CreateOpts, Runtime};

use crate::runtime::{ContainerIo, ContainerRuntime, Created, RuntimeError};

/// The real OCI runtime. With a terminal, the container init creates its pty inside the
/// container (its own devpts) and sends the master over a console socket, like runc.
pub struct OciRuntime {
    rt: Runtime,
    console_socket: PathBuf,
}

impl OciRuntime {
    /// `root` is the runtime state root; `console_socket` a path where a temporary socket may be
    /// created (it is removed again).
    pub fn new(root: impl Into<PathBuf>, console_socket: impl Into<PathBuf>) -> Self {
        Self {
            rt: Runtime::new(root),
            console_socket: console_socket.into(),
        }
    }

    fn devnull3() -> Result<[OwnedFd; 3], RuntimeError> {
        let open = || {
            std::fs::File::options()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map(OwnedFd::from)
                .map_err(|e| RuntimeError(format!("open /dev/null: {e}")))
        };
        Ok([open()?, open()?, open()?])
    }

    fn create_with_console(&mut self, id: &str, bundle: &Path) -> Result<Created, RuntimeError> {
        let path = &self.console_socket;
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)
            .map_err(|e| RuntimeError(format!("console socket {}: {e}", path.display())))?;
        let opts = CreateOpts {
            stdio: Some(Self::devnull3()?),
            pid_file: None,
            console_socket: Some(path.clone()),
            no_pivot: false,
        };
        let res = self.rt.create(id, bundle, opts);
        let _ = std::fs::remove_file(path);
        let state = res.map_err(|e| RuntimeError(e.to_string()))?;
        // The init connected and sent the master during create; nothing should block here.
        let fail = |rt: &Runtime, msg: String| {
            let _ = rt.delete(id, true);
            RuntimeError(msg)
        };
        if let Err(e) = listener.set_nonblocking(true) {
            return Err(fail(&self.rt, format!("console socket: {e}")));
        }
        let conn = match listener.accept() {
            Ok((c, _)) => c,
            Err(e) => {
                return Err(fail(
                    &self.rt,
                    format!("no console received (is process.terminal set?): {e}"),
                ));
            }
        };
        let _ = conn.set_nonblocking(false);
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        match berth_sys::recv_fd(std::os::fd::AsFd::as_fd(&conn)) {
            Ok((master, _name)) => Ok(Created {
                pid: state.pid,
                console: Some(master),
            }),
            Err(e) => Err(fail(&self.rt, format!("receive console master: {e}"))),
        }
    }
}

impl ContainerRuntime for OciRuntime {
    fn create(
        &mut self,
        id: &str,
        bundle: &Path,
        io: ContainerIo,
    ) -> Result<Created, RuntimeError> {
        match io {
            ContainerIo::Pipes(fds) => {
                let opts = CreateOpts {
                    stdio: Some(fds),
                    pid_file: None,
                    console_socket: None,
                    no_pivot: false,
                };
                let state = self
                    .rt
                    .create(id, bundle, opts)
                    .map_err(|e| RuntimeError(e.to_string()))?;
                Ok(Created {
                    pid: state.pid,
                    console: None,
                })
            }
            ContainerIo::Terminal => self.create_with_console(id, bundle),
        }
    }

    fn start(&mut self, id: &str) -> Result<(), RuntimeError> {
        self.rt.start(id).map_err(|e| RuntimeError(e.to_string()))
    }

    fn delete(&mut self, id: &str) -> Result<(), RuntimeError> {
        self.rt
            .delete(id, true)
            .map_err(|e| RuntimeError(e.to_string()))
    }
}
