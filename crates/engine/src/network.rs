//! Networks and endpoints (docs/networking.md): the records (persisted under
//! `<data-root>/network/`), IPAM, and the kernel state made from them through `berth-net`:
//! a network namespace file per container, a veth per endpoint into the network's bridge (or a
//! macvlan link), the embedded DNS server, and Berth's nftables table, which is rebuilt from
//! the records after every change, so a restart after a crash removes every stale rule.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_api_types::{EndpointSettings, PortBinding, PortMap};
use berth_net::ipam::{self, Pool};
use berth_net::link::{IfaceConfig, Netlink};
use berth_net::nft::{self, BridgeRules, PortRule, Proto};
use berth_net::{dns, netns};
use chrono::{DateTime, Utc};
use ipnetwork::Ipv4Network;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::record::{Record, Status};
use crate::Engine;

/// One network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetRecord {
    pub id: String,
    pub name: String,
    /// bridge, macvlan, host, null.
    pub driver: String,
    pub created: DateTime<Utc>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub pool: Option<Pool>,
    /// The bridge device (bridge) or parent link (macvlan).
    #[serde(default)]
    pub device: String,
    /// ip -> container id (or "aux").
    #[serde(default)]
    pub allocations: BTreeMap<Ipv4Addr, String>,
    #[serde(default)]
    pub last: Option<Ipv4Addr>,
    /// Whether `--subnet` was given (IPAM Config shown as given).
    #[serde(default)]
    pub user_config: bool,
    #[serde(default)]
    pub ip_range: Option<String>,
}

impl NetRecord {
    fn is_bridge_like(&self) -> bool {
        self.driver == "bridge" || self.driver == "macvlan"
    }
    fn predefined(&self) -> bool {
        matches!(self.name.as_str(), "bridge" | "host" | "none")
    }
}

/// A running container's network state (not persisted: rebuilt from records at restart).
struct Active {
    netns: PathBuf,
    _dns: Option<dns::DnsServer>,
    /// Bound (not listening) sockets that reserve the published host ports.
    _ports: Vec<OwnedFd>,
    rules: Vec<PortRule>,
    /// (network id, interface name inside, host-side link name)
    ifaces: Vec<(String, String, String)>,
}

/// The engine's network state.
pub struct Networks {
    nets: Mutex<BTreeMap<String, NetRecord>>,
    active: Mutex<HashMap<String, Active>>,
    nl: tokio::sync::OnceCell<Netlink>,
    apply_lock: tokio::sync::Mutex<()>,
    /// Per-daemon names: the nftables table and the default bridge.
    pub table: String,
    pub default_bridge: String,
    dir: PathBuf,
    netns_dir: PathBuf,
}

/// What kind of network namespace a container gets.
pub enum NetMode {
    Host,
    None,
    Container(String),
    Networks,
}

pub fn net_mode(mode: &str) -> NetMode {
    match mode {
        "host" => NetMode::Host,
        "none" => NetMode::None,
        m if m.starts_with("container:") => NetMode::Container(m["container:".len()..].to_string()),
        _ => NetMode::Networks,
    }
}

fn new_id() -> String {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).expect("getrandom");
    hex::encode(b)
}

fn proto_of(key: &str) -> Result<(u16, Proto)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = match proto {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        p => return Err(Error::invalid(format!("invalid proto: {p}"))),
    };
    let port: u16 = port.parse().map_err(|_| Error::invalid(format!("invalid containerPort: {port}")))?;
    Ok((port, proto))
}

impl Networks {
    pub fn open(data_root: &Path, exec_root: &Path) -> Result<Networks> {
        let dir = data_root.join("network");
        std::fs::create_dir_all(&dir)?;
        let netns_dir = exec_root.join("netns");
        std::fs::create_dir_all(&netns_dir)?;
        // One berthd per host normally; a second one (tests, CI) gets its own names.
        let (table, default_bridge) = if exec_root == Path::new("/run/berth") {
            ("berth".to_string(), "berth0".to_string())
        } else {
            use sha2::Digest as _;
            let h = hex::encode(&sha2::Sha256::digest(exec_root.display().to_string().as_bytes())[..4]);
            (format!("berth-{h}"), format!("bh{h}"))
        };
        let mut nets = BTreeMap::new();
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                if e.path().extension().is_some_and(|x| x == "json") {
                    if let Ok(r) = std::fs::read(e.path()).map_err(|_| ()).and_then(|b| serde_json::from_slice::<NetRecord>(&b).map_err(|_| ())) {
                        nets.insert(r.id.clone(), r);
                    }
                }
            }
        }
        Ok(Networks {
            nets: Mutex::new(nets),
            active: Mutex::new(HashMap::new()),
            nl: tokio::sync::OnceCell::new(),
            apply_lock: tokio::sync::Mutex::new(()),
            table,
            default_bridge,
            dir,
            netns_dir,
        })
    }

    async fn nl(&self) -> Result<&Netlink> {
        self.nl
            .get_or_try_init(|| async { Netlink::new().map_err(|e| Error::internal(e.to_string())) })
            .await
    }

    fn persist(&self, r: &NetRecord) -> Result<()> {
        crate::persist::write_json(&self.dir.join(format!("{}.json", r.id)), r)?;
        Ok(())
    }

    /// Finds a network by full id, name, or unique id prefix.
    pub fn find(&self, key: &str) -> Result<NetRecord> {
        let nets = self.nets.lock().expect("lock");
        if let Some(n) = nets.get(key) {
            return Ok(n.clone());
        }
        if let Some(n) = nets.values().find(|n| n.name == key) {
            return Ok(n.clone());
        }
        let hits: Vec<_> = nets.values().filter(|n| !key.is_empty() && n.id.starts_with(key)).collect();
        match hits.len() {
            1 => Ok(hits[0].clone()),
            0 => Err(Error::new(ErrorKind::NotFound, format!("network {key} not found"))),
            _ => Err(Error::new(ErrorKind::NotFound, format!("network {key} is ambiguous ({} matches found based on ID prefix)", hits.len()))),
        }
    }

    pub fn list(&self) -> Vec<NetRecord> {
        let mut v: Vec<_> = self.nets.lock().expect("lock").values().cloned().collect();
        v.sort_by_key(|n| n.created);
        v
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut NetRecord) -> Result<()>) -> Result<NetRecord> {
        let mut nets = self.nets.lock().expect("lock");
        let n = nets.get_mut(id).ok_or_else(|| Error::new(ErrorKind::NotFound, format!("network {id} not found")))?;
        let mut copy = n.clone();
        f(&mut copy)?;
        self.persist(&copy)?;
        *n = copy.clone();
        Ok(copy)
    }

    pub fn netns_path(&self, container_id: &str) -> Option<PathBuf> {
        self.active.lock().expect("lock").get(container_id).map(|a| a.netns.clone())
    }
}

/// Names a container answers to on a network (DNS): its name, aliases, short id.
fn dns_names(rec: &Record, ep: &EndpointSettings) -> Vec<String> {
    let mut v = vec![rec.name.clone(), rec.id[..12].to_string()];
    for a in ep.aliases.iter().flatten() {
        v.push(a.clone());
    }
    if !rec.config.hostname.is_empty() && rec.config.hostname != rec.id[..12] {
        v.push(rec.config.hostname.clone());
    }
    v.iter().map(|s| s.to_ascii_lowercase()).collect::<BTreeSet<_>>().into_iter().collect()
}

