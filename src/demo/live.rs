//! The demo's live view is the service's HTTP server on localhost (trusted like Home Assistant's ingress, so a
//! browser on this machine needs no token; nothing else can reach it): the camera with its overlay, the
//! recent events, and enrollment uploads into the demo's gallery (try it with `--hold`). The demo checks it
//! serves a snapshot before it ends.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::DemoError;

/// The peers trusted like HA's ingress: this machine.
pub fn localhost() -> Vec<IpAddr> {
    vec![
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ]
}

/// Fetches `path` from the server with a plain HTTP/1.1 GET; returns the status code, the content type and
/// the body length (the demo checks its own live view this way before it ends).
pub async fn fetch(addr: SocketAddr, path: &str) -> Result<(u16, String, usize), DemoError> {
    let io = |e| DemoError::Http(format!("GET {path}: {e}"));
    let mut s = tokio::net::TcpStream::connect(addr).await.map_err(io)?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.map_err(io)?;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut buf));
    read.await
        .map_err(|_| DemoError::Http(format!("GET {path}: no answer within 5 s")))?
        .map_err(io)?;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| DemoError::Http(format!("GET {path}: no HTTP header in the answer")))?;
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let ctype = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    Ok((status, ctype, buf.len() - split - 4))
}
