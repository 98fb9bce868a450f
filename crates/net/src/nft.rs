//! Berth's own nftables table (`ip berth`). The whole table is a function of the engine's
//! state ([`Ruleset`]): every change replaces it in one netfilter transaction (add, delete,
//! re-add, in a single batch), so no rule is ever remembered only in memory and a daemon that
//! crashed leaves nothing a restart does not overwrite. Never touches another table.

use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;
use rustables::expr::{
    Bitwise, Cmp, CmpOp, HighLevelPayload, IPv4HeaderField, Immediate, Masquerade, Meta, MetaType,
    Nat, NatType, NetworkHeaderField, Register, TCPHeaderField, TransportHeaderField,
    UDPHeaderField,
};
use rustables::{
    Batch, Chain, ChainPolicy, ChainType, Hook, HookClass, MsgType, ProtocolFamily, Rule, Table,
};

use crate::NetError;

/// The table's name.
pub const TABLE: &str = "berth";

/// A bridge network's part in the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeRules {
    /// The bridge device.
    pub name: String,
    /// Its subnet.
    pub subnet: Ipv4Network,
    /// `--internal`: no traffic leaves the bridge, no masquerade.
    pub internal: bool,
    /// Masquerade traffic from the subnet leaving through other interfaces.
    pub masquerade: bool,
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }
    fn dport(self) -> TransportHeaderField {
        match self {
            Proto::Tcp => TransportHeaderField::Tcp(TCPHeaderField::Dport),
            Proto::Udp => TransportHeaderField::Udp(UDPHeaderField::Dport),
        }
    }
}

/// One published port: host `host_ip:host_port` -> `container_ip:container_port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    /// Protocol.
    pub proto: Proto,
    /// None: every local address.
    pub host_ip: Option<Ipv4Addr>,
    /// Host port.
    pub host_port: u16,
    /// Container address.
    pub container_ip: Ipv4Addr,
    /// Container port.
    pub container_port: u16,
}

/// Everything the table holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// Berth's bridges.
    pub bridges: Vec<BridgeRules>,
    /// Published ports.
    pub ports: Vec<PortRule>,
    /// The host's local IPv4 addresses (DNAT for a port published on 0.0.0.0 applies to
    /// packets addressed to any of them, as a `fib daddr type local` match would).
    pub local_addrs: Vec<Ipv4Addr>,
}

/// One rule as a list of match clauses and a verdict: the pure description that [`render`]
/// turns into text for tests and `apply` into netlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clause {
    /// `ip saddr <net>` / `ip daddr <net>`.
    Addr {
        /// Source (true) or destination.
        source: bool,
        /// The network (a /32 for one address).
        net: Ipv4Network,
    },
    /// `iifname`/`oifname` (`eq` false: `!=`).
    Iface {
        /// Input (true) or output interface.
        input: bool,
        /// Equal or not equal.
        eq: bool,
        /// Name.
        name: String,
    },
    /// `meta l4proto P th dport N`.
    Dport(Proto, u16),
    /// Verdict: `dnat to ip:port`.
    Dnat(Ipv4Addr, u16),
    /// Verdict: `masquerade`.
    Masquerade,
    /// Verdict: `drop`.
    Drop,
}