/// The embedded DNS view of one container.
struct ContainerLookup {
    engine: std::sync::Weak<Engine>,
    id: String,
    upstreams: Vec<SocketAddr>,
}

impl dns::Lookup for ContainerLookup {
    fn lookup(&self, name: &str) -> Option<Vec<Ipv4Addr>> {
        let engine = self.engine.upgrade()?;
        let me = engine.container(&self.id).ok()?.snapshot();
        let my_nets: BTreeSet<String> = me.networks.values().map(|e| e.network_id.clone()).collect();
        let mut out = Vec::new();
        for c in engine.all_containers() {
            let r = c.snapshot();
            if !matches!(r.state.status, Status::Running | Status::Paused | Status::Restarting) {
                continue;
            }
            for ep in r.networks.values() {
                if !my_nets.contains(&ep.network_id) || ep.ip_address.is_empty() {
                    continue;
                }
                if dns_names(&r, ep).iter().any(|n| n == name) {
                    if let Ok(ip) = ep.ip_address.parse() {
                        if !out.contains(&ip) {
                            out.push(ip);
                        }
                    }
                }
            }
        }
        (!out.is_empty()).then_some(out)
    }
    fn upstreams(&self) -> Vec<SocketAddr> {
        self.upstreams.clone()
    }
}

