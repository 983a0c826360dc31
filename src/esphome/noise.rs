//! The native API's encryption: Noise_NNpsk0_25519_ChaChaPoly_SHA256 keyed by the board's 32-byte API key,
//! with ESPHome's prologue and its server-hello / handshake-status bytes. The async exchange is in
//! [`super::wire`]; this module holds the pure parts.

use base64::Engine;

use super::EspError;

/// The Noise protocol name ESPHome uses.
pub const PATTERN: &str = "Noise_NNpsk0_25519_ChaChaPoly_SHA256";
/// Both sides mix this into the handshake hash; a mismatch fails the handshake.
pub const PROLOGUE: &[u8] = b"NoiseAPIInit\x00\x00";
/// Handshake-frame status byte: 0 = a Noise message follows, 1 = an error text follows.
pub const HANDSHAKE_OK: u8 = 0x00;
pub const HANDSHAKE_ERROR: u8 = 0x01;

/// A board's API encryption key (the `api: encryption: key:` value).
#[derive(Clone, PartialEq, Eq)]
pub struct Key(pub [u8; 32]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)") // never log a secret
    }
}

impl Key {
    /// Parses the base64 text ESPHome prints (`esphome` wizard, `secrets.yaml`).
    pub fn from_base64(text: &str) -> Result<Key, EspError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| EspError::BadKey(e.to_string()))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| EspError::BadKey(format!("{} bytes", b.len())))?;
        Ok(Key(arr))
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }
}

fn builder(key: &Key) -> Result<snow::Builder<'_>, EspError> {
    let params = PATTERN
        .parse()
        .map_err(|e: snow::Error| EspError::Handshake(e.to_string()))?;
    let err = |e: snow::Error| EspError::Handshake(e.to_string());
    snow::Builder::new(params)
        .prologue(PROLOGUE)
        .map_err(err)?
        .psk(0, &key.0)
        .map_err(err)
}

/// The client side of the handshake (it speaks first).
pub fn initiator(key: &Key) -> Result<snow::HandshakeState, EspError> {
    builder(key)?
        .build_initiator()
        .map_err(|e| EspError::Handshake(e.to_string()))
}

/// The device side of the handshake (the simulated board).
pub fn responder(key: &Key) -> Result<snow::HandshakeState, EspError> {
    builder(key)?
        .build_responder()
        .map_err(|e| EspError::Handshake(e.to_string()))
}

/// The body of the device's server-hello frame: chosen protocol (1 = Noise), node name, MAC, NUL-terminated.
pub fn server_hello_body(name: &str, mac: &str) -> Vec<u8> {
    let mut out = vec![0x01];
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out.extend_from_slice(mac.as_bytes());
    out.push(0);
    out
}

/// Reads a server-hello body: the node name the device announces.
pub fn parse_server_hello(body: &[u8]) -> Result<String, EspError> {
    match body.first() {
        Some(0x01) => {}
        Some(p) => {
            return Err(EspError::Handshake(format!(
                "device chose unknown protocol {p}"
            )))
        }
        None => return Err(EspError::Handshake("empty server hello".into())),
    }
    let name = body[1..].split(|&b| b == 0).next().unwrap_or_default();
    Ok(String::from_utf8_lossy(name).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_reject_wrong_lengths() {
        let k = Key::from_base64("px7tsbK3C7bpXHr2OevEV2ZMg/FrNBw2+O2pNPbedtA=").unwrap();
        assert_eq!(Key::from_base64(&k.to_base64()).unwrap(), k);
        assert!(matches!(Key::from_base64("AAAA"), Err(EspError::BadKey(_))));
        assert!(matches!(
            Key::from_base64("not base64!"),
            Err(EspError::BadKey(_))
        ));
    }

    #[test]
    fn server_hello_round_trip() {
        let b = server_hello_body("facegate-lock", "02:fa:ce:6a:7e:01");
        assert_eq!(parse_server_hello(&b).unwrap(), "facegate-lock");
        assert!(parse_server_hello(&[7]).is_err());
    }
}
