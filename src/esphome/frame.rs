//! Native-API framing as pure functions over byte buffers, so the parser can be tested (and fuzzed) without
//! sockets and never panics on what a peer sends.
//!
//! Plaintext frame: `0x00, varint(payload length), varint(message type), payload`.
//! Noise frame: `0x01, u16 big-endian length, bytes` where, after the handshake, the bytes decrypt to
//! `u16 type, u16 length, payload`.

/// The largest message we accept. ESPHome's own messages are a few hundred bytes (camera images come in
/// chunks); anything bigger is a broken or hostile peer, not a reason to allocate.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// Indicator byte of a plaintext frame.
pub const PLAINTEXT: u8 = 0x00;
/// Indicator byte of a Noise frame.
pub const NOISE: u8 = 0x01;

/// A bad frame: each says what was wrong so a log line is enough to debug a board.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("unexpected indicator byte {0:#04x} (expected {1:#04x})")]
    BadIndicator(u8, u8),
    #[error("malformed varint")]
    BadVarint,
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("message type {0} out of range")]
    BadType(u64),
    #[error("truncated frame: connection ended after {0} bytes of a frame")]
    Truncated(usize),
    #[error("encrypted frame shorter than its 4-byte header")]
    ShortInner,
    #[error("encrypted frame declares {declared} payload bytes but carries {actual}")]
    InnerLength { declared: usize, actual: usize },
    #[error("cannot decrypt frame (wrong key or corrupted data)")]
    Decrypt,
}

/// One message: its type number and its protobuf bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    pub msg_type: u16,
    pub payload: Vec<u8>,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Reads a varint at `buf[0..]`: `Ok(None)` when more bytes are needed.
fn get_varint(buf: &[u8]) -> Result<Option<(u64, usize)>, FrameError> {
    let mut v: u64 = 0;
    for (i, &b) in buf.iter().enumerate() {
        if i >= 5 {
            // Lengths and types are 32-bit at most: 5 bytes of varint.
            return Err(FrameError::BadVarint);
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((v, i + 1)));
        }
    }
    if buf.len() >= 5 {
        return Err(FrameError::BadVarint);
    }
    Ok(None)
}

/// Encodes one plaintext frame.
pub fn encode_plain(msg_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.push(PLAINTEXT);
    put_varint(&mut out, payload.len() as u64);
    put_varint(&mut out, u64::from(msg_type));
    out.extend_from_slice(payload);
    out
}

/// Parses one plaintext frame at the start of `buf`. `Ok(None)`: incomplete, read more. `Ok(Some((msg, n)))`:
/// a message and the number of bytes it used.
pub fn decode_plain(buf: &[u8]) -> Result<Option<(RawMessage, usize)>, FrameError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first != PLAINTEXT {
        return Err(FrameError::BadIndicator(first, PLAINTEXT));
    }
    let Some((len, n1)) = get_varint(&buf[1..])? else {
        return Ok(None);
    };
    let len = len as usize;
    if len > MAX_PAYLOAD {
        return Err(FrameError::TooLarge {
            len,
            max: MAX_PAYLOAD,
        });
    }
    let Some((ty, n2)) = get_varint(&buf[1 + n1..])? else {
        return Ok(None);
    };
    if ty > u64::from(u16::MAX) {
        return Err(FrameError::BadType(ty));
    }
    let start = 1 + n1 + n2;
    if buf.len() < start + len {
        return Ok(None);
    }
    let msg = RawMessage {
        msg_type: ty as u16,
        payload: buf[start..start + len].to_vec(),
    };
    Ok(Some((msg, start + len)))
}

/// Wraps `bytes` (a handshake message or an encrypted message) in a Noise frame.
pub fn encode_noise_frame(bytes: &[u8]) -> Result<Vec<u8>, FrameError> {
    if bytes.len() > usize::from(u16::MAX) {
        return Err(FrameError::TooLarge {
            len: bytes.len(),
            max: usize::from(u16::MAX),
        });
    }
    let mut out = Vec::with_capacity(bytes.len() + 3);
    out.push(NOISE);
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(out)
}

/// Parses one Noise frame at the start of `buf`: `Ok(None)` when incomplete, else its body and bytes used.
pub fn decode_noise_frame(buf: &[u8]) -> Result<Option<(&[u8], usize)>, FrameError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first != NOISE {
        return Err(FrameError::BadIndicator(first, NOISE));
    }
    if buf.len() < 3 {
        return Ok(None);
    }
    let len = usize::from(u16::from_be_bytes([buf[1], buf[2]]));
    if buf.len() < 3 + len {
        return Ok(None);
    }
    Ok(Some((&buf[3..3 + len], 3 + len)))
}

/// The cleartext inside an encrypted frame: `u16 type, u16 length, payload`.
pub fn encode_noise_inner(msg_type: u16, payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(FrameError::TooLarge {
            len: payload.len(),
            max: MAX_PAYLOAD,
        });
    }
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&msg_type.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Parses the decrypted cleartext of one encrypted frame.
pub fn decode_noise_inner(buf: &[u8]) -> Result<RawMessage, FrameError> {
    if buf.len() < 4 {
        return Err(FrameError::ShortInner);
    }
    let msg_type = u16::from_be_bytes([buf[0], buf[1]]);
    let declared = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    let actual = buf.len() - 4;
    if declared != actual {
        return Err(FrameError::InnerLength { declared, actual });
    }
    Ok(RawMessage {
        msg_type,
        payload: buf[4..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_round_trip_with_multibyte_lengths() {
        for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, MAX_PAYLOAD] {
            let payload = vec![0xab; len];
            let f = encode_plain(60, &payload);
            for cut in [0, 1, f.len() / 2, f.len() - 1] {
                assert_eq!(
                    decode_plain(&f[..cut]).unwrap(),
                    None,
                    "len {len} cut {cut}"
                );
            }
            let (m, n) = decode_plain(&f).unwrap().unwrap();
            assert_eq!((m.msg_type, m.payload.len(), n), (60, len, f.len()));
        }
    }

    #[test]
    fn noise_frames_round_trip() {
        let inner = encode_noise_inner(7, b"abc").unwrap();
        assert_eq!(
            decode_noise_inner(&inner).unwrap(),
            RawMessage {
                msg_type: 7,
                payload: b"abc".to_vec()
            }
        );
        let f = encode_noise_frame(&inner).unwrap();
        assert_eq!(decode_noise_frame(&f[..4]).unwrap(), None);
        assert_eq!(decode_noise_frame(&f).unwrap(), Some((&inner[..], f.len())));
    }
}
