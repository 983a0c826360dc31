//! One framed connection to (or from) a board, plaintext or Noise-encrypted. Reading is cancel-safe (bytes
//! are buffered here), so a task can `select!` between incoming messages, commands and timers.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::frame::{self, FrameError, RawMessage};
use super::noise::{self, Key};
use super::EspError;

/// A framed connection.
pub struct Wire {
    stream: TcpStream,
    buf: Vec<u8>,
    noise: Option<snow::TransportState>,
}

impl Wire {
    fn new(stream: TcpStream) -> Wire {
        let _ = stream.set_nodelay(true); // commands are tiny: send each at once
        Wire {
            stream,
            buf: Vec::with_capacity(4096),
            noise: None,
        }
    }

    /// Whether this connection is encrypted.
    pub fn encrypted(&self) -> bool {
        self.noise.is_some()
    }

    /// The client side: plaintext when `key` is `None`, else the Noise handshake. Returns the node name
    /// the device announced during the handshake (Noise only).
    pub async fn client(
        stream: TcpStream,
        key: Option<&Key>,
    ) -> Result<(Wire, Option<String>), EspError> {
        let mut w = Wire::new(stream);
        let Some(key) = key else { return Ok((w, None)) };
        let mut hs = noise::initiator(key)?;
        let mut msg1 = vec![0u8; 256];
        let n = hs
            .write_message(&[], &mut msg1)
            .map_err(|e| EspError::Handshake(e.to_string()))?;
        let mut body = vec![noise::HANDSHAKE_OK];
        body.extend_from_slice(&msg1[..n]);
        // Client hello (an empty frame) and the first handshake message go out together.
        let mut out = frame::encode_noise_frame(&[])?;
        out.extend(frame::encode_noise_frame(&body)?);
        w.stream.write_all(&out).await?;
        let hello = w.read_noise_body().await?;
        let name = noise::parse_server_hello(&hello)?;
        let reply = w.read_noise_body().await?;
        match reply.first() {
            Some(&noise::HANDSHAKE_OK) => {}
            Some(_) => {
                let text = String::from_utf8_lossy(&reply[1..]).into_owned();
                return Err(EspError::Handshake(format!(
                    "device rejected the handshake: {text}"
                )));
            }
            None => return Err(EspError::Handshake("empty handshake reply".into())),
        }
        let mut scratch = vec![0u8; reply.len()];
        hs.read_message(&reply[1..], &mut scratch)
            .map_err(|e| EspError::Handshake(e.to_string()))?;
        w.noise = Some(
            hs.into_transport_mode()
                .map_err(|e| EspError::Handshake(e.to_string()))?,
        );
        Ok((w, Some(name)))
    }

    /// The device side (simulated board). With a key, a plaintext client gets a server hello it cannot read
    /// (as a real encrypted board does) and an error; a wrong key gets ESPHome's "Handshake MAC failure".
    pub async fn server(
        stream: TcpStream,
        key: Option<&Key>,
        name: &str,
        mac: &str,
    ) -> Result<Wire, EspError> {
        let mut w = Wire::new(stream);
        let Some(key) = key else { return Ok(w) };
        // The client's hello is an empty Noise frame; a plaintext client gets our server hello it cannot read.
        let hello = w.read_noise_body().await;
        let hello_frame = frame::encode_noise_frame(&noise::server_hello_body(name, mac))?;
        if let Err(e) = hello {
            let _ = w.stream.write_all(&hello_frame).await;
            return Err(e);
        }
        w.stream.write_all(&hello_frame).await?;
        let body = w.read_noise_body().await?;
        let mut hs = noise::responder(key)?;
        let mut scratch = vec![0u8; body.len().max(64)];
        let ok = body.first() == Some(&noise::HANDSHAKE_OK)
            && hs.read_message(&body[1..], &mut scratch).is_ok();
        if !ok {
            let mut err = vec![noise::HANDSHAKE_ERROR];
            err.extend_from_slice(b"Handshake MAC failure");
            w.stream
                .write_all(&frame::encode_noise_frame(&err)?)
                .await?;
            return Err(EspError::Handshake("client used a different key".into()));
        }
        let mut msg2 = vec![0u8; 256];
        let n = hs
            .write_message(&[], &mut msg2)
            .map_err(|e| EspError::Handshake(e.to_string()))?;
        let mut reply = vec![noise::HANDSHAKE_OK];
        reply.extend_from_slice(&msg2[..n]);
        w.stream
            .write_all(&frame::encode_noise_frame(&reply)?)
            .await?;
        w.noise = Some(
            hs.into_transport_mode()
                .map_err(|e| EspError::Handshake(e.to_string()))?,
        );
        Ok(w)
    }

    /// Reads more bytes into the buffer. Cancel-safe.
    async fn fill(&mut self) -> Result<(), EspError> {
        let mut tmp = [0u8; 4096];
        let n = self.stream.read(&mut tmp).await?;
        if n == 0 {
            return Err(if self.buf.is_empty() {
                EspError::Closed
            } else {
                FrameError::Truncated(self.buf.len()).into()
            });
        }
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(())
    }

    async fn read_noise_body(&mut self) -> Result<Vec<u8>, EspError> {
        loop {
            if self.buf.first() == Some(&frame::PLAINTEXT) {
                return Err(EspError::DeviceIsPlaintext);
            }
            if let Some((body, n)) = frame::decode_noise_frame(&self.buf)? {
                let body = body.to_vec();
                self.buf.drain(..n);
                return Ok(body);
            }
            self.fill().await?;
        }
    }

    /// Reads the next message. Cancel-safe.
    pub async fn read(&mut self) -> Result<RawMessage, EspError> {
        if self.noise.is_some() {
            let body = self.read_noise_body().await?;
            let t = self.noise.as_mut().expect("checked above");
            let mut clear = vec![0u8; body.len()];
            let n = t
                .read_message(&body, &mut clear)
                .map_err(|_| FrameError::Decrypt)?;
            return Ok(frame::decode_noise_inner(&clear[..n])?);
        }
        loop {
            match self.buf.first() {
                Some(&frame::NOISE) => return Err(EspError::RequiresEncryption),
                _ => {
                    if let Some((msg, n)) = frame::decode_plain(&self.buf)? {
                        self.buf.drain(..n);
                        return Ok(msg);
                    }
                }
            }
            self.fill().await?;
        }
    }

    /// Writes one message.
    pub async fn write(&mut self, msg_type: u16, payload: &[u8]) -> Result<(), EspError> {
        let bytes = match self.noise.as_mut() {
            Some(t) => {
                let clear = frame::encode_noise_inner(msg_type, payload)?;
                let mut enc = vec![0u8; clear.len() + 16];
                let n = t
                    .write_message(&clear, &mut enc)
                    .map_err(|_| FrameError::Decrypt)?;
                frame::encode_noise_frame(&enc[..n])?
            }
            None => frame::encode_plain(msg_type, payload),
        };
        self.stream.write_all(&bytes).await?;
        Ok(())
    }

    /// Writes raw bytes (tests of the peer's robustness).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), EspError> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// Closes the socket gracefully (FIN after whatever is still queued).
    pub async fn shutdown(mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// Aborts the connection: `SO_LINGER` 0, then close, so the kernel sends a TCP reset and discards every
    /// byte still queued (an unlock stuck behind a stalled path is never delivered later).
    pub fn abort(self) {
        if let Err(e) = self.stream.set_zero_linger() {
            tracing::warn!(error = %e, "cannot set SO_LINGER 0; closing normally");
        }
        drop(self.stream);
    }
}
