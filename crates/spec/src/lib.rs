//! Pure Docker semantics for Berth: no I/O, no async.
//!
//! * [`reference`]: image reference parsing/normalisation (`busybox` ->
//!   `docker.io/library/busybox:latest`) with Docker's error texts; id-prefix helpers.
//! * [`image`]: image config blobs ([`image::ImageConfig`]) with dockerd's JSON names.
//! * [`changes`]: `docker commit/import --change` instructions applied to a config.
//! * [`merge`]: image config + create request -> stored `Config` and the process
//!   (Path/Args/Env/cwd/user), exactly as dockerd; `--user` resolution from passwd/group
//!   contents.
//! * [`oci`]: [`oci::RunInput`] -> OCI runtime `config.json` ([`oci_spec::runtime::Spec`]) like
//!   dockerd + containerd generate it.
//! * [`security`]: `SecurityOpt`, Berth's default seccomp profile (`seccomp/default.json`),
//!   Docker-format seccomp profiles, host device entries.

pub mod changes;
pub mod image;
pub mod merge;
pub mod oci;
pub mod reference;
pub mod security;

pub use image::ImageConfig;
pub use reference::{Reference, ReferenceError};