/// The rules of each chain: (chain, rules).
pub fn plan(rs: &Ruleset) -> Vec<(&'static str, Vec<Vec<Clause>>)> {
    use Clause::*;
    let host = |ip: Ipv4Addr| Ipv4Network::new(ip, 32).expect("/32");
    let mut dnat = Vec::new();
    for p in &rs.ports {
        let addrs: Vec<Ipv4Addr> = match p.host_ip {
            Some(a) => vec![a],
            None => rs.local_addrs.clone(),
        };
        for a in addrs {
            dnat.push(vec![
                Addr {
                    source: false,
                    net: host(a),
                },
                Dport(p.proto, p.host_port),
                Dnat(p.container_ip, p.container_port),
            ]);
        }
    }
    let mut post = Vec::new();
    for b in &rs.bridges {
        if b.masquerade && !b.internal {
            post.push(vec![
                Addr {
                    source: true,
                    net: b.subnet,
                },
                Iface {
                    input: false,
                    eq: false,
                    name: b.name.clone(),
                },
                Masquerade,
            ]);
        }
        // host loopback -> published port -> container (route_localnet on the bridge)
        post.push(vec![
            Addr {
                source: true,
                net: "127.0.0.0/8".parse().expect("cidr"),
            },
            Iface {
                input: false,
                eq: true,
                name: b.name.clone(),
            },
            Masquerade,
        ]);
    }
    for p in &rs.ports {
        // hairpin: a container reaching its own published port
        post.push(vec![
            Addr {
                source: true,
                net: host(p.container_ip),
            },
            Addr {
                source: false,
                net: host(p.container_ip),
            },
            Dport(p.proto, p.container_port),
            Masquerade,
        ]);
    }
    let mut fwd = Vec::new();
    for b in &rs.bridges {
        if b.internal {
            fwd.push(vec![
                Iface {
                    input: true,
                    eq: true,
                    name: b.name.clone(),
                },
                Iface {
                    input: false,
                    eq: false,
                    name: b.name.clone(),
                },
                Drop,
            ]);
            fwd.push(vec![
                Iface {
                    input: false,
                    eq: true,
                    name: b.name.clone(),
                },
                Iface {
                    input: true,
                    eq: false,
                    name: b.name.clone(),
                },
                Drop,
            ]);
        }
    }
    for a in &rs.bridges {
        for b in &rs.bridges {
            if a.name != b.name {
                fwd.push(vec![
                    Iface {
                        input: true,
                        eq: true,
                        name: a.name.clone(),
                    },
                    Iface {
                        input: false,
                        eq: true,
                        name: b.name.clone(),
                    },
                    Drop,
                ]);
            }
        }
    }
    vec![
        ("prerouting", dnat.clone()),
        ("output", dnat),
        ("postrouting", post),
        ("forward", fwd),
    ]
}

/// `nft list`-like text of the plan (for tests and `berthd --debug` logs).
pub fn render(rs: &Ruleset) -> String {
    let mut out = String::new();
    for (chain, rules) in plan(rs) {
        out.push_str(&format!("chain {chain}\n"));
        for r in rules {
            let parts: Vec<String> = r
                .iter()
                .map(|c| match c {
                    Clause::Addr { source, net } => {
                        let n = if net.prefix() == 32 {
                            net.ip().to_string()
                        } else {
                            net.to_string()
                        };
                        format!("ip {} {n}", if *source { "saddr" } else { "daddr" })
                    }
                    Clause::Iface { input, eq, name } => {
                        format!(
                            "{}{} \"{name}\"",
                            if *input { "iifname" } else { "oifname" },
                            if *eq { "" } else { " !=" }
                        )
                    }
                    Clause::Dport(p, n) => {
                        format!("{} dport {n}", if *p == Proto::Tcp { "tcp" } else { "udp" })
                    }
                    Clause::Dnat(ip, port) => format!("dnat to {ip}:{port}"),
                    Clause::Masquerade => "masquerade".into(),
                    Clause::Drop => "drop".into(),
                })
                .collect();
            out.push_str(&format!("  {}\n", parts.join(" ")));
        }
    }
    out
}

fn ifname_bytes(name: &str) -> Vec<u8> {
    let mut v = name.as_bytes().to_vec();
    v.push(0);
    v
}

