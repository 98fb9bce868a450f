//! Links, addresses and routes over rtnetlink: bridges, veth pairs, macvlan, and the
//! container side of an endpoint configured through a netlink socket opened inside the
//! container's namespace.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use futures_util::TryStreamExt;
use ipnetwork::Ipv4Network;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{LinkAttribute, MacVlanMode};
use netlink_packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{Handle, LinkBridge, LinkMacVlan, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::NetError;

fn nl(what: &str, e: impl std::fmt::Display) -> NetError {
    NetError::Netlink(format!("{what}: {e}"))
}

fn is_exists(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -libc_eexist())
}
fn libc_eexist() -> i32 {
    nix::errno::Errno::EEXIST as i32
}

/// A netlink connection in one network namespace.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

/// The container side of one endpoint.
#[derive(Debug, Clone)]
pub struct IfaceConfig {
    /// The name the link has when it arrives (the veth peer or macvlan).
    pub from: String,
    /// Its name inside (`eth0`, `eth1`...).
    pub name: String,
    /// MAC address.
    pub mac: [u8; 6],
    /// Address and prefix.
    pub addr: Ipv4Network,
}

impl Netlink {
    /// A connection in the daemon's own namespace (needs a tokio runtime).
    pub fn new() -> Result<Netlink, NetError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| nl("netlink socket", e))?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// A connection whose socket lives in the namespace at `path`.
    pub fn in_netns(path: &Path) -> Result<Netlink, NetError> {
        let rt = tokio::runtime::Handle::current();
        let (conn, handle, _) = crate::netns::run_in(path, move || {
            let _g = rt.enter();
            rtnetlink::new_connection()
        })?
        .map_err(|e| nl("netlink socket in netns", e))?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// Index of a link by name.
    pub async fn index(&self, name: &str) -> Result<Option<u32>, NetError> {
        let mut s = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match s.try_next().await {
            Ok(Some(m)) => Ok(Some(m.header.index)),
            Ok(None) => Ok(None),
            Err(rtnetlink::Error::NetlinkError(m))
                if m.raw_code() == -(nix::errno::Errno::ENODEV as i32) =>
            {
                Ok(None)
            }
            Err(e) => Err(nl(&format!("get link {name}"), e)),
        }
    }

    async fn must_index(&self, name: &str) -> Result<u32, NetError> {
        self.index(name)
            .await?
            .ok_or_else(|| NetError::Netlink(format!("no link {name}")))
    }

    /// Names of every link.
    pub async fn link_names(&self) -> Result<Vec<(u32, String)>, NetError> {
        let mut s = self.handle.link().get().execute();
        let mut out = Vec::new();
        while let Some(m) = s.try_next().await.map_err(|e| nl("list links", e))? {
            for a in &m.attributes {
                if let LinkAttribute::IfName(n) = a {
                    out.push((m.header.index, n.clone()));
                }
            }
        }
        Ok(out)
    }

    /// Creates the bridge if missing, gives it `gw/prefix` (replacing nothing else), sets it up.
    pub async fn ensure_bridge(&self, name: &str, gw: Ipv4Network) -> Result<u32, NetError> {
        if self.index(name).await?.is_none() {
            if let Err(e) = self
                .handle
                .link()
                .add(LinkBridge::new(name).build())
                .execute()
                .await
            {
                if !is_exists(&e) {
                    return Err(nl(&format!("create bridge {name}"), e));
                }
            }
        }
        let idx = self.must_index(name).await?;
        let req = self
            .handle
            .address()
            .add(idx, IpAddr::V4(gw.ip()), gw.prefix())
            .replace();
        req.execute()
            .await
            .map_err(|e| nl(&format!("address {gw} on {name}"), e))?;
        self.up(idx).await?;
        Ok(idx)
    }

    /// Sets a link up.
    pub async fn up(&self, idx: u32) -> Result<(), NetError> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(idx).up().build())
            .execute()
            .await
            .map_err(|e| nl("set link up", e))
    }

    /// Deletes a link by name; a missing link is not an error.
    pub async fn delete(&self, name: &str) -> Result<(), NetError> {
        if let Some(idx) = self.index(name).await? {
            match self.handle.link().del(idx).execute().await {
                Ok(()) => {}
                Err(rtnetlink::Error::NetlinkError(m))
                    if m.raw_code() == -(nix::errno::Errno::ENODEV as i32) => {}
                Err(e) => return Err(nl(&format!("delete {name}"), e)),
            }
        }
        Ok(())
    }

    /// A veth pair `host` <-> `peer`; `host` enslaved to `bridge` and up; `peer` moved into
    /// the namespace at `netns`.
    pub async fn veth_into(
        &self,
        host: &str,
        peer: &str,
        bridge: u32,
        netns: &Path,
    ) -> Result<(), NetError> {
        use netlink_packet_route::link::{InfoData, InfoVeth, LinkInfo};
        let t0 = std::time::Instant::now();
        // The peer is created directly inside the container's namespace (IFLA_NET_NS_FD on the
        // peer): moving it afterwards costs the kernel an RCU grace period (~20 ms).
        let f =
            std::fs::File::open(netns).map_err(|e| nl(&format!("open {}", netns.display()), e))?;
        let mut msg = LinkVeth::new(host, peer).build();
        for a in msg.attributes.iter_mut() {
            if let LinkAttribute::LinkInfo(infos) = a {
                for i in infos.iter_mut() {
                    if let LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))) = i {
                        p.attributes.push(LinkAttribute::NetNsFd(f.as_raw_fd()));
                    }
                }
            }
        }
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| nl(&format!("create veth {host}"), e))?;
        drop(f);
        let t_create = t0.elapsed();
        let r = async {
            let h = self.must_index(host).await?;
            self.handle
                .link()
                .set(
                    LinkUnspec::new_with_index(h)
                        .controller(bridge)
                        .up()
                        .build(),
                )
                .execute()
                .await
                .map_err(|e| nl(&format!("attach {host} to bridge"), e))
        }
        .await;
        tracing::debug!(
            create_ms = t_create.as_secs_f64() * 1e3,
            total_ms = t0.elapsed().as_secs_f64() * 1e3,
            "veth"
        );
        if r.is_err() {
            let _ = self.delete(host).await;
        }
        r
    }

    /// A macvlan link on `parent` (bridge mode) moved into the namespace at `netns`.
    pub async fn macvlan_into(
        &self,
        name: &str,
        parent: &str,
        netns: &Path,
    ) -> Result<(), NetError> {
        let p = self.must_index(parent).await?;
        // created directly in the container's namespace (no move, no RCU wait)
        let f =
            std::fs::File::open(netns).map_err(|e| nl(&format!("open {}", netns.display()), e))?;
        let mut msg = LinkMacVlan::new(name, p, MacVlanMode::Bridge).build();
        msg.attributes.push(LinkAttribute::NetNsFd(f.as_raw_fd()));
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| nl(&format!("create macvlan on {parent}"), e))
    }

    /// Inside a container namespace: `lo` up, each interface renamed, addressed and up, then the
    /// default route.
    pub async fn configure(
        &self,
        ifaces: &[IfaceConfig],
        gateway: Option<Ipv4Addr>,
    ) -> Result<(), NetError> {
        if let Some(lo) = self.index("lo").await? {
            self.up(lo).await?;
        }
        for i in ifaces {
            let idx = self.must_index(&i.from).await?;
            self.handle
                .link()
                .set(
                    LinkUnspec::new_with_index(idx)
                        .name(i.name.clone())
                        .address(i.mac.to_vec())
                        .build(),
                )
                .execute()
                .await
                .map_err(|e| nl(&format!("rename {} to {}", i.from, i.name), e))?;
            self.handle
                .address()
                .add(idx, IpAddr::V4(i.addr.ip()), i.addr.prefix())
                .execute()
                .await
                .map_err(|e| nl(&format!("address {} on {}", i.addr, i.name), e))?;
            self.up(idx).await?;
        }
        if let Some(gw) = gateway {
            let route = RouteMessageBuilder::<Ipv4Addr>::new().gateway(gw).build();
            self.handle
                .route()
                .add(route)
                .execute()
                .await
                .map_err(|e| nl(&format!("default route via {gw}"), e))?;
        }
        Ok(())
    }

    /// Removes one interface inside a container namespace (`network disconnect`).
    pub async fn remove_iface(&self, name: &str) -> Result<(), NetError> {
        self.delete(name).await
    }

    /// Every IPv4 address of every link in this namespace.
    pub async fn ipv4_addrs(&self) -> Result<Vec<Ipv4Network>, NetError> {
        let mut s = self.handle.address().get().execute();
        let mut out = Vec::new();
        while let Some(m) = s.try_next().await.map_err(|e| nl("list addresses", e))? {
            for a in &m.attributes {
                if let AddressAttribute::Local(IpAddr::V4(ip))
                | AddressAttribute::Address(IpAddr::V4(ip)) = a
                {
                    if let Ok(n) = Ipv4Network::new(*ip, m.header.prefix_len) {
                        if !out.contains(&n) {
                            out.push(n);
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Destinations of the IPv4 routes (for picking a default pool that overlaps none).
    pub async fn ipv4_routes(&self) -> Result<Vec<Ipv4Network>, NetError> {
        let mut s = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute();
        let mut out = Vec::new();
        while let Some(m) = s.try_next().await.map_err(|e| nl("list routes", e))? {
            for a in &m.attributes {
                if let RouteAttribute::Destination(RouteAddress::Inet(ip)) = a {
                    if let Ok(n) = Ipv4Network::new(*ip, m.header.destination_prefix_length) {
                        out.push(n);
                    }
                }
            }
        }
        Ok(out)
    }
}
