//! The embedded DNS server: 127.0.0.11:53 (UDP and TCP) inside each container's namespace,
//! served by the daemon. It answers A queries for container names, aliases and service names
//! on the container's networks, and forwards everything else to the host's resolvers from the
//! host namespace (so a loopback resolver such as 127.0.0.53 works).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{rdata::A, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

use crate::NetError;

/// The address containers query.
pub const DNS_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// Looks names up for one container: `Some(addrs)` when the name is one of its networks'
/// (possibly an empty answer for a known name with no IPv4), `None` to forward.
pub trait Lookup: Send + Sync + 'static {
    /// Names are lower-case, without the trailing dot.
    fn lookup(&self, name: &str) -> Option<Vec<Ipv4Addr>>;
    /// Upstream resolvers for everything else.
    fn upstreams(&self) -> Vec<SocketAddr>;
}

/// What to do with one query.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send this reply.
    Reply(Vec<u8>),
    /// Forward the query as is.
    Forward,
}

/// Decides on a query (pure).
pub fn decide(query: &[u8], lookup: &dyn Lookup) -> Outcome {
    let Ok(msg) = Message::from_vec(query) else {
        return Outcome::Reply(Vec::new());
    };
    let Some(q) = msg.queries.first() else {
        return Outcome::Forward;
    };
    let name = q
        .name()
        .to_ascii()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let Some(addrs) = lookup.lookup(&name) else {
        return Outcome::Forward;
    };
    let mut reply = Message::new(msg.metadata.id, MessageType::Response, msg.metadata.op_code);
    reply.metadata.recursion_desired = msg.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.authoritative = true;
    reply.add_query(q.clone());
    match q.query_type() {
        RecordType::A | RecordType::ANY => {
            for a in addrs {
                reply.add_answer(Record::from_rdata(q.name().clone(), 600, RData::A(A(a))));
            }
        }
        // AAAA and others for a container name: an empty NOERROR answer, as dockerd's resolver
        // gives for a container without IPv6.
        _ => {}
    }
    reply.metadata.response_code = ResponseCode::NoError;
    Outcome::Reply(reply.to_vec().unwrap_or_default())
}

fn servfail(query: &[u8]) -> Vec<u8> {
    match Message::from_vec(query) {
        Ok(m) => {
            let mut r =
                Message::error_msg(m.metadata.id, m.metadata.op_code, ResponseCode::ServFail);
            for q in m.queries {
                r.add_query(q);
            }
            r.to_vec().unwrap_or_default()
        }
        Err(_) => Vec::new(),
    }
}

async fn forward_udp(query: &[u8], ups: &[SocketAddr]) -> Vec<u8> {
    for up in ups {
        let Ok(s) = UdpSocket::bind(if up.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }).await else {
            continue;
        };
        if s.send_to(query, up).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_secs(3), s.recv_from(&mut buf)).await
        {
            buf.truncate(n);
            return buf;
        }
    }
    servfail(query)
}

async fn forward_tcp(query: &[u8], ups: &[SocketAddr]) -> Vec<u8> {
    for up in ups {
        let fut = async {
            let mut s = tokio::net::TcpStream::connect(up).await?;
            s.write_all(&(query.len() as u16).to_be_bytes()).await?;
            s.write_all(query).await?;
            let mut l = [0u8; 2];
            s.read_exact(&mut l).await?;
            let mut buf = vec![0u8; u16::from_be_bytes(l) as usize];
            s.read_exact(&mut buf).await?;
            Ok::<_, std::io::Error>(buf)
        };
        if let Ok(Ok(b)) = tokio::time::timeout(Duration::from_secs(5), fut).await {
            return b;
        }
    }
    servfail(query)
}

