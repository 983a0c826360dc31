//! The HTTP/1.1 a camera speaks: one GET, the status and headers, a body framed by Content-Length, chunked
//! transfer encoding (ESP32-CAM's stream handler sends chunks) or the connection's end, and the parts of a
//! `multipart/x-mixed-replace` body.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use base64::Engine;

use crate::capture::latest::Mailbox;
use crate::config::redact_url;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Reads wake up this often to notice a dropped source or a stalled camera.
const READ_WAKE: Duration = Duration::from_millis(250);
const MAX_HEADER_BYTES: usize = 64 << 10;

/// An `http://` URL, split.
#[derive(Clone, Debug)]
pub struct Url {
    host: String,
    port: u16,
    /// Path and query, starting with `/`.
    target: String,
    /// `user:password` for Basic authentication.
    userinfo: Option<String>,
}

impl Url {
    /// Parses `http://[user:password@]host[:port][/path]`. The password may hold any character but `@`
    /// is taken up to the last `@` (so `/`, `?`, `#` and `:` in it work). Errors show the URL redacted.
    pub fn parse(url: &str) -> Result<Url, String> {
        let shown = redact_url(url);
        let Some(rest) = url.strip_prefix("http://") else {
            return Err(format!(
                "'{shown}' is not an http:// URL (cameras are read over plain HTTP; https is not supported)"
            ));
        };
        // Credentials run to the last '@': `user:pa/ss@host` is a password with a '/', not a path. An '@'
        // in a path (`host/img@2x.jpg`: a '/' before any ':') is not taken for credentials.
        let userinfo_end = rest.rfind('@').filter(|&at| {
            let before = &rest[..at];
            match (before.find('/'), before.find(':')) {
                (None, _) => true,
                (Some(slash), Some(colon)) => colon < slash,
                (Some(_), None) => false,
            }
        });
        let (userinfo, rest) = match userinfo_end {
            Some(at) => (Some(rest[..at].to_string()), &rest[at + 1..]),
            None => (None, rest),
        };
        let (hostport, target) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let url = &shown;
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                let port = p
                    .parse()
                    .map_err(|_| format!("bad port '{p}' in '{url}'"))?;
                (h, port)
            }
            _ => (hostport, 80),
        };
        if host.is_empty() {
            return Err(format!("no host in '{url}'"));
        }
        Ok(Url {
            host: host.to_string(),
            port,
            target: target.to_string(),
            userinfo,
        })
    }

    /// The URL without its password, for logs and names (see [`redact_url`]).
    pub fn redacted(&self) -> String {
        let user = match &self.userinfo {
            Some(u) => format!("{u}@"),
            None => String::new(),
        };
        redact_url(&format!(
            "http://{user}{}:{}{}",
            self.host, self.port, self.target
        ))
    }
}

/// A TCP stream whose reads wait out timeouts until the source is dropped or the camera stalls.
pub struct Patient<'a> {
    tcp: TcpStream,
    mb: &'a Mailbox,
    stall: Duration,
}

impl Read for Patient<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let start = Instant::now();
        loop {
            match self.tcp.read(buf) {
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if self.mb.is_closed() {
                        return Err(std::io::Error::other("the source was closed"));
                    }
                    if start.elapsed() >= self.stall {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("no data from the camera for {} s", self.stall.as_secs()),
                        ));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }
}

enum Framing {
    Length(u64),
    Chunked { left: u64, done: bool },
    UntilClose,
}

/// A response body, unframed.
pub struct Body<'a> {
    conn: BufReader<Patient<'a>>,
    framing: Framing,
}

impl Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.framing {
            Framing::Length(0) => Ok(0),
            Framing::Length(left) => {
                let max = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                let n = self.conn.read(&mut buf[..max])?;
                if n == 0 {
                    return Err(eof("the body ended before its Content-Length"));
                }
                *left -= n as u64;
                Ok(n)
            }
            Framing::Chunked { done: true, .. } => Ok(0),
            Framing::Chunked { left, done } => {
                if *left == 0 {
                    let line = read_line(&mut self.conn)?;
                    let size = line.split(';').next().unwrap_or("").trim();
                    let size = u64::from_str_radix(size, 16)
                        .map_err(|_| invalid(format!("bad chunk size line '{line}'")))?;
                    if size == 0 {
                        // Trailers, then the end.
                        while !read_line(&mut self.conn)?.is_empty() {}
                        *done = true;
                        return Ok(0);
                    }
                    *left = size;
                }
                let max = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                let n = self.conn.read(&mut buf[..max])?;
                if n == 0 {
                    return Err(eof("the connection ended inside a chunk"));
                }
                *left -= n as u64;
                if *left == 0 && !read_line(&mut self.conn)?.is_empty() {
                    return Err(invalid("a chunk is not followed by CRLF".to_string()));
                }
                Ok(n)
            }
            Framing::UntilClose => self.conn.read(buf),
        }
    }
}

pub struct Response<'a> {
    pub status: u16,
    pub content_type: String,
    pub body: Body<'a>,
}