impl Engine {
    /// Creates the predefined networks (bridge, host, none) if missing and rebuilds the kernel
    /// state of containers that survived a restart; removes stale namespace files.
    pub(crate) async fn net_init(self: &Arc<Self>) -> Result<()> {
        let n = &self.net;
        let have = |name: &str| n.list().iter().any(|r| r.name == name);
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if !have(name) {
                let r = NetRecord {
                    id: new_id(),
                    name: name.into(),
                    driver: driver.into(),
                    created: Utc::now(),
                    internal: false,
                    attachable: false,
                    options: BTreeMap::new(),
                    labels: BTreeMap::new(),
                    pool: None,
                    device: String::new(),
                    allocations: BTreeMap::new(),
                    last: None,
                    user_config: false,
                    ip_range: None,
                };
                n.persist(&r)?;
                n.nets.lock().expect("lock").insert(r.id.clone(), r);
            }
        }
        if !have("bridge") {
            let subnet = self.pick_subnet().await?;
            let opts: BTreeMap<String, String> = [
                ("com.docker.network.bridge.default_bridge", "true"),
                ("com.docker.network.bridge.enable_icc", "true"),
                ("com.docker.network.bridge.enable_ip_masquerade", "true"),
                ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
                ("com.docker.network.bridge.name", n.default_bridge.as_str()),
                ("com.docker.network.driver.mtu", "1500"),
            ]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
            let r = NetRecord {
                id: new_id(),
                name: "bridge".into(),
                driver: "bridge".into(),
                created: Utc::now(),
                internal: false,
                attachable: false,
                options: opts,
                labels: BTreeMap::new(),
                pool: Some(Pool::from_config(&subnet.to_string(), None, None, &[]).map_err(|e| Error::internal(e.to_string()))?),
                device: n.default_bridge.clone(),
                allocations: BTreeMap::new(),
                last: None,
                user_config: false,
                ip_range: None,
            };
            n.persist(&r)?;
            n.nets.lock().expect("lock").insert(r.id.clone(), r);
        }
        // Allocations of containers that are not running any more are stale (a crash).
        let running: BTreeSet<String> = self
            .all_containers()
            .iter()
            .map(|c| c.snapshot())
            .filter(|r| matches!(r.state.status, Status::Running | Status::Paused | Status::Restarting))
            .map(|r| r.id)
            .collect();
        for r in n.list() {
            if r.allocations.values().any(|o| o != "aux" && !running.contains(o)) {
                let _ = n.update(&r.id, |r| {
                    r.allocations.retain(|_, o| o == "aux" || running.contains(o));
                    Ok(())
                });
            }
        }
        // Namespace files of containers that are gone.
        if let Ok(rd) = std::fs::read_dir(&n.netns_dir) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().to_string();
                if !running.contains(&id) {
                    netns::remove(&e.path());
                }
            }
        }
        // Survivors: rebuild DNS servers, port reservations and rules from their records.
        for id in &running {
            let Ok(c) = self.container(id) else { continue };
            let rec = c.snapshot();
            let path = n.netns_dir.join(id);
            if !matches!(net_mode(&rec.host_config.network_mode), NetMode::Networks) || !path.exists() {
                continue;
            }
            let (rules, fds) = match self.publish_ports(&rec, true) {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("ports of {id}: {e}");
                    (Vec::new(), Vec::new())
                }
            };
            let dns = self.start_dns(&rec, &path);
            let ifaces = rec
                .networks
                .values()
                .filter(|e| !e.network_id.is_empty() && !e.ip_address.is_empty())
                .enumerate()
                .map(|(i, e)| (e.network_id.clone(), format!("eth{i}"), String::new()))
                .collect();
            n.active.lock().expect("lock").insert(
                id.clone(),
                Active { netns: path, _dns: dns, _ports: fds, rules, ifaces },
            );
        }
        if n.list().iter().any(|r| r.driver == "bridge") {
            for r in n.list().iter().filter(|r| r.driver == "bridge") {
                if let Err(e) = self.ensure_bridge(r).await {
                    tracing::warn!("bridge {}: {e}", r.device);
                }
            }
        }
        self.apply_rules().await
    }

    async fn pick_subnet(&self) -> Result<Ipv4Network> {
        let nl = self.net.nl().await?;
        let mut taken = nl.ipv4_routes().await.map_err(|e| Error::internal(e.to_string()))?;
        taken.extend(nl.ipv4_addrs().await.map_err(|e| Error::internal(e.to_string()))?);
        taken.retain(|t| t.prefix() > 0);
        for r in self.net.list() {
            if let Some(p) = &r.pool {
                taken.push(p.subnet);
            }
        }
        ipam::pick_default(&taken).map_err(|e| Error::invalid(e.to_string()))
    }

    async fn ensure_bridge(&self, r: &NetRecord) -> Result<()> {
        let Some(pool) = &r.pool else { return Ok(()) };
        let gw = Ipv4Network::new(pool.gateway, pool.subnet.prefix()).map_err(|e| Error::internal(e.to_string()))?;
        self.net.nl().await?.ensure_bridge(&r.device, gw).await.map_err(|e| Error::internal(e.to_string()))?;
        let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", "1");
        let _ = std::fs::write(format!("/proc/sys/net/ipv4/conf/{}/route_localnet", r.device), "1");
        Ok(())
    }

    /// Rebuilds Berth's nftables table from the networks and the running containers' ports.
    pub(crate) async fn apply_rules(&self) -> Result<()> {
        let _g = self.net.apply_lock.lock().await;
        let nl = self.net.nl().await?;
        let mut local: Vec<Ipv4Addr> = nl
            .ipv4_addrs()
            .await
            .map_err(|e| Error::internal(e.to_string()))?
            .into_iter()
            .map(|n| n.ip())
            .collect();
        local.sort();
        local.dedup();
        let bridges = self
            .net
            .list()
            .into_iter()
            .filter(|r| r.driver == "bridge")
            .filter_map(|r| {
                r.pool.as_ref().map(|p| BridgeRules {
                    name: r.device.clone(),
                    subnet: p.subnet,
                    internal: r.internal,
                    masquerade: r.options.get("com.docker.network.bridge.enable_ip_masquerade").map(|v| v != "false").unwrap_or(true),
                })
            })
            .collect();
        let ports = self.net.active.lock().expect("lock").values().flat_map(|a| a.rules.clone()).collect();
        let rs = nft::Ruleset { bridges, ports, local_addrs: local };
        let table = self.net.table.clone();
        tokio::task::spawn_blocking(move || nft::apply_named(&table, &rs))
            .await
            .map_err(|e| Error::internal(e.to_string()))?
            .map_err(|e| Error::internal(e.to_string()))
    }

    fn start_dns(self: &Arc<Self>, rec: &Record, netns_path: &Path) -> Option<dns::DnsServer> {
        let ups = match rec.host_config.dns.as_deref().filter(|d| !d.is_empty()) {
            Some(d) => d.iter().filter_map(|a| a.parse::<std::net::IpAddr>().ok()).map(|ip| SocketAddr::new(ip, 53)).collect(),
            None => dns::upstreams_from_resolv_conf(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()),
        };
        let lookup = Arc::new(ContainerLookup { engine: Arc::downgrade(self), id: rec.id.clone(), upstreams: ups });
        match dns::DnsServer::start(netns_path, lookup) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("embedded DNS for {}: {e}", rec.id);
                None
            }
        }
    }

    /// Port rules and host-port reservations for `rec` (whose endpoints have addresses).
    /// Ephemeral host ports are chosen here and written back into `rec.ports` by the caller.
    fn publish_ports(&self, rec: &Record, restoring: bool) -> Result<(Vec<PortRule>, Vec<OwnedFd>)> {
        let Some(ip) = rec.networks.values().find_map(|e| e.ip_address.parse::<Ipv4Addr>().ok()) else {
            return Ok((Vec::new(), Vec::new()));
        };
        let mut rules = Vec::new();
        let mut fds = Vec::new();
        for (key, binds) in &rec.ports {
            let (cport, proto) = proto_of(key)?;
            for b in binds.iter().flatten() {
                let host_ip: Option<Ipv4Addr> = match b.host_ip.as_str() {
                    "" | "0.0.0.0" => None,
                    s => match s.parse() {
                        Ok(a) => Some(a),
                        Err(_) => continue, // IPv6 bindings: not yet
                    },
                };
                let hport: u16 = b.host_port.parse().unwrap_or(0);
                match reserve_port(proto, host_ip, hport) {
                    Ok(fd) => fds.push(fd),
                    Err(e) if !restoring => {
                        return Err(Error::internal(format!(
                            "driver failed programming external connectivity on endpoint {} ({}): failed to bind host port for {}:{}:{}:{}/{}: {e}",
                            rec.name,
                            &rec.id,
                            host_ip.map(|a| a.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
                            hport,
                            ip,
                            cport,
                            if proto == Proto::Tcp { "tcp" } else { "udp" }
                        )))
                    }
                    Err(_) => {}
                }
                rules.push(PortRule { proto, host_ip, host_port: hport, container_ip: ip, container_port: cport });
            }
        }
        Ok((rules, fds))
    }

    /// The actual bindings of a container about to start: `-p` ones with ephemeral ports
    /// resolved, plus `-P` for every exposed port.
    fn resolve_bindings(&self, rec: &Record) -> Result<PortMap> {
        let mut out: PortMap = BTreeMap::new();
        let mut wanted: Vec<(String, PortBinding)> = Vec::new();
        for (k, v) in rec.host_config.port_bindings.iter().flatten() {
            let key = if k.contains('/') { k.clone() } else { format!("{k}/tcp") };
            let list = v.clone().unwrap_or_default();
            if list.is_empty() {
                wanted.push((key.clone(), PortBinding::default()));
            }
            for b in list {
                wanted.push((key.clone(), b));
            }
        }
        if rec.host_config.publish_all_ports {
            for k in rec.config.exposed_ports.iter().flat_map(|m| m.keys()) {
                let key = if k.contains('/') { k.clone() } else { format!("{k}/tcp") };
                if !wanted.iter().any(|(w, _)| *w == key) {
                    wanted.push((key, PortBinding::default()));
                }
            }
        }
        for (key, mut b) in wanted {
            let (_, proto) = proto_of(&key)?;
            let host_ip: Option<Ipv4Addr> = match b.host_ip.as_str() {
                "" | "0.0.0.0" => None,
                s => s.parse().ok(),
            };
            // A range (`8000-8010:80`): the first free port of it.
            let (lo, hi) = match b.host_port.split_once('-') {
                Some((a, z)) => (a.parse::<u16>().unwrap_or(0), z.parse::<u16>().unwrap_or(0)),
                None => {
                    let p = b.host_port.parse::<u16>().unwrap_or(0);
                    (p, p)
                }
            };
            let port = if lo == 0 {
                // ephemeral: the kernel picks one that is free now
                let fd = reserve_port(proto, host_ip, 0).map_err(|e| Error::internal(format!("cannot allocate a host port: {e}")))?;
                bound_port(&fd)
            } else if hi > lo {
                (lo..=hi).find(|p| reserve_port(proto, host_ip, *p).is_ok()).unwrap_or(lo)
            } else {
                lo
            };
            b.host_port = port.to_string();
            if b.host_ip.is_empty() {
                b.host_ip = "0.0.0.0".into();
            }
            out.entry(key).or_insert_with(|| Some(Vec::new())).get_or_insert_with(Vec::new).push(b);
        }
        Ok(out)
    }

    /// Sets up the network namespace of a container about to start. Returns the namespace
    /// file to join (None: host namespace or a fresh one with only `lo`, as the spec says).
    pub(crate) async fn net_attach(self: &Arc<Self>, c: &Arc<crate::Container>) -> Result<Option<PathBuf>> {
        let rec = c.snapshot();
        match net_mode(&rec.host_config.network_mode) {
            NetMode::Host | NetMode::None => return Ok(None),
            NetMode::Container(other) => {
                let o = self.container(&other)?.snapshot();
                if o.state.status != Status::Running && o.state.status != Status::Paused {
                    return Err(Error::conflict(format!("cannot join network of a non running container: {}", o.id)));
                }
                if let Some(p) = self.net.netns_path(&o.id) {
                    return Ok(Some(p));
                }
                return Ok(Some(PathBuf::from(format!("/proc/{}/ns/net", o.state.pid))));
            }
            NetMode::Networks => {}
        }
        self.net_detach(&rec.id).await;
        let path = self.net.netns_dir.join(&rec.id);
        netns::create(&path).map_err(|e| Error::internal(e.to_string()))?;
        match self.net_attach_inner(c, &path).await {
            Ok(()) => Ok(Some(path)),
            Err(e) => {
                self.net_detach(&rec.id).await;
                Err(e)
            }
        }
    }

    async fn net_attach_inner(self: &Arc<Self>, c: &Arc<crate::Container>, path: &Path) -> Result<()> {
        let t0 = std::time::Instant::now();
        let rec = c.snapshot();
        let ports = self.resolve_bindings(&rec)?;
        let mut ifaces_rt = Vec::new();
        let mut cfgs = Vec::new();
        let mut gateway = None;
        let mut endpoints = rec.networks.clone();
        // primary network first (NetworkMode), then the rest by name
        let primary = match rec.host_config.network_mode.as_str() {
            "default" | "" => "bridge".to_string(),
            m => self.net.find(m).map(|n| n.name).unwrap_or_else(|_| m.to_string()),
        };
        let mut order: Vec<String> = endpoints.keys().cloned().collect();
        order.sort_by_key(|k| (*k != primary, k.clone()));
        let nl = self.net.nl().await?.clone();
        for (i, name) in order.iter().enumerate() {
            let ep = endpoints.get_mut(name).expect("key");
            let net = self.net.find(if ep.network_id.is_empty() { name } else { &ep.network_id })?;
            if !net.is_bridge_like() {
                continue;
            }
            let pool = net.pool.clone().ok_or_else(|| Error::internal("network without a pool"))?;
            let requested = ep
                .ipam_config
                .as_ref()
                .map(|c| c.ipv4_address.clone())
                .filter(|s| !s.is_empty())
                .map(|s| s.parse::<Ipv4Addr>().map_err(|_| Error::invalid(format!("invalid IPv4 address: {s}"))))
                .transpose()?;
            if requested.is_some() && !net.user_config {
                return Err(Error::invalid("user specified IP address is supported only when connecting to networks with user configured subnets"));
            }
            let t_alloc = std::time::Instant::now();
            let cid = rec.id.clone();
            let updated = self.net.update(&net.id, |r| {
                let used: BTreeSet<Ipv4Addr> = r.allocations.keys().copied().collect();
                let ip = pool.allocate(&used, requested, r.last).map_err(|e| Error::invalid(e.to_string()))?;
                r.allocations.insert(ip, cid.clone());
                if requested.is_none() {
                    r.last = Some(ip);
                }
                Ok(())
            })?;
            let ip = *updated.allocations.iter().find(|(_, o)| **o == rec.id).map(|(ip, _)| ip).expect("allocated");
            let mac = if !ep.mac_address.is_empty() {
                ipam::parse_mac(&ep.mac_address).ok_or_else(|| Error::invalid(format!("invalid MAC address: {}", ep.mac_address)))?
            } else if i == 0 && !rec.config.mac_address.is_empty() {
                ipam::parse_mac(&rec.config.mac_address).ok_or_else(|| Error::invalid(format!("invalid MAC address: {}", rec.config.mac_address)))?
            } else {
                ipam::mac_for(ip)
            };
            tracing::debug!(alloc_ms = t_alloc.elapsed().as_secs_f64() * 1e3, "allocated");
            let t_link = std::time::Instant::now();
            let suffix = &new_id()[..7];
            let host_name = format!("veth{suffix}");
            let tmp = format!("bpeer{suffix}");
            if net.driver == "bridge" {
                self.ensure_bridge(&net).await?;
                let br = nl
                    .index(&net.device)
                    .await
                    .map_err(|e| Error::internal(e.to_string()))?
                    .ok_or_else(|| Error::internal(format!("bridge {} is missing", net.device)))?;
                nl.veth_into(&host_name, &tmp, br, path).await.map_err(|e| Error::internal(e.to_string()))?;
            } else {
                nl.macvlan_into(&tmp, &net.device, path).await.map_err(|e| Error::internal(e.to_string()))?;
            }
            tracing::debug!(link_ms = t_link.elapsed().as_secs_f64() * 1e3, "linked");
            let ifname = format!("eth{i}");
            ifaces_rt.push((net.id.clone(), ifname.clone(), if net.driver == "bridge" { host_name } else { String::new() }));
            cfgs.push(IfaceConfig {
                from: tmp,
                name: ifname,
                mac,
                addr: Ipv4Network::new(ip, pool.subnet.prefix()).map_err(|e| Error::internal(e.to_string()))?,
            });
            if gateway.is_none() && !net.internal {
                gateway = Some(pool.gateway);
            }
            ep.network_id = net.id.clone();
            ep.endpoint_id = new_id();
            ep.ip_address = ip.to_string();
            ep.ip_prefix_len = pool.subnet.prefix() as i64;
            ep.gateway = if net.internal && net.driver == "bridge" { String::new() } else { pool.gateway.to_string() };
            ep.mac_address = ipam::mac_text(&mac);
            ep.dns_names = if net.name == "bridge" { None } else { Some(dns_names(&rec, ep)) };
        }
        let t_links = t0.elapsed();
        let inside = Netlink::in_netns(path).map_err(|e| Error::internal(e.to_string()))?;
        inside.configure(&cfgs, gateway).await.map_err(|e| Error::internal(e.to_string()))?;
        drop(inside);
        let t_inside = t0.elapsed();
        c.update(|r| {
            r.networks = endpoints.clone();
            r.ports = ports.clone();
        })?;
        let rec = c.snapshot();
        self.write_net_files(&rec)?;
        let t_files = t0.elapsed();
        let (rules, fds) = self.publish_ports(&rec, false)?;
        let has_rules = !rules.is_empty();
        let dns = self.start_dns(&rec, path);
        let t_dns = t0.elapsed();
        self.net.active.lock().expect("lock").insert(
            rec.id.clone(),
            Active { netns: path.to_path_buf(), _dns: dns, _ports: fds, rules, ifaces: ifaces_rt },
        );
        // The bridges' rules are in place since the networks were made: only ports change it.
        if has_rules {
            self.apply_rules().await?;
        }
        tracing::debug!(
            id = %rec.id,
            links_ms = t_links.as_secs_f64() * 1e3,
            inside_ms = t_inside.as_secs_f64() * 1e3,
            files_ms = t_files.as_secs_f64() * 1e3,
            dns_ms = t_dns.as_secs_f64() * 1e3,
            total_ms = t0.elapsed().as_secs_f64() * 1e3,
            "network attached"
        );
        Ok(())
    }

    /// Legacy `--link target:alias` on the default bridge: (alias, target) for each running
    /// target.
    fn links_of(&self, rec: &Record) -> Vec<(String, Arc<crate::Container>)> {
        let mut out = Vec::new();
        for l in rec.host_config.links.iter().flatten() {
            let (target, alias) = l.split_once(':').unwrap_or((l.as_str(), l.as_str()));
            let target = target.trim_start_matches('/');
            let alias = alias.rsplit('/').next().unwrap_or(alias);
            if let Ok(c) = self.container(target) {
                out.push((alias.to_string(), c));
            }
        }
        out
    }

    /// The environment variables `--link` gives, as dockerd does (`ALIAS_PORT_80_TCP=...`,
    /// `ALIAS_NAME`, `ALIAS_ENV_*`).
    pub(crate) fn link_env(&self, rec: &Record) -> Vec<String> {
        let mut env = Vec::new();
        for (alias, target) in self.links_of(rec) {
            let t = target.snapshot();
            let Some(ip) = t.networks.get("bridge").map(|e| e.ip_address.clone()).filter(|s| !s.is_empty()) else {
                continue;
            };
            let p = alias.to_uppercase().replace('-', "_");
            env.push(format!("{p}_NAME=/{}/{alias}", rec.name));
            let mut ports: Vec<(u16, String)> = t
                .config
                .exposed_ports
                .iter()
                .flat_map(|m| m.keys())
                .filter_map(|k| {
                    let (port, proto) = k.split_once('/').unwrap_or((k.as_str(), "tcp"));
                    Some((port.parse().ok()?, proto.to_string()))
                })
                .collect();
            ports.sort();
            if let Some((port, proto)) = ports.first() {
                env.push(format!("{p}_PORT={proto}://{ip}:{port}"));
            }
            for (port, proto) in &ports {
                let k = format!("{p}_PORT_{port}_{}", proto.to_uppercase());
                env.push(format!("{k}={proto}://{ip}:{port}"));
                env.push(format!("{k}_ADDR={ip}"));
                env.push(format!("{k}_PORT={port}"));
                env.push(format!("{k}_PROTO={proto}"));
            }
            for e in t.config.env.iter().flatten() {
                if let Some((k, v)) = e.split_once('=') {
                    if !matches!(k, "HOME" | "PATH" | "HOSTNAME") {
                        env.push(format!("{p}_ENV_{k}={v}"));
                    }
                }
            }
        }
        env
    }

    /// /etc/hosts and /etc/resolv.conf for a container on networks.
    fn write_net_files(&self, rec: &Record) -> Result<()> {
        let dir = self.cfg.container_dir(&rec.id);
        let ip = rec.networks.values().find(|e| !e.ip_address.is_empty()).map(|e| e.ip_address.clone());
        let bridge_gw = self.net.find("bridge").ok().and_then(|n| n.pool).map(|p| p.gateway.to_string()).unwrap_or_default();
        let mut hosts = crate::files::HOSTS_BASE.to_string();
        for h in rec.host_config.extra_hosts.iter().flatten() {
            if let Some((name, addr)) = h.split_once(':') {
                let addr = if addr == "host-gateway" { bridge_gw.as_str() } else { addr };
                hosts.push_str(&format!("{addr}\t{name}\n"));
            }
        }
        for (alias, target) in self.links_of(rec) {
            let t = target.snapshot();
            if let Some(tip) = t.networks.get("bridge").map(|e| e.ip_address.clone()).filter(|s| !s.is_empty()) {
                hosts.push_str(&format!("{tip}\t{alias} {} {}\n", &t.id[..12], t.name));
            }
        }
        if let Some(ip) = ip {
            let h = &rec.config.hostname;
            if rec.config.domainname.is_empty() {
                hosts.push_str(&format!("{ip}\t{h}\n"));
            } else {
                hosts.push_str(&format!("{ip}\t{h}.{} {h}\n", rec.config.domainname));
            }
        }
        crate::persist::write_atomic(&dir.join("hosts"), hosts.as_bytes())?;
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let mut search: Vec<String> = Vec::new();
        let mut options: Vec<String> = Vec::new();
        for l in host.lines() {
            let mut w = l.split_whitespace();
            match w.next() {
                Some("search") | Some("domain") => search = w.map(String::from).collect(),
                Some("options") => options = w.map(String::from).collect(),
                _ => {}
            }
        }
        if let Some(s) = rec.host_config.dns_search.as_ref().filter(|s| !s.is_empty()) {
            search = s.clone();
        }
        if let Some(o) = rec.host_config.dns_options.as_ref().filter(|o| !o.is_empty()) {
            options = o.clone();
        }
        if !options.iter().any(|o| o.starts_with("ndots:")) {
            options.push("ndots:0".into());
        }
        let mut rc = String::new();
        if !search.is_empty() && search != ["."] {
            rc.push_str(&format!("search {}\n", search.join(" ")));
        }
        rc.push_str("nameserver 127.0.0.11\n");
        rc.push_str(&format!("options {}\n", options.join(" ")));
        crate::persist::write_atomic(&dir.join("resolv.conf"), rc.as_bytes())?;
        Ok(())
    }

    /// Tears down a container's network state: DNS server, port reservations and rules,
    /// host-side links, addresses, the namespace file. Idempotent.
    pub(crate) async fn net_detach(self: &Arc<Self>, id: &str) {
        let active = self.net.active.lock().expect("lock").remove(id);
        let had_rules = active.as_ref().is_some_and(|a| !a.rules.is_empty());
        let mut hosts = Vec::new();
        if let Some(a) = active {
            hosts = a.ifaces.iter().map(|(_, _, h)| h.clone()).filter(|h| !h.is_empty()).collect();
            drop(a); // closes the DNS sockets, which hold the namespace
        }
        netns::remove(&self.net.netns_dir.join(id));
        // The kernel deletes the veth pairs with the namespace; deleting the host sides as
        // well makes sure, but off the exit path (each deletion waits an RCU grace period).
        if !hosts.is_empty() {
            let me = self.clone();
            tokio::spawn(async move {
                if let Ok(nl) = me.net.nl().await {
                    for h in hosts {
                        let _ = nl.delete(&h).await;
                    }
                }
            });
        }
        for r in self.net.list() {
            if r.allocations.values().any(|o| o == id) {
                let _ = self.net.update(&r.id, |r| {
                    r.allocations.retain(|_, o| o != id);
                    Ok(())
                });
            }
        }
        if let Ok(c) = self.container(id) {
            let _ = c.update(|r| {
                for ep in r.networks.values_mut() {
                    ep.endpoint_id.clear();
                    ep.ip_address.clear();
                    ep.ip_prefix_len = 0;
                    ep.gateway.clear();
                    ep.mac_address.clear();
                }
                r.ports.clear();
            });
        }
        if had_rules {
            if let Err(e) = self.apply_rules().await {
                tracing::warn!("nftables after {id} stopped: {e}");
            }
        }
    }

    /// The endpoints a new container starts with (create).
    pub(crate) fn initial_endpoints(
        &self,
        mode: &str,
        cfg: Option<&BTreeMap<String, EndpointSettings>>,
    ) -> Result<BTreeMap<String, EndpointSettings>> {
        let mut out = BTreeMap::new();
        let (name, net) = match net_mode(mode) {
            NetMode::Container(_) => return Ok(out),
            NetMode::Host => ("host".to_string(), self.net.find("host")?),
            NetMode::None => ("none".to_string(), self.net.find("none")?),
            NetMode::Networks => {
                let key = if mode == "default" || mode.is_empty() { "bridge" } else { mode };
                let n = self.net.find(key)?;
                (n.name.clone(), n)
            }
        };
        let mut ep = cfg
            .and_then(|m| m.get(&name).or_else(|| m.get(mode)).or_else(|| m.get(&net.id)))
            .cloned()
            .unwrap_or_default();
        if name == "bridge" && ep.aliases.as_ref().is_some_and(|a| !a.is_empty()) {
            return Err(Error::invalid("network-scoped alias is supported only for containers in user defined networks"));
        }
        if ep.ipam_config.as_ref().is_some_and(|c| !c.ipv4_address.is_empty()) && !net.user_config {
            return Err(Error::invalid("user specified IP address is supported only when connecting to networks with user configured subnets"));
        }
        ep.network_id = net.id.clone();
        out.insert(name, ep);
        Ok(out)
    }

    // ---------------------------------------------------------------- API

    /// `POST /networks/create`.
    pub async fn create_network(self: &Arc<Self>, body: &Value) -> Result<Value> {
        let name = body["Name"].as_str().unwrap_or("").to_string();
        if name.is_empty() {
            return Err(Error::invalid("network name is required"));
        }
        if !crate::names::valid_name(&name) {
            return Err(Error::invalid(format!("invalid network name \"{name}\", only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")));
        }
        if self.net.find(&name).is_ok_and(|n| n.name == name) {
            return Err(Error::conflict(format!("network with name {name} already exists")));
        }
        let driver = match body["Driver"].as_str().unwrap_or("") {
            "" => "bridge",
            d => d,
        }
        .to_string();
        if !matches!(driver.as_str(), "bridge" | "macvlan") {
            return Err(Error::new(ErrorKind::NotFound, format!("could not find plugin {driver} in v1 plugin registry: plugin not found")));
        }
        let options: BTreeMap<String, String> = serde_json::from_value(body["Options"].clone()).unwrap_or_default();
        let labels: BTreeMap<String, String> = serde_json::from_value(body["Labels"].clone()).unwrap_or_default();
        let cfgs = body["IPAM"]["Config"].as_array().cloned().unwrap_or_default();
        let v4 = cfgs.iter().find(|c| c["Subnet"].as_str().is_some_and(|s| !s.contains(':')));
        let (pool, user_config, ip_range) = match v4 {
            Some(c) => {
                let aux: Vec<String> = c["AuxiliaryAddresses"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect())
                    .unwrap_or_default();
                let p = Pool::from_config(
                    c["Subnet"].as_str().unwrap_or(""),
                    c["Gateway"].as_str(),
                    c["IPRange"].as_str(),
                    &aux,
                )
                .map_err(|e| Error::invalid(e.to_string()))?;
                for other in self.net.list() {
                    if let Some(op) = &other.pool {
                        if ipam::subnets_overlap(op.subnet, p.subnet) && other.driver == "bridge" && driver == "bridge" {
                            return Err(Error::new(ErrorKind::Forbidden, format!("Pool overlaps with other one on this address space")));
                        }
                    }
                }
                (p, true, c["IPRange"].as_str().filter(|s| !s.is_empty()).map(String::from))
            }
            None => {
                let s = self.pick_subnet().await?;
                (Pool::from_config(&s.to_string(), None, None, &[]).map_err(|e| Error::internal(e.to_string()))?, false, None)
            }
        };
        let id = new_id();
        let device = if driver == "macvlan" {
            let parent = options.get("parent").cloned().unwrap_or_default();
            if parent.is_empty() {
                return Err(Error::invalid("macvlan networks need a parent interface (-o parent=IFACE) on Berth"));
            }
            if self.net.nl().await?.index(&parent).await.map_err(|e| Error::internal(e.to_string()))?.is_none() {
                return Err(Error::invalid(format!("-o parent interface was not found on the host: {parent}")));
            }
            parent
        } else {
            options
                .get("com.docker.network.bridge.name")
                .cloned()
                .unwrap_or_else(|| format!("br-{}", &id[..12]))
        };
        let mut allocations = BTreeMap::new();
        for a in &pool.aux {
            allocations.insert(*a, "aux".to_string());
        }
        let r = NetRecord {
            id: id.clone(),
            name,
            driver,
            created: Utc::now(),
            internal: body["Internal"].as_bool().unwrap_or(false),
            attachable: body["Attachable"].as_bool().unwrap_or(false),
            options,
            labels,
            pool: Some(pool),
            device,
            allocations,
            last: None,
            user_config,
            ip_range,
        };
        if r.driver == "bridge" {
            self.ensure_bridge(&r).await?;
        }
        self.net.persist(&r)?;
        self.net.nets.lock().expect("lock").insert(id.clone(), r.clone());
        if let Err(e) = self.apply_rules().await {
            tracing::warn!("nftables: {e}");
        }
        self.events.publish(json!({
            "Type": "network", "Action": "create", "status": "create",
            "Actor": {"ID": id, "Attributes": {"name": r.name, "type": r.driver}},
            "scope": "local", "time": Utc::now().timestamp(), "timeNano": Utc::now().timestamp_nanos_opt().unwrap_or(0)
        }));
        Ok(json!({"Id": id, "Warning": ""}))
    }

    /// Containers with an endpoint on network `id`.
    fn members(&self, id: &str) -> Vec<Record> {
        self.all_containers()
            .into_iter()
            .map(|c| c.snapshot())
            .filter(|r| r.networks.values().any(|e| e.network_id == id))
            .collect()
    }

    /// `GET /networks/{id}` and list entries.
    pub fn network_json(&self, r: &NetRecord, with_containers: bool) -> Value {
        let mut ipam_cfg = Vec::new();
        if let Some(p) = &r.pool {
            let mut c = json!({"Subnet": p.subnet.to_string(), "Gateway": p.gateway.to_string()});
            if let Some(rg) = &r.ip_range {
                c["IPRange"] = json!(rg);
            }
            if !p.aux.is_empty() {
                c["AuxiliaryAddresses"] = json!(p.aux.iter().map(|a| (a.to_string(), a.to_string())).collect::<BTreeMap<_, _>>());
            }
            ipam_cfg.push(c);
        }
        let mut containers = serde_json::Map::new();
        if with_containers {
            for rec in self.members(&r.id) {
                if !matches!(rec.state.status, Status::Running | Status::Paused | Status::Restarting) {
                    continue;
                }
                if let Some(ep) = rec.networks.values().find(|e| e.network_id == r.id) {
                    containers.insert(
                        rec.id.clone(),
                        json!({
                            "Name": rec.name,
                            "EndpointID": ep.endpoint_id,
                            "MacAddress": ep.mac_address,
                            "IPv4Address": if ep.ip_address.is_empty() { String::new() } else { format!("{}/{}", ep.ip_address, ep.ip_prefix_len) },
                            "IPv6Address": ""
                        }),
                    );
                }
            }
        }
        json!({
            "Name": r.name,
            "Id": r.id,
            "Created": r.created.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "Scope": "local",
            "Driver": r.driver,
            "EnableIPv6": false,
            "IPAM": {"Driver": "default", "Options": if r.predefined() { Value::Null } else { json!({}) }, "Config": ipam_cfg},
            "Internal": r.internal,
            "Attachable": r.attachable,
            "Ingress": false,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": false,
            "Containers": containers,
            "Options": r.options,
            "Labels": r.labels,
        })
    }

    pub fn inspect_network(&self, key: &str) -> Result<Value> {
        let r = self.net.find(key)?;
        Ok(self.network_json(&r, true))
    }

    /// `GET /networks` with dockerd's filters.
    pub fn list_networks(&self, filters: &BTreeMap<String, Vec<String>>) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for r in self.net.list() {
            let mut ok = true;
            for (k, vals) in filters {
                let any = |f: &dyn Fn(&str) -> bool| vals.iter().any(|v| f(v));
                ok &= match k.as_str() {
                    "name" => any(&|v| r.name.contains(v)),
                    "id" => any(&|v| r.id.starts_with(v)),
                    "driver" => any(&|v| r.driver == v),
                    "type" => any(&|v| if v == "builtin" { r.predefined() } else { !r.predefined() }),
                    "scope" => any(&|v| v == "local"),
                    "label" => any(&|v| match v.split_once('=') {
                        Some((k, val)) => r.labels.get(k).is_some_and(|x| x == val),
                        None => r.labels.contains_key(v),
                    }),
                    "dangling" => any(&|v| (v == "true" || v == "1") == (!r.predefined() && self.members(&r.id).is_empty())),
                    _ => return Err(Error::invalid(format!("invalid filter '{k}'"))),
                };
            }
            if ok {
                out.push(self.network_json(&r, false));
            }
        }
        Ok(out)
    }

    /// `DELETE /networks/{id}`.
    pub async fn remove_network(self: &Arc<Self>, key: &str) -> Result<()> {
        let r = self.net.find(key)?;
        if r.predefined() {
            return Err(Error::new(ErrorKind::Forbidden, format!("{} is a pre-defined network and cannot be removed", r.name)));
        }
        let active: Vec<String> = self
            .members(&r.id)
            .into_iter()
            .filter(|c| matches!(c.state.status, Status::Running | Status::Paused | Status::Restarting))
            .map(|c| c.id)
            .collect();
        if !active.is_empty() {
            return Err(Error::new(
                ErrorKind::Forbidden,
                format!("error while removing network: network {} id {} has active endpoints", r.name, r.id),
            ));
        }
        if r.driver == "bridge" {
            let _ = self.net.nl().await?.delete(&r.device).await;
        }
        self.net.nets.lock().expect("lock").remove(&r.id);
        let _ = std::fs::remove_file(self.net.dir.join(format!("{}.json", r.id)));
        if let Err(e) = self.apply_rules().await {
            tracing::warn!("nftables: {e}");
        }
        self.events.publish(json!({
            "Type": "network", "Action": "destroy", "status": "destroy",
            "Actor": {"ID": r.id, "Attributes": {"name": r.name, "type": r.driver}},
            "scope": "local", "time": Utc::now().timestamp(), "timeNano": Utc::now().timestamp_nanos_opt().unwrap_or(0)
        }));
        Ok(())
    }

    /// `POST /networks/prune`: user networks with no containers.
    pub async fn prune_networks(self: &Arc<Self>) -> Result<Vec<String>> {
        let mut gone = Vec::new();
        for r in self.net.list() {
            if !r.predefined() && self.members(&r.id).is_empty() && self.remove_network(&r.id).await.is_ok() {
                gone.push(r.name);
            }
        }
        Ok(gone)
    }

    /// `POST /networks/{id}/connect`.
    pub async fn connect_network(self: &Arc<Self>, key: &str, container: &str, cfg: Option<EndpointSettings>) -> Result<()> {
        let net = self.net.find(key)?;
        let c = self.container(container)?;
        let rec = c.snapshot();
        if !net.is_bridge_like() {
            return Err(Error::new(ErrorKind::Forbidden, format!("container cannot be disconnected from host network or connected to host network")));
        }
        if !matches!(net_mode(&rec.host_config.network_mode), NetMode::Networks) {
            return Err(Error::new(ErrorKind::Forbidden, "container sharing network namespace with another container or host cannot be connected to any other network"));
        }
        if rec.networks.values().any(|e| e.network_id == net.id) {
            return Err(Error::new(ErrorKind::Forbidden, format!("endpoint with name {} already exists in network {}", rec.name, net.name)));
        }
        let mut ep = cfg.unwrap_or_default();
        ep.network_id = net.id.clone();
        let running = matches!(rec.state.status, Status::Running | Status::Paused);
        c.update(|r| {
            r.networks.insert(net.name.clone(), ep.clone());
        })?;
        if running {
            if let Err(e) = self.attach_live(&c, &net).await {
                let _ = c.update(|r| {
                    r.networks.remove(&net.name);
                });
                return Err(e);
            }
        }
        Ok(())
    }

    async fn attach_live(self: &Arc<Self>, c: &Arc<crate::Container>, net: &NetRecord) -> Result<()> {
        let rec = c.snapshot();
        let path = self.net.netns_path(&rec.id).ok_or_else(|| Error::internal("the container has no network namespace"))?;
        let pool = net.pool.clone().ok_or_else(|| Error::internal("network without a pool"))?;
        let ep = rec.networks.get(&net.name).cloned().unwrap_or_default();
        let requested = ep.ipam_config.as_ref().map(|c| c.ipv4_address.clone()).filter(|s| !s.is_empty()).and_then(|s| s.parse().ok());
        let cid = rec.id.clone();
        let updated = self.net.update(&net.id, |r| {
            let used: BTreeSet<Ipv4Addr> = r.allocations.keys().copied().collect();
            let ip = pool.allocate(&used, requested, r.last).map_err(|e| Error::invalid(e.to_string()))?;
            r.allocations.insert(ip, cid.clone());
            r.last = Some(ip);
            Ok(())
        })?;
        let ip = *updated.allocations.iter().find(|(_, o)| **o == rec.id).map(|(ip, _)| ip).expect("allocated");
        let n_if = self.net.active.lock().expect("lock").get(&rec.id).map(|a| a.ifaces.len()).unwrap_or(0);
        let ifname = format!("eth{n_if}");
        let suffix = &new_id()[..7];
        let host_name = format!("veth{suffix}");
        let tmp = format!("bpeer{suffix}");
        let nl = self.net.nl().await?.clone();
        if net.driver == "bridge" {
            self.ensure_bridge(net).await?;
            let br = nl.index(&net.device).await.map_err(|e| Error::internal(e.to_string()))?.ok_or_else(|| Error::internal("bridge missing"))?;
            nl.veth_into(&host_name, &tmp, br, &path).await.map_err(|e| Error::internal(e.to_string()))?;
        } else {
            nl.macvlan_into(&tmp, &net.device, &path).await.map_err(|e| Error::internal(e.to_string()))?;
        }
        let mac = ipam::mac_for(ip);
        let inside = Netlink::in_netns(&path).map_err(|e| Error::internal(e.to_string()))?;
        inside
            .configure(
                &[IfaceConfig { from: tmp, name: ifname.clone(), mac, addr: Ipv4Network::new(ip, pool.subnet.prefix()).map_err(|e| Error::internal(e.to_string()))? }],
                None,
            )
            .await
            .map_err(|e| Error::internal(e.to_string()))?;
        if let Some(a) = self.net.active.lock().expect("lock").get_mut(&rec.id) {
            a.ifaces.push((net.id.clone(), ifname, if net.driver == "bridge" { host_name } else { String::new() }));
        }
        let rec2 = rec.clone();
        c.update(|r| {
            if let Some(e) = r.networks.get_mut(&net.name) {
                e.endpoint_id = new_id();
                e.ip_address = ip.to_string();
                e.ip_prefix_len = pool.subnet.prefix() as i64;
                e.gateway = pool.gateway.to_string();
                e.mac_address = ipam::mac_text(&mac);
                e.dns_names = Some(dns_names(&rec2, e));
            }
        })?;
        self.emit_network("connect", net, &rec.id);
        Ok(())
    }

    fn emit_network(&self, action: &str, net: &NetRecord, container: &str) {
        self.events.publish(json!({
            "Type": "network", "Action": action, "status": action,
            "Actor": {"ID": net.id, "Attributes": {"container": container, "name": net.name, "type": net.driver}},
            "scope": "local", "time": Utc::now().timestamp(), "timeNano": Utc::now().timestamp_nanos_opt().unwrap_or(0)
        }));
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn disconnect_network(self: &Arc<Self>, key: &str, container: &str, _force: bool) -> Result<()> {
        let net = self.net.find(key)?;
        let c = self.container(container)?;
        let rec = c.snapshot();
        let Some((name, _)) = rec.networks.iter().find(|(_, e)| e.network_id == net.id) else {
            return Err(Error::new(ErrorKind::Forbidden, format!("container {} is not connected to network {}", rec.id, net.name)));
        };
        let name = name.clone();
        let iface = self
            .net
            .active
            .lock()
            .expect("lock")
            .get_mut(&rec.id)
            .and_then(|a| {
                let pos = a.ifaces.iter().position(|(n, _, _)| *n == net.id)?;
                Some(a.ifaces.remove(pos))
            });
        if let Some((_, inside_name, host)) = iface {
            if let Some(path) = self.net.netns_path(&rec.id) {
                if let Ok(inside) = Netlink::in_netns(&path) {
                    let _ = inside.remove_iface(&inside_name).await;
                }
            }
            if !host.is_empty() {
                if let Ok(nl) = self.net.nl().await {
                    let _ = nl.delete(&host).await;
                }
            }
        }
        let _ = self.net.update(&net.id, |r| {
            r.allocations.retain(|_, o| *o != rec.id);
            Ok(())
        });
        c.update(|r| {
            r.networks.remove(&name);
        })?;
        self.emit_network("disconnect", &net, &rec.id);
        Ok(())
    }

    /// `NetworkSettings` of inspect.
    pub(crate) fn network_settings(&self, rec: &Record) -> Value {
        let running = matches!(rec.state.status, Status::Running | Status::Paused | Status::Restarting);
        let mut nets = serde_json::Map::new();
        for (name, ep) in &rec.networks {
            let mut e = serde_json::to_value(ep).unwrap_or(json!({}));
            if e["DNSNames"].is_null() {
                e["DNSNames"] = Value::Null;
            }
            nets.insert(name.clone(), e);
        }
        let bridge = rec.networks.get("bridge");
        let sandbox = if running { self.net.netns_path(&rec.id).map(|p| p.display().to_string()).unwrap_or_default() } else { String::new() };
        let ports: Value = if running && matches!(net_mode(&rec.host_config.network_mode), NetMode::Networks) {
            let mut m = serde_json::Map::new();
            for k in rec.config.exposed_ports.iter().flat_map(|m| m.keys()) {
                m.insert(k.clone(), Value::Null);
            }
            for (k, v) in &rec.ports {
                m.insert(k.clone(), serde_json::to_value(v).unwrap_or(Value::Null));
            }
            Value::Object(m)
        } else {
            json!({})
        };
        json!({
            "Bridge": "",
            "SandboxID": if sandbox.is_empty() { String::new() } else { rec.id.clone() },
            "SandboxKey": sandbox,
            "Ports": ports,
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": null,
            "SecondaryIPv6Addresses": null,
            "EndpointID": bridge.map(|e| e.endpoint_id.clone()).unwrap_or_default(),
            "Gateway": bridge.map(|e| e.gateway.clone()).unwrap_or_default(),
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": bridge.map(|e| e.ip_address.clone()).unwrap_or_default(),
            "IPPrefixLen": bridge.map(|e| e.ip_prefix_len).unwrap_or(0),
            "IPv6Gateway": "",
            "MacAddress": bridge.map(|e| e.mac_address.clone()).unwrap_or_default(),
            "Networks": nets
        })
    }

    /// `Ports` of a `GET /containers/json` row.
    pub(crate) fn port_rows(&self, rec: &Record) -> Value {
        let running = matches!(rec.state.status, Status::Running | Status::Paused | Status::Restarting);
        let mut rows = Vec::new();
        if running {
            let mut seen = BTreeSet::new();
            for (k, v) in &rec.ports {
                let Ok((p, proto)) = proto_of(k) else { continue };
                let t = if proto == Proto::Tcp { "tcp" } else { "udp" };
                seen.insert(k.clone());
                for b in v.iter().flatten() {
                    rows.push(json!({"IP": b.host_ip, "PrivatePort": p, "PublicPort": b.host_port.parse::<u16>().unwrap_or(0), "Type": t}));
                }
            }
            for k in rec.config.exposed_ports.iter().flat_map(|m| m.keys()) {
                if !seen.contains(k) {
                    if let Ok((p, proto)) = proto_of(k) {
                        rows.push(json!({"PrivatePort": p, "Type": if proto == Proto::Tcp { "tcp" } else { "udp" }}));
                    }
                }
            }
        }
        Value::Array(rows)
    }

    /// On graceful shutdown with no container left running: remove the table and bridges, so
    /// a stopped daemon leaves nothing behind (they come back at the next start).
    pub async fn net_shutdown(self: &Arc<Self>) {
        let any_running = self
            .all_containers()
            .iter()
            .any(|c| matches!(c.snapshot().state.status, Status::Running | Status::Paused | Status::Restarting));
        if any_running {
            return;
        }
        let table = self.net.table.clone();
        let _ = tokio::task::spawn_blocking(move || nft::remove_named(&table)).await;
        if let Ok(nl) = self.net.nl().await {
            for r in self.net.list().iter().filter(|r| r.driver == "bridge") {
                let _ = nl.delete(&r.device).await;
            }
        }
    }
}

/// Binds (without listening) a socket on the host port so nothing else takes it while the
/// container publishes it; port 0 lets the kernel choose.
fn reserve_port(proto: Proto, ip: Option<Ipv4Addr>, port: u16) -> std::result::Result<OwnedFd, String> {
    use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    let ty = if proto == Proto::Tcp { SockType::Stream } else { SockType::Datagram };
    let fd = socket(AddressFamily::Inet, ty, SockFlag::SOCK_CLOEXEC, None).map_err(|e| e.to_string())?;
    let addr = SockaddrIn::from(std::net::SocketAddrV4::new(ip.unwrap_or(Ipv4Addr::UNSPECIFIED), port));
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr).map_err(|e| match e {
        nix::errno::Errno::EADDRINUSE => "address already in use".to_string(),
        e => e.desc().to_lowercase(),
    })?;
    Ok(fd)
}

fn bound_port(fd: &OwnedFd) -> u16 {
    nix::sys::socket::getsockname::<nix::sys::socket::SockaddrIn>(std::os::fd::AsRawFd::as_raw_fd(fd))
        .map(|a| a.port())
        .unwrap_or(0)
}
