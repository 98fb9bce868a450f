//! berth-shim: the per-container monitor (docs/DESIGN.md, "Shim").
//!
//! - [`protocol`]: the framed control protocol shared with the engine.
//! - [`jsonlog`]: the Docker json-file log writer (Go-compatible JSON escaping).
//! - [`runtime`]: the [`runtime::ContainerRuntime`] seam and the host-process test runtime.
//! - [`real`]: the production runtime (`berth_runtime_lib`) behind that seam.
//! - [`serve`]: the single-threaded poll loop (socket, stdio pumping, reaping, exit file).
//! - [`launch`]: the process berthd starts, which re-executes itself as the serving shim and
//!   relays its ready/error report.

pub mod jsonlog;
pub mod launch;
pub mod oom;
pub mod protocol;
pub mod real;
pub mod runtime;
pub mod serve;

pub use protocol::ExitStatus;
pub use real::OciRuntime;
pub use runtime::{ContainerIo, ContainerRuntime, Created, HostRuntime, RuntimeError};
pub use serve::{serve, Config, ShimError};