/// Sends a GET and reads the status and headers.
pub fn get<'a>(url: &Url, mb: &'a Mailbox, stall: Duration) -> std::io::Result<Response<'a>> {
    let addr = (url.host.as_str(), url.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{} has no address", url.host)))?;
    let mut tcp = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    tcp.set_read_timeout(Some(READ_WAKE))?;
    tcp.set_write_timeout(Some(CONNECT_TIMEOUT))?;
    tcp.set_nodelay(true)?;
    let mut request = format!(
        "GET {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: facegate\r\nAccept: */*\r\nConnection: close\r\n",
        url.target, url.host, url.port
    );
    if let Some(userinfo) = &url.userinfo {
        let token = base64::engine::general_purpose::STANDARD.encode(userinfo);
        request.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes())?;
    let mut conn = BufReader::new(Patient { tcp, mb, stall });

    let status_line = read_line(&mut conn)?;
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|s| s.get(2..5))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("not an HTTP response: '{status_line}'")))?;
    let (mut content_type, mut length, mut chunked) = (String::new(), None, false);
    let mut header_bytes = status_line.len();
    loop {
        let line = read_line(&mut conn)?;
        if line.is_empty() {
            break;
        }
        header_bytes += line.len();
        if header_bytes > MAX_HEADER_BYTES {
            return Err(invalid("the response headers are too long".to_string()));
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-type" => content_type = value.to_string(),
            "content-length" => length = value.parse().ok(),
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let framing = match (chunked, length) {
        (true, _) => Framing::Chunked {
            left: 0,
            done: false,
        },
        (false, Some(n)) => Framing::Length(n),
        (false, None) => Framing::UntilClose,
    };
    Ok(Response {
        status,
        content_type,
        body: Body { conn, framing },
    })
}

/// The `boundary` parameter of a multipart Content-Type.
pub fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (k, v) = param.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("boundary"))
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty())
    })
}

/// The parts of a multipart body.
pub struct Parts<'a> {
    body: BufReader<Body<'a>>,
    /// `--boundary`; cameras that declare the boundary with its dashes already are accepted too.
    delimiter: Vec<u8>,
    bare: Vec<u8>,
    max: usize,
    /// The previous part was read up to (and including) the next delimiter line.
    at_part: bool,
}

/// One part: its bytes, or why it is not a frame.
pub type Part = Result<Vec<u8>, String>;

impl<'a> Parts<'a> {
    pub fn new(body: Body<'a>, boundary: &str, max: usize) -> Self {
        Self {
            body: BufReader::with_capacity(64 << 10, body),
            delimiter: format!("--{boundary}").into_bytes(),
            bare: boundary.as_bytes().to_vec(),
            max,
            at_part: false,
        }
    }

    /// Whether `line` (without its line end) is the delimiter; `Some(true)` when it is the closing one.
    fn delimiter_kind(&self, line: &[u8]) -> Option<bool> {
        let line = trim_eol(line);
        for d in [&self.delimiter, &self.bare] {
            if let Some(rest) = line.strip_prefix(d.as_slice()) {
                match rest.trim_ascii_end() {
                    b"" => return Some(false),
                    b"--" => return Some(true),
                    _ => {}
                }
            }
        }
        None
    }

    /// The next part; `None` when the body ends (closing delimiter or end of stream).
    pub fn next_part(&mut self) -> std::io::Result<Option<Part>> {
        // To the delimiter line (skipping the preamble and the CRLF after the previous part).
        let mut skipped = 0;
        while !self.at_part {
            let mut line = Vec::new();
            if self.body.read_until(b'\n', &mut line)? == 0 {
                return Ok(None);
            }
            match self.delimiter_kind(&line) {
                Some(true) => return Ok(None),
                Some(false) => self.at_part = true,
                None => {
                    skipped += line.len();
                    if skipped > self.max {
                        return Err(invalid(format!("no multipart boundary in {skipped} bytes")));
                    }
                }
            }
        }
        self.at_part = false;
        let (mut content_type, mut length) = (None, None);
        loop {
            let line = read_line(&mut self.body)?;
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-type" => content_type = Some(value.trim().to_string()),
                    "content-length" => length = value.trim().parse::<usize>().ok(),
                    _ => {}
                }
            }
        }
        let bytes = match length {
            Some(n) if n > self.max => {
                std::io::copy(&mut (&mut self.body).take(n as u64), &mut std::io::sink())?;
                return Ok(Some(Err(format!(
                    "part of {n} bytes is larger than the limit of {} bytes",
                    self.max
                ))));
            }
            Some(n) => {
                let mut b = vec![0; n];
                self.body.read_exact(&mut b)?;
                b
            }
            None => self.read_to_delimiter()?,
        };
        if let Some(ct) = content_type {
            if !ct.to_ascii_lowercase().starts_with("image/jpeg") {
                return Ok(Some(Err(format!(
                    "part has content type '{ct}', expected image/jpeg"
                ))));
            }
        }
        Ok(Some(Ok(bytes)))
    }

    /// A part without Content-Length: everything up to the CRLF before the next delimiter line.
    fn read_to_delimiter(&mut self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let start = out.len();
            if self.body.read_until(b'\n', &mut out)? == 0 {
                return Err(eof("the stream ended inside a part"));
            }
            if let Some(closing) = self.delimiter_kind(&out[start..]) {
                out.truncate(start);
                if out.ends_with(b"\r\n") {
                    out.truncate(out.len() - 2);
                } else if out.ends_with(b"\n") {
                    out.truncate(out.len() - 1);
                }
                // After a closing delimiter the next call finds the end of the body.
                self.at_part = !closing;
                return Ok(out);
            }
            if out.len() > self.max {
                return Err(invalid(format!(
                    "a part is larger than the limit of {} bytes",
                    self.max
                )));
            }
        }
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// One header line without its line end, bounded in length.
fn read_line(r: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = Vec::new();
    r.take(MAX_HEADER_BYTES as u64)
        .read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(eof("the connection closed"));
    }
    if !line.ends_with(b"\n") {
        return Err(invalid("a header line is too long or cut off".to_string()));
    }
    Ok(String::from_utf8_lossy(trim_eol(&line)).into_owned())
}

fn eof(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, what.to_string())
}

fn invalid(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}
