//! Container networking for Berth (see docs/networking.md): IPAM ([`ipam`], pure), Berth's
//! own nftables table ([`nft`]: a pure plan and one atomic apply), network namespaces as files
//! ([`netns`]), bridges/veth/macvlan over rtnetlink ([`link`]) and the embedded DNS server
//! ([`dns`]). The engine owns the state; this crate does the kernel work.

pub mod dns;
pub mod ipam;
pub mod link;
pub mod netns;
pub mod nft;

/// A networking failure, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// rtnetlink.
    #[error("netlink: {0}")]
    Netlink(String),
    /// nftables.
    #[error("nftables: {0}")]
    Nft(String),
    /// namespaces, sockets, files.
    #[error("{0}")]
    Sys(String),
    /// IPAM.
    #[error(transparent)]
    Ipam(#[from] ipam::IpamError),
}