fn build_rule(chain: &Chain, clauses: &[Clause]) -> Result<Rule, NetError> {
    let mut r = Rule::new(chain).map_err(|e| NetError::Nft(e.to_string()))?;
    for c in clauses {
        match c {
            Clause::Addr { source, net } => {
                // No `meta nfproto` guard: the table is `ip`, and nft's printer chokes on
                // one there.
                let field = if *source {
                    IPv4HeaderField::Saddr
                } else {
                    IPv4HeaderField::Daddr
                };
                r.add_expr(HighLevelPayload::Network(NetworkHeaderField::IPv4(field)).build());
                if net.prefix() < 32 {
                    r.add_expr(
                        Bitwise::new(net.mask().octets(), [0u8; 4])
                            .map_err(|e| NetError::Nft(e.to_string()))?,
                    );
                }
                r.add_expr(Cmp::new(CmpOp::Eq, net.network().octets()));
            }
            Clause::Iface { input, eq, name } => {
                r.add_expr(Meta::new(if *input {
                    MetaType::IifName
                } else {
                    MetaType::OifName
                }));
                r.add_expr(Cmp::new(
                    if *eq { CmpOp::Eq } else { CmpOp::Neq },
                    ifname_bytes(name),
                ));
            }
            Clause::Dport(p, port) => {
                r.add_expr(Meta::new(MetaType::L4Proto));
                r.add_expr(Cmp::new(CmpOp::Eq, [p.number()]));
                r.add_expr(HighLevelPayload::Transport(p.dport()).build());
                r.add_expr(Cmp::new(CmpOp::Eq, port.to_be_bytes()));
            }
            Clause::Dnat(ip, port) => {
                r.add_expr(Immediate::new_data(ip.octets().to_vec(), Register::Reg1));
                r.add_expr(Immediate::new_data(
                    port.to_be_bytes().to_vec(),
                    Register::Reg2,
                ));
                r.add_expr(
                    Nat::default()
                        .with_nat_type(NatType::DNat)
                        .with_family(ProtocolFamily::Ipv4)
                        .with_ip_register(Register::Reg1)
                        .with_port_register(Register::Reg2),
                );
            }
            Clause::Masquerade => r.add_expr(Masquerade {}),
            Clause::Drop => r = r.drop(),
        }
    }
    Ok(r)
}

/// Replaces the whole `ip berth` table with `rs`, atomically.
pub fn apply(rs: &Ruleset) -> Result<(), NetError> {
    apply_named(TABLE, rs)
}

/// [`apply`] for a table of another name (a second daemon on the host has its own).
pub fn apply_named(name: &str, rs: &Ruleset) -> Result<(), NetError> {
    let table = Table::new(ProtocolFamily::Ipv4).with_name(name);
    let mut batch = Batch::new();
    // add (a no-op when it exists) + delete + add: the old table goes whatever it held.
    batch.add(&table, MsgType::Add);
    batch.add(&table, MsgType::Del);
    batch.add(&table, MsgType::Add);
    let specs: [(&str, HookClass, i32, ChainType); 4] = [
        ("prerouting", HookClass::PreRouting, -100, ChainType::Nat),
        ("output", HookClass::Out, -100, ChainType::Nat),
        ("postrouting", HookClass::PostRouting, 100, ChainType::Nat),
        ("forward", HookClass::Forward, 0, ChainType::Filter),
    ];
    let mut chains = Vec::new();
    for (name, hook, prio, ty) in specs {
        let mut c = Chain::new(&table).with_name(name);
        c.set_hook(Hook::new(hook, prio));
        c.set_type(ty);
        c.set_policy(ChainPolicy::Accept);
        batch.add(&c, MsgType::Add);
        chains.push((name, c));
    }
    for (name, rules) in plan(rs) {
        let chain = &chains.iter().find(|(n, _)| *n == name).expect("chain").1;
        for clauses in rules {
            batch.add(&build_rule(chain, &clauses)?, MsgType::Add);
        }
    }
    batch
        .send()
        .map_err(|e| NetError::Nft(format!("{e}: {:?}", std::error::Error::source(&e))))
}

