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
    fn resolv_drops_loopback() {
        let r = super::resolv_conf("search lan\nnameserver 127.0.0.53\nnameserver 10.0.0.1\n");
        assert_eq!(r, "search lan\nnameserver 10.0.0.1\n");
        let r = super::resolv_conf("nameserver 127.0.0.53\n");
        assert!(r.contains("nameserver 8.8.8.8"));
    }
}
