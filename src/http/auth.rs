//! Who may use the HTTP server: Home Assistant's ingress proxy, or a client with the configured token.
//!
//! Home Assistant ingress reaches the add-on from the Supervisor (172.30.32.2 on the add-on network) after HA
//! has logged the user in, so requests from a trusted ingress peer need nothing more. Trust is by peer
//! address only — headers such as `X-Ingress-Path` can be sent by anyone. The Supervisor's address is
//! trusted only when facegate runs as an add-on (`SUPERVISOR_TOKEN` set): elsewhere 172.30.32.2 is just
//! some host on some network (a Docker bridge, a VPN) and gets no free pass. Every other client must send the
//! token, as `Authorization: Bearer <token>` or as the password of HTTP Basic auth (which is what browsers
//! and Home Assistant's MJPEG camera integration can send). The token is compared in constant time and
//! never logged.

use std::net::IpAddr;

use base64::Engine;
use hyper::header::AUTHORIZATION;
use hyper::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{HttpConfig, SUPERVISOR_INGRESS_PEER};

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

/// Whether this process runs as a Home Assistant add-on: the Supervisor gives every add-on a
/// `SUPERVISOR_TOKEN`.
pub fn running_as_addon() -> bool {
    std::env::var_os("SUPERVISOR_TOKEN").is_some_and(|v| !v.is_empty())
}

impl Auth {
    /// The rule for `config` in this process's environment (see [`running_as_addon`]).
    pub fn new(config: &HttpConfig) -> Self {
        Self::for_environment(config, running_as_addon())
    }

    /// The rule for `config`; `addon`: running as an add-on, the only place the Supervisor's ingress
    /// address ([`SUPERVISOR_INGRESS_PEER`]) is trusted. Other configured peers are trusted as configured.
    pub fn for_environment(config: &HttpConfig, addon: bool) -> Self {
        let token = config.token.expose();
        let supervisor = SUPERVISOR_INGRESS_PEER.to_canonical();
        let ingress_peers: Vec<IpAddr> = config
            .ingress_peers
            .iter()
            .map(|a| a.to_canonical())
            .filter(|a| addon || *a != supervisor)
            .collect();
        if !addon
            && config
                .ingress_peers
                .iter()
                .any(|a| a.to_canonical() == supervisor)
        {
            tracing::info!(
                "not running as a Home Assistant add-on (no SUPERVISOR_TOKEN): the ingress address {SUPERVISOR_INGRESS_PEER} is not trusted"
            );
        }
        Self {
            token_digest: (!token.is_empty()).then(|| digest(token.as_bytes())),
            ingress_peers,
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

    /// The rule of an add-on with the default ingress peers.
    fn auth(token: &str) -> Auth {
        Auth::for_environment(
            &HttpConfig {
                token: Secret::new(token),
                ..HttpConfig::default()
            },
            true,
        )
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
    fn the_supervisor_address_is_trusted_only_inside_an_addon() {
        let supervisor: IpAddr = "172.30.32.2".parse().unwrap();
        let mapped: IpAddr = "::ffff:172.30.32.2".parse().unwrap();
        let outside = |token: &str, peers: Vec<IpAddr>| {
            Auth::for_environment(
                &HttpConfig {
                    token: Secret::new(token),
                    ingress_peers: peers,
                    ..HttpConfig::default()
                },
                false,
            )
        };
        // Default peers, no token, not an add-on: nobody gets in, the Supervisor's address included.
        let a = outside("", HttpConfig::default().ingress_peers);
        for peer in [supervisor, mapped] {
            assert_eq!(
                a.check(peer, &HeaderMap::new()),
                Err(Refusal::NoTokenConfigured)
            );
        }
        // With a token it must present the token like anyone else.
        let a = outside("s3cret", HttpConfig::default().ingress_peers);
        assert_eq!(
            a.check(supervisor, &HeaderMap::new()),
            Err(Refusal::Missing)
        );
        assert_eq!(
            a.check(supervisor, &headers("Bearer s3cret")),
            Ok(Access::Token)
        );
        // Other peers configured by hand stay trusted (a reverse proxy the user runs).
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let a = outside("", vec![supervisor, proxy]);
        assert_eq!(a.check(proxy, &HeaderMap::new()), Ok(Access::Ingress));
        assert_eq!(
            a.check(supervisor, &HeaderMap::new()),
            Err(Refusal::NoTokenConfigured)
        );
    }

    #[test]
    fn debug_never_shows_the_token() {
        assert!(!format!("{:?}", auth("s3cret")).contains("s3cret"));
    }
}
