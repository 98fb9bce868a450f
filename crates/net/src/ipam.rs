//! IPv4 address management: pools, gateways, ranges, static and aux addresses. Pure: the
//! caller persists the allocation set with the network record.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;
use serde::{Deserialize, Serialize};

/// Why an address cannot be had.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpamError {
    /// Bad CIDR or address text.
    #[error("invalid {what}: {value}")]
    Invalid {
        /// Which option.
        what: &'static str,
        /// The text.
        value: String,
    },
    /// Every address of the pool (or range) is taken.
    #[error("no available IPv4 addresses on this network's address pools: {0}")]
    Exhausted(String),
    /// `--ip` names a taken address.
    #[error("Address already in use")]
    InUse,
    /// `--ip`/`--gateway`/`--ip-range` outside the subnet.
    #[error("{what} {value} does not belong to subnet {subnet}")]
    Outside {
        /// Which option.
        what: &'static str,
        /// The address or range.
        value: String,
        /// The subnet.
        subnet: String,
    },
    /// No default pool is free.
    #[error("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")]
    NoPool,
}

/// One IPAM configuration of a network (`docker network create --subnet ... --gateway ...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// The subnet.
    pub subnet: Ipv4Network,
    /// The gateway (the bridge's address).
    pub gateway: Ipv4Addr,
    /// Dynamic allocations come from here (default: the subnet).
    pub range: Option<Ipv4Network>,
    /// Addresses reserved by `--aux-address`.
    pub aux: Vec<Ipv4Addr>,
}

fn parse_net(what: &'static str, s: &str) -> Result<Ipv4Network, IpamError> {
    let n: Ipv4Network = s.parse().map_err(|_| IpamError::Invalid {
        what,
        value: s.to_string(),
    })?;
    // Normalise to the network address, as dockerd does (`10.1.2.3/24` -> `10.1.2.0/24`).
    Ipv4Network::new(n.network(), n.prefix()).map_err(|_| IpamError::Invalid {
        what,
        value: s.to_string(),
    })
}

fn parse_ip(what: &'static str, s: &str) -> Result<Ipv4Addr, IpamError> {
    s.parse().map_err(|_| IpamError::Invalid {
        what,
        value: s.to_string(),
    })
}

impl Pool {
    /// A pool from `--subnet`, `--gateway`, `--ip-range` and `--aux-address` values.
    pub fn from_config(
        subnet: &str,
        gateway: Option<&str>,
        range: Option<&str>,
        aux: &[String],
    ) -> Result<Pool, IpamError> {
        let subnet = parse_net("subnet", subnet)?;
        if subnet.prefix() > 30 {
            return Err(IpamError::Invalid {
                what: "subnet (too small)",
                value: subnet.to_string(),
            });
        }
        let outside = |what, v: String| IpamError::Outside {
            what,
            value: v,
            subnet: subnet.to_string(),
        };
        let gateway = match gateway.filter(|g| !g.is_empty()) {
            Some(g) => {
                let g = parse_ip("gateway", g)?;
                if !subnet.contains(g) {
                    return Err(outside("gateway", g.to_string()));
                }
                g
            }
            None => first_host(subnet),
        };
        let range = match range.filter(|r| !r.is_empty()) {
            Some(r) => {
                let r = parse_net("ip-range", r)?;
                if !subnet.contains(r.network()) || r.prefix() < subnet.prefix() {
                    return Err(outside("ip-range", r.to_string()));
                }
                Some(r)
            }
            None => None,
        };
        let mut auxv = Vec::new();
        for a in aux {
            // dockerd's form is name=ip
            let ip = a.rsplit('=').next().unwrap_or(a);
            let ip = parse_ip("aux-address", ip)?;
            if !subnet.contains(ip) {
                return Err(outside("aux-address", ip.to_string()));
            }
            auxv.push(ip);
        }
        Ok(Pool {
            subnet,
            gateway,
            range,
            aux: auxv,
        })
    }

    /// Addresses never handed out: network, broadcast, gateway, aux.
    fn reserved(&self, ip: Ipv4Addr) -> bool {
        ip == self.subnet.network()
            || ip == self.subnet.broadcast()
            || ip == self.gateway
            || self.aux.contains(&ip)
    }

    /// Allocates `requested` (must be free and inside the subnet) or the lowest free address of
    /// the range after `last` (dockerd hands addresses out in order and wraps around).
    pub fn allocate(
        &self,
        used: &BTreeSet<Ipv4Addr>,
        requested: Option<Ipv4Addr>,
        last: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr, IpamError> {
        if let Some(ip) = requested {
            if !self.subnet.contains(ip) {
                return Err(IpamError::Outside {
                    what: "requested address",
                    value: ip.to_string(),
                    subnet: self.subnet.to_string(),
                });
            }
            if used.contains(&ip) || self.reserved(ip) {
                return Err(IpamError::InUse);
            }
            return Ok(ip);
        }
        let r = self.range.unwrap_or(self.subnet);
        let lo = u32::from(r.network());
        let hi = u32::from(r.broadcast());
        let size = (hi - lo + 1) as u64;
        let start = last
            .map(u32::from)
            .filter(|l| *l >= lo && *l <= hi)
            .map(|l| (l - lo + 1) as u64)
            .unwrap_or(0);
        for i in 0..size {
            let ip = Ipv4Addr::from(lo + ((start + i) % size) as u32);
            let range_edge = self.range.is_some() && (ip == r.network() || ip == r.broadcast());
            if !self.reserved(ip) && !range_edge && !used.contains(&ip) {
                return Ok(ip);
            }
        }
        Err(IpamError::Exhausted(self.subnet.to_string()))
    }
}

/// The first host address of a subnet (dockerd's default gateway).
pub fn first_host(n: Ipv4Network) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(n.network()) + 1)
}

