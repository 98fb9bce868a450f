//! Generated per-container files: /etc/hostname, /etc/hosts and /etc/resolv.conf, written as
//! dockerd writes them for a container without a network (the only mode so far).

use std::path::Path;

use crate::persist::write_atomic;

pub const HOSTS_BASE: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// The host's resolv.conf, as dockerd copies it into containers; loopback name servers are
/// dropped (they cannot be reached from a container's network namespace).
pub fn resolv_conf(host: &str) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let t = line.trim();
        if let Some(ns) = t.strip_prefix("nameserver") {
            let ns = ns.trim();
            if ns.starts_with("127.") || ns == "::1" {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str("\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

/// `mkdir -p` of `path` inside `root`, resolving every component inside the root
/// (openat2 `RESOLVE_IN_ROOT`), so symlinks in the image cannot point it outside. New
/// directories are root-owned 0755, as dockerd creates a missing working directory.
pub fn mkdir_in_root(root: &Path, path: &str) -> std::io::Result<()> {
    use std::os::fd::AsFd;
    let root_fd = std::fs::File::open(root)?;
    // Follow symlinks in scope first (as dockerd's FollowSymlinkInScope), then create.
    let resolved = berth_sys::resolve_in_root_path(root_fd.as_fd(), Path::new(path))?;
    let mut prefix = std::path::PathBuf::from("/");
    for comp in resolved.components() {
        let std::path::Component::Normal(name) = comp else {
            continue;
        };
        let parent = berth_sys::open_in_root(
            root_fd.as_fd(),
            &prefix,
            nix::libc::O_PATH | nix::libc::O_DIRECTORY,
            0,
        )?;
        prefix.push(name);
        match nix::sys::stat::mkdirat(
            Some(std::os::fd::AsRawFd::as_raw_fd(&parent)),
            name,
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        ) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // The final path must resolve to a directory inside the root.
    berth_sys::open_in_root(
        root_fd.as_fd(),
        &prefix,
        nix::libc::O_PATH | nix::libc::O_DIRECTORY,
        0,
    )?;
    Ok(())
}

pub fn write_all(dir: &Path, hostname: &str, extra_hosts: &[String]) -> std::io::Result<()> {
    write_atomic(&dir.join("hostname"), format!("{hostname}\n").as_bytes())?;
    let mut hosts = HOSTS_BASE.to_string();
    for h in extra_hosts {
        if let Some((name, ip)) = h.split_once(':') {
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    write_atomic(&dir.join("hosts"), hosts.as_bytes())?;
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    write_atomic(&dir.join("resolv.conf"), resolv_conf(&host).as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn mkdir_stays_inside_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        let outside = d.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("evil")).unwrap();
        super::mkdir_in_root(&root, "/evil/x/y").unwrap();
        assert!(root
            .join(d.path().strip_prefix("/").unwrap())
            .join("outside/x/y")
            .is_dir());
        assert!(!outside.join("x").exists(), "escaped the root");
        super::mkdir_in_root(&root, "/a/b/c").unwrap();
        assert!(root.join("a/b/c").is_dir());
    }

    #[test]
    fn resolv_drops_loopback() {
        let r = super::resolv_conf("search lan\nnameserver 127.0.0.53\nnameserver 10.0.0.1\n");
        assert_eq!(r, "search lan\nnameserver 10.0.0.1\n");
        let r = super::resolv_conf("nameserver 127.0.0.53\n");
        assert!(r.contains("nameserver 8.8.8.8"));
    }
}
