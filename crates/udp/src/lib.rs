//! SMP over UDP: one frame per datagram, as Zephyr's `smp_udp` transport expects.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::net::SocketAddr;

use async_trait::async_trait;
use smpflash_core::transport::{Transport, TransportError, TransportKind};
use smpflash_core::Result;
use tokio::net::{lookup_host, UdpSocket};

/// Zephyr's default SMP UDP port.
pub const DEFAULT_PORT: u16 = 1337;

/// Ethernet MTU assumed for the path when nothing better is known.
pub const DEFAULT_PATH_MTU: usize = 1500;

/// Largest SMP frame one datagram carries on a path with `mtu` bytes of IP MTU.
pub fn frame_limit_for_mtu(mtu: usize, peer: &SocketAddr) -> usize {
    let ip_header = if peer.is_ipv4() { 20 } else { 40 };
    mtu.saturating_sub(ip_header + 8)
}

/// A UDP link to one SMP server.
#[derive(Debug)]
pub struct UdpTransport {
    socket: UdpSocket,
    peer: SocketAddr,
    max_frame: usize,
}

impl UdpTransport {
    /// Resolves `target` (`host`, `host:port`, `[v6]:port`; port 1337 if absent) and opens a
    /// socket connected to it.
    pub async fn connect(target: &str) -> Result<Self> {
        let with_port = if target.parse::<SocketAddr>().is_ok() || has_port(target) {
            target.to_string()
        } else if target.contains(':') {
            format!("[{target}]:{DEFAULT_PORT}")
        } else {
            format!("{target}:{DEFAULT_PORT}")
        };
        let peer = lookup_host(&with_port)
            .await
            .map_err(|e| {
                TransportError::new(TransportKind::NotFound, format!("cannot resolve {target}"))
                    .with_source(e)
            })?
            .next()
            .ok_or_else(|| {
                TransportError::new(TransportKind::NotFound, format!("{target} resolves to no address"))
            })?;
        Self::connect_addr(peer).await
    }

    /// Opens a socket connected to `peer`.
    pub async fn connect_addr(peer: SocketAddr) -> Result<Self> {
        let local: SocketAddr =
            if peer.is_ipv4() { "0.0.0.0:0".parse() } else { "[::]:0".parse() }.expect("literal");
        let socket = UdpSocket::bind(local).await.map_err(|e| {
            TransportError::new(TransportKind::Open, "cannot open a UDP socket").with_source(e)
        })?;
        socket.connect(peer).await.map_err(|e| {
            TransportError::new(TransportKind::Open, format!("cannot reach {peer}")).with_source(e)
        })?;
        Ok(UdpTransport { socket, peer, max_frame: frame_limit_for_mtu(DEFAULT_PATH_MTU, &peer) })
    }

    /// Sets the path MTU the frame limit derives from.
    pub fn with_path_mtu(mut self, mtu: usize) -> Self {
        self.max_frame = frame_limit_for_mtu(mtu, &self.peer);
        self
    }

    /// Lowers the frame limit further, e.g. to the device's `buf_size`.
    pub fn limit_frame(&mut self, limit: usize) {
        self.max_frame = self.max_frame.min(limit);
    }

    /// The server's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
}

fn has_port(target: &str) -> bool {
    match target.rsplit_once(':') {
        Some((host, port)) => port.parse::<u16>().is_ok() && (!host.contains(':') || host.starts_with('[')),
        None => false,
    }
}

#[async_trait]
impl Transport for UdpTransport {
    async fn send(&self, frame: &[u8]) -> Result<()> {
        self.socket.send(frame).await.map(|_| ()).map_err(|e| {
            TransportError::new(TransportKind::Io, format!("UDP send to {}", self.peer)).with_source(e).into()
        })
    }

    async fn recv(&self) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; 65536];
        loop {
            match self.socket.recv(&mut buf).await {
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(buf);
                }
                // An ICMP port-unreachable from an earlier send surfaces here on Linux: the
                // server may come back (it may be rebooting), so keep listening.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    tracing::debug!("UDP: {} refused a datagram (server not listening?)", self.peer);
                }
                Err(e) => {
                    return Err(TransportError::new(
                        TransportKind::Io,
                        format!("UDP receive from {}", self.peer),
                    )
                    .with_source(e)
                    .into())
                }
            }
        }
    }

    fn max_frame(&self) -> usize {
        self.max_frame
    }

    fn describe(&self) -> String {
        format!("udp {}", self.peer)
    }
}

/// Opens a fresh [`UdpTransport`] to the same server on every (re)connection.
#[derive(Debug, Clone)]
pub struct UdpConnector {
    target: String,
    path_mtu: usize,
}

impl UdpConnector {
    /// A connector for `target` (`host`, `host:port`, `[v6]:port`).
    pub fn new(target: impl Into<String>) -> Self {
        UdpConnector { target: target.into(), path_mtu: DEFAULT_PATH_MTU }
    }

    /// Sets the path MTU of the links it opens.
    pub fn with_path_mtu(mut self, mtu: usize) -> Self {
        self.path_mtu = mtu;
        self
    }
}

#[async_trait]
impl smpflash_core::session::Connector for UdpConnector {
    async fn connect(&self) -> Result<std::sync::Arc<dyn Transport>> {
        Ok(std::sync::Arc::new(UdpTransport::connect(&self.target).await?.with_path_mtu(self.path_mtu)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_recognised() {
        assert!(has_port("host:1337"));
        assert!(has_port("[::1]:9"));
        assert!(!has_port("::1"));
        assert!(!has_port("host"));
    }

    #[test]
    fn frame_limits_follow_the_ip_version() {
        assert_eq!(frame_limit_for_mtu(1500, &"127.0.0.1:1".parse().unwrap()), 1472);
        assert_eq!(frame_limit_for_mtu(1500, &"[::1]:1".parse().unwrap()), 1452);
    }
}