/// The default address pools, in dockerd's order: 172.17-31.0.0/16, then 192.168.0-240.0/20.
pub fn default_pools() -> impl Iterator<Item = Ipv4Network> {
    let a = (17..=31).map(|b| Ipv4Network::new(Ipv4Addr::new(172, b, 0, 0), 16).expect("valid"));
    let c =
        (0..16).map(|i| Ipv4Network::new(Ipv4Addr::new(192, 168, i * 16, 0), 20).expect("valid"));
    a.chain(c)
}

fn overlaps(a: Ipv4Network, b: Ipv4Network) -> bool {
    a.contains(b.network()) || b.contains(a.network())
}

/// The first default pool overlapping none of `taken` (other networks' subnets and the host's
/// routes).
pub fn pick_default(taken: &[Ipv4Network]) -> Result<Ipv4Network, IpamError> {
    default_pools()
        .find(|p| !taken.iter().any(|t| overlaps(*p, *t)))
        .ok_or(IpamError::NoPool)
}

/// Whether two subnets overlap (`docker network create` refuses overlapping pools).
pub fn subnets_overlap(a: Ipv4Network, b: Ipv4Network) -> bool {
    overlaps(a, b)
}

/// dockerd's MAC for an IPv4 endpoint: 02:42 followed by the address.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// `aa:bb:..` text of a MAC.
pub fn mac_text(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let v: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    v.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn allocation_order_reservations_and_wrap() {
        let p = Pool::from_config("10.5.0.0/29", None, None, &["host1=10.5.0.3".into()]).unwrap();
        assert_eq!(p.gateway, ip("10.5.0.1"));
        let mut used = BTreeSet::new();
        let mut last = None;
        let mut got = vec![];
        while let Ok(a) = p.allocate(&used, None, last) {
            used.insert(a);
            last = Some(a);
            got.push(a.to_string());
        }
        assert_eq!(got, ["10.5.0.2", "10.5.0.4", "10.5.0.5", "10.5.0.6"]);
        assert_eq!(
            p.allocate(&used, None, last),
            Err(IpamError::Exhausted("10.5.0.0/29".into()))
        );
        used.remove(&ip("10.5.0.4"));
        assert_eq!(p.allocate(&used, None, last).unwrap(), ip("10.5.0.4"));
        // freed addresses are reused only after the ones not yet handed out
        let mut used = BTreeSet::from([ip("10.5.0.2")]);
        used.insert(ip("10.5.0.4"));
        used.remove(&ip("10.5.0.2"));
        assert_eq!(
            p.allocate(&used, None, Some(ip("10.5.0.4"))).unwrap(),
            ip("10.5.0.5")
        );
    }

    #[test]
    fn static_and_range_and_errors() {
        let p =
            Pool::from_config("10.9.0.0/16", Some("10.9.0.254"), Some("10.9.4.0/24"), &[]).unwrap();
        let used = BTreeSet::new();
        assert_eq!(p.allocate(&used, None, None).unwrap(), ip("10.9.4.1"));
        assert_eq!(
            p.allocate(&used, Some(ip("10.9.7.7")), None).unwrap(),
            ip("10.9.7.7")
        );
        assert_eq!(
            p.allocate(&used, Some(ip("10.9.0.254")), None),
            Err(IpamError::InUse)
        );
        assert!(matches!(
            p.allocate(&used, Some(ip("10.8.0.1")), None),
            Err(IpamError::Outside { .. })
        ));
        assert!(Pool::from_config("10.9.0.0/16", Some("10.10.0.1"), None, &[]).is_err());
        assert!(Pool::from_config("10.9.0.0/16", None, Some("10.10.0.0/24"), &[]).is_err());
        assert!(Pool::from_config("nonsense", None, None, &[]).is_err());
        assert_eq!(
            Pool::from_config("10.1.2.3/24", None, None, &[])
                .unwrap()
                .subnet
                .to_string(),
            "10.1.2.0/24"
        );
    }

    #[test]
    fn default_pool_skips_taken() {
        let taken = [
            "172.17.0.0/16".parse().unwrap(),
            "172.18.5.0/24".parse().unwrap(),
        ];
        assert_eq!(pick_default(&taken).unwrap().to_string(), "172.19.0.0/16");
        assert_eq!(mac_text(&mac_for(ip("172.17.0.2"))), "02:42:ac:11:00:02");
        assert_eq!(
            parse_mac("02:42:ac:11:00:02"),
            Some(mac_for(ip("172.17.0.2")))
        );
    }
}
