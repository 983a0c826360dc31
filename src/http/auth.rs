//! Who may use the HTTP server: Home Assistant's ingress proxy, or a client with the configured token.
//!
//! Home Assistant ingress reaches the add-on from the Supervisor (172.30.32.2 on the add-on network) after HA
//! has logged the user in, so requests from a trusted ingress peer need nothing more. Trust is by peer
//! address only — headers such as `X-Ingress-Path` can be sent by anyone. Every other client must send the
//! token, as `Authorization: Bearer <token>` or as the password of HTTP Basic auth (which is what browsers
//! and Home Assistant's MJPEG camera integration can send). The token is compared in constant time and
//! never logged.

use std::net::IpAddr;

use base64::Engine;
use hyper::header::AUTHORIZATION;
use hyper::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::HttpConfig;

/// How a request was let in (for the debug log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Ingress,
    Token,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No token is configured and the peer is not the ingress proxy: nothing could let it in.
    #[error("this server only accepts requests through Home Assistant ingress: no http.token is configured")]
    NoTokenConfigured,
    #[error("missing credentials: send 'Authorization: Bearer <token>'")]
    Missing,
    #[error("wrong token")]
    Wrong,
}

impl Refusal {
    /// 403 when no credentials could ever work, 401 (ask for credentials) otherwise.
    pub fn status(self) -> u16 {
        match self {
            Refusal::NoTokenConfigured => 403,
            Refusal::Missing | Refusal::Wrong => 401,
        }
    }
}

/// The access rule of one server.
#[derive(Clone)]
pub struct Auth {
    /// SHA-256 of the token: comparing digests keeps the comparison constant-time whatever the lengths.
    token_digest: Option<[u8; 32]>,
    ingress_peers: Vec<IpAddr>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("token", &self.token_digest.map(|_| "***"))
            .field("ingress_peers", &self.ingress_peers)
            .finish()
    }
}

fn digest(s: &[u8]) -> [u8; 32] {
    Sha256::digest(s).into()
}

impl Auth {
    pub fn new(config: &HttpConfig) -> Self {
        let token = config.token.expose();
        Self {
            token_digest: (!token.is_empty()).then(|| digest(token.as_bytes())),
            ingress_peers: config
                .ingress_peers
                .iter()
                .map(|a| a.to_canonical())
                .collect(),
        }
    }

    /// Decide on a request from `peer` with `headers`.
    pub fn check(&self, peer: IpAddr, headers: &HeaderMap) -> Result<Access, Refusal> {
        if self.ingress_peers.contains(&peer.to_canonical()) {
            return Ok(Access::Ingress);
        }
        let Some(expected) = &self.token_digest else {
            return Err(Refusal::NoTokenConfigured);
        };
        let presented = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(presented_token)
            .ok_or(Refusal::Missing)?;
        if bool::from(digest(&presented).ct_eq(expected)) {
            Ok(Access::Token)
        } else {
            Err(Refusal::Wrong)
        }
    }
}

/// The token in an `Authorization` value: `Bearer <token>` or `Basic base64(<any user>:<token>)`.
fn presented_token(value: &str) -> Option<Vec<u8>> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(rest.as_bytes().to_vec())
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let colon = decoded.iter().position(|b| *b == b':')?;
        Some(decoded[colon + 1..].to_vec())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use hyper::header::HeaderValue;

    fn auth(token: &str) -> Auth {
        Auth::new(&HttpConfig {
            token: Secret::new(token),
            ..HttpConfig::default()
        })
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    const LAN: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 20));

    #[test]
    fn bearer_and_basic_password_are_accepted_anything_else_refused() {
        let a = auth("s3cret");
        assert_eq!(a.check(LAN, &headers("Bearer s3cret")), Ok(Access::Token));
        assert_eq!(a.check(LAN, &headers("bearer  s3cret ")), Ok(Access::Token));
        // "ha:s3cret"
        assert_eq!(
            a.check(LAN, &headers("Basic aGE6czNjcmV0")),
            Ok(Access::Token)
        );
        assert_eq!(a.check(LAN, &headers("Bearer s3cre")), Err(Refusal::Wrong));
        assert_eq!(
            a.check(LAN, &headers("Bearer s3crets")),
            Err(Refusal::Wrong)
        );
        assert_eq!(
            a.check(LAN, &headers("Token s3cret")),
            Err(Refusal::Missing)
        );
        assert_eq!(a.check(LAN, &headers("Basic !!!")), Err(Refusal::Missing));
        assert_eq!(a.check(LAN, &HeaderMap::new()), Err(Refusal::Missing));
    }

    #[test]
    fn only_the_configured_ingress_peer_needs_no_token() {
        let a = auth("");
        let supervisor: IpAddr = "172.30.32.2".parse().unwrap();
        let mapped: IpAddr = "::ffff:172.30.32.2".parse().unwrap();
        let gateway: IpAddr = "172.30.32.1".parse().unwrap();
        assert_eq!(a.check(supervisor, &HeaderMap::new()), Ok(Access::Ingress));
        assert_eq!(a.check(mapped, &HeaderMap::new()), Ok(Access::Ingress));
        assert_eq!(
            a.check(gateway, &HeaderMap::new()),
            Err(Refusal::NoTokenConfigured)
        );
        assert_eq!(
            a.check(LAN, &headers("Bearer ")),
            Err(Refusal::NoTokenConfigured)
        );
    }

    #[test]
    fn debug_never_shows_the_token() {
        assert!(!format!("{:?}", auth("s3cret")).contains("s3cret"));
    }
}
