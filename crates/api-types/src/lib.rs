//! Serde models of the Docker Engine API, shared by `berthd` (server) and `berth-client`.
//!
//! * JSON names are exactly Docker's (PascalCase for most objects, lowercase for the progress
//!   stream and `ErrorResponse`).
//! * Every struct is `#[serde(default)]`: minimal bodies (docker-compose, docker-py) and explicit
//!   `null`s for scalar fields deserialize; unknown fields are ignored.
//! * Null vs empty follows dockerd: Go nil slices/maps are `Option<_>` here and serialise as
//!   `null` when `None`; Go `omitempty` fields are skipped when empty.
//! * `Cmd`, `Entrypoint`, `Shell`, `CapAdd`, `CapDrop` accept a string or an array (Go's
//!   `StrSlice`); `Entrypoint: None` (null/absent) differs from `Some([])` and `Some([""])`.
//! * [`Filters`] parses both shapes of the `filters` query parameter.
//!
//! No I/O here.

mod de;
pub mod strslice;

pub mod container;
pub mod filters;
pub mod image;
pub mod progress;
pub mod system;

pub use container::*;
pub use filters::{FilterError, Filters};
pub use image::*;
pub use progress::{ErrorDetail, ProgressDetail, ProgressMessage};
pub use system::*;
pub mod humanize;