/// Inside a container's namespace (call from a thread that has joined it): the table
/// `berth-dns` that sends queries for 127.0.0.11:53 to the ports the embedded server really
/// listens on, so port 53 stays free for the container's own programs (as dockerd does).
pub fn apply_dns_redirect(dns: Ipv4Addr, udp_port: u16, tcp_port: u16) -> Result<(), NetError> {
    let table = Table::new(ProtocolFamily::Ipv4).with_name("berth-dns");
    let mut batch = Batch::new();
    batch.add(&table, MsgType::Add);
    let mut c = Chain::new(&table).with_name("output");
    c.set_hook(Hook::new(HookClass::Out, -100));
    c.set_type(ChainType::Nat);
    c.set_policy(ChainPolicy::Accept);
    batch.add(&c, MsgType::Add);
    let host = Ipv4Network::new(dns, 32).expect("/32");
    for (proto, port) in [(Proto::Udp, udp_port), (Proto::Tcp, tcp_port)] {
        let clauses = [
            Clause::Addr {
                source: false,
                net: host,
            },
            Clause::Dport(proto, 53),
            Clause::Dnat(dns, port),
        ];
        batch.add(&build_rule(&c, &clauses)?, MsgType::Add);
    }
    batch.send().map_err(|e| NetError::Nft(e.to_string()))
}

/// Deletes the table (daemon shutdown with no containers left, tests).
pub fn remove() -> Result<(), NetError> {
    remove_named(TABLE)
}

/// [`remove`] for a table of another name.
pub fn remove_named(name: &str) -> Result<(), NetError> {
    let table = Table::new(ProtocolFamily::Ipv4).with_name(name);
    let mut batch = Batch::new();
    batch.add(&table, MsgType::Add);
    batch.add(&table, MsgType::Del);
    batch.send().map_err(|e| NetError::Nft(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Ruleset {
        Ruleset {
            bridges: vec![
                BridgeRules {
                    name: "berth0".into(),
                    subnet: "172.17.0.0/16".parse().unwrap(),
                    internal: false,
                    masquerade: true,
                },
                BridgeRules {
                    name: "br-1".into(),
                    subnet: "172.18.0.0/16".parse().unwrap(),
                    internal: true,
                    masquerade: true,
                },
            ],
            ports: vec![PortRule {
                proto: Proto::Tcp,
                host_ip: None,
                host_port: 8080,
                container_ip: "172.17.0.2".parse().unwrap(),
                container_port: 80,
            }],
            local_addrs: vec!["127.0.0.1".parse().unwrap(), "172.17.0.1".parse().unwrap()],
        }
    }

    #[test]
    fn plan_text() {
        let t = render(&sample());
        assert!(t.contains("chain prerouting\n  ip daddr 127.0.0.1 tcp dport 8080 dnat to 172.17.0.2:80\n  ip daddr 172.17.0.1 tcp dport 8080 dnat to 172.17.0.2:80\n"), "{t}");
        assert!(
            t.contains("ip saddr 172.17.0.0/16 oifname != \"berth0\" masquerade"),
            "{t}"
        );
        // internal: no masquerade, fenced in both directions
        assert!(
            !t.contains("ip saddr 172.18.0.0/16 oifname != \"br-1\" masquerade"),
            "{t}"
        );
        assert!(
            t.contains("iifname \"br-1\" oifname != \"br-1\" drop"),
            "{t}"
        );
        assert!(
            t.contains("oifname \"br-1\" iifname != \"br-1\" drop"),
            "{t}"
        );
        // isolation both ways
        assert!(
            t.contains("iifname \"berth0\" oifname \"br-1\" drop"),
            "{t}"
        );
        assert!(
            t.contains("iifname \"br-1\" oifname \"berth0\" drop"),
            "{t}"
        );
        assert!(
            t.contains("ip saddr 172.17.0.2 ip daddr 172.17.0.2 tcp dport 80 masquerade"),
            "{t}"
        );
    }
}