/// A running server for one namespace; dropping it stops it and closes its sockets (which
/// would otherwise keep the namespace alive).
pub struct DnsServer {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl DnsServer {
    /// Binds 127.0.0.11:53 (UDP and TCP) inside the namespace at `netns` and serves it.
    pub fn start(netns: &Path, lookup: Arc<dyn Lookup>) -> Result<DnsServer, NetError> {
        // Random ports on 127.0.0.11, reached through a DNAT of port 53 inside the
        // namespace: the container keeps port 53 for itself.
        let (udp, tcp) = crate::netns::run_in(netns, || {
            let u = std::net::UdpSocket::bind(SocketAddr::from((DNS_ADDR, 0)))
                .map_err(|e| NetError::Sys(format!("embedded DNS socket: {e}")))?;
            u.set_nonblocking(true)
                .map_err(|e| NetError::Sys(e.to_string()))?;
            let t = std::net::TcpListener::bind(SocketAddr::from((DNS_ADDR, 0)))
                .map_err(|e| NetError::Sys(format!("embedded DNS socket: {e}")))?;
            t.set_nonblocking(true)
                .map_err(|e| NetError::Sys(e.to_string()))?;
            let up = u
                .local_addr()
                .map_err(|e| NetError::Sys(e.to_string()))?
                .port();
            let tp = t
                .local_addr()
                .map_err(|e| NetError::Sys(e.to_string()))?
                .port();
            crate::nft::apply_dns_redirect(DNS_ADDR, up, tp)?;
            Ok::<_, NetError>((u, t))
        })??;
        let udp = Arc::new(UdpSocket::from_std(udp).map_err(|e| NetError::Sys(e.to_string()))?);
        let tcp = TcpListener::from_std(tcp).map_err(|e| NetError::Sys(e.to_string()))?;
        let l2 = lookup.clone();
        let t_udp = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                    break;
                };
                let q = buf[..n].to_vec();
                let (udp, lookup) = (udp.clone(), lookup.clone());
                tokio::spawn(async move {
                    let reply = match decide(&q, &*lookup) {
                        Outcome::Reply(r) => r,
                        Outcome::Forward => forward_udp(&q, &lookup.upstreams()).await,
                    };
                    if !reply.is_empty() {
                        let _ = udp.send_to(&reply, peer).await;
                    }
                });
            }
        });
        let t_tcp = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = tcp.accept().await else {
                    break;
                };
                let lookup = l2.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(10), async {
                        loop {
                            let mut l = [0u8; 2];
                            s.read_exact(&mut l).await?;
                            let mut q = vec![0u8; u16::from_be_bytes(l) as usize];
                            s.read_exact(&mut q).await?;
                            let reply = match decide(&q, &*lookup) {
                                Outcome::Reply(r) => r,
                                Outcome::Forward => forward_tcp(&q, &lookup.upstreams()).await,
                            };
                            s.write_all(&(reply.len() as u16).to_be_bytes()).await?;
                            s.write_all(&reply).await?;
                        }
                        #[allow(unreachable_code)]
                        Ok::<_, std::io::Error>(())
                    })
                    .await;
                });
            }
        });
        Ok(DnsServer {
            tasks: vec![t_udp, t_tcp],
        })
    }
}

/// The host's resolvers from resolv.conf text (every `nameserver`, loopback ones included).
pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next()).flatten()
        })
        .filter_map(|a| a.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;

    struct L;
    impl Lookup for L {
        fn lookup(&self, name: &str) -> Option<Vec<Ipv4Addr>> {
            (name == "web").then(|| vec![Ipv4Addr::new(172, 18, 0, 2)])
        }
        fn upstreams(&self) -> Vec<SocketAddr> {
            vec![]
        }
    }

    fn query(name: &str, t: RecordType) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = 77;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        m.to_vec().unwrap()
    }

    #[test]
    fn answers_known_names_and_forwards_others() {
        let Outcome::Reply(r) = decide(&query("WEB.", RecordType::A), &L) else {
            panic!()
        };
        let m = Message::from_vec(&r).unwrap();
        assert_eq!(m.metadata.id, 77);
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].data, RData::A(A(Ipv4Addr::new(172, 18, 0, 2))));
        let Outcome::Reply(r) = decide(&query("web.", RecordType::AAAA), &L) else {
            panic!()
        };
        assert!(Message::from_vec(&r).unwrap().answers.is_empty());
        assert_eq!(
            decide(&query("example.org.", RecordType::A), &L),
            Outcome::Forward
        );
        assert!(servfail(&query("x.", RecordType::A)).len() > 12);
        assert_eq!(
            upstreams_from_resolv_conf("# c\nnameserver 127.0.0.53\nsearch x\nnameserver ::1\n"),
            vec![
                "127.0.0.53:53".parse().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
    }
}
