//! Finding where one JPEG ends: splitting an MJPEG file (JPEGs back to back, as `ffmpeg -f mjpeg` writes
//! them) into frames without reading the whole file, and trimming a camera buffer to its JPEG.
//!
//! Searching for the `FF D9` end marker alone is not enough: an EXIF thumbnail inside an APP1 segment carries
//! its own markers. So the header segments are walked by their lengths, and only inside entropy-coded data
//! (where a literal `FF` is always stuffed as `FF 00`) is a marker searched for. A new start-of-image marker
//! before the end marker means the frame was cut short; bytes that are not a marker where one must be mean
//! the frame is corrupt. Either way the reader resynchronises on the next start-of-image.

use std::io::Read;

/// How a scan of the bytes from a start-of-image marker ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Extent {
    /// The JPEG (end marker included) is this many bytes long.
    Complete(usize),
    /// Another image starts at this offset before this one ended.
    Truncated(usize),
    /// The structure is broken at this offset.
    Corrupt(usize),
    /// More bytes are needed.
    Incomplete,
}

/// Resumable position of a scan, so a large frame arriving in pieces is scanned once.
#[derive(Clone, Copy, Debug)]
struct Scan {
    pos: usize,
    in_entropy: bool,
}

impl Scan {
    /// Just after the start-of-image marker.
    fn new() -> Self {
        Self {
            pos: 2,
            in_entropy: false,
        }
    }

    /// Scans `b` (which starts with `FF D8`) from where the last call stopped.
    fn run(&mut self, b: &[u8]) -> Extent {
        loop {
            if self.in_entropy {
                // Entropy-coded data: FF 00 is a stuffed byte, FF D0..D7 a restart marker, FF FF fill.
                let Some(off) = b
                    .get(self.pos..)
                    .and_then(|r| r.iter().position(|&x| x == 0xff))
                else {
                    self.pos = self.pos.max(b.len());
                    return Extent::Incomplete;
                };
                let p = self.pos + off;
                let Some(&next) = b.get(p + 1) else {
                    self.pos = p;
                    return Extent::Incomplete;
                };
                match next {
                    0x00 | 0xd0..=0xd7 => self.pos = p + 2,
                    0xff => self.pos = p + 1,
                    _ => {
                        self.pos = p;
                        self.in_entropy = false;
                    }
                }
                continue;
            }
            let p = self.pos;
            let (Some(&ff), Some(&code)) = (b.get(p), b.get(p + 1)) else {
                return Extent::Incomplete;
            };
            if ff != 0xff {
                return Extent::Corrupt(p);
            }
            match code {
                0xff => self.pos = p + 1, // fill byte before a marker
                0xd9 => return Extent::Complete(p + 2),
                0xd8 => return Extent::Truncated(p),
                0x01 | 0xd0..=0xd7 => self.pos = p + 2,
                0x00 => return Extent::Corrupt(p),
                _ => {
                    let (Some(&hi), Some(&lo)) = (b.get(p + 2), b.get(p + 3)) else {
                        return Extent::Incomplete;
                    };
                    let len = usize::from(u16::from_be_bytes([hi, lo]));
                    if len < 2 {
                        return Extent::Corrupt(p);
                    }
                    // Tables and frame headers never hold a start-of-image; if one does, this frame was cut
                    // inside its header and the length belongs to garbage. (APPn and comments may legally
                    // carry a thumbnail JPEG.)
                    if !matches!(code, 0xe0..=0xef | 0xfe) {
                        let Some(body) = b.get(p + 4..p + 2 + len) else {
                            return Extent::Incomplete;
                        };
                        if let Some(i) = body.windows(3).position(|w| w == [0xff, 0xd8, 0xff]) {
                            return Extent::Truncated(p + 4 + i);
                        }
                    }
                    self.pos = p + 2 + len;
                    self.in_entropy = code == 0xda;
                }
            }
        }
    }
}

/// The length of the complete JPEG at the start of `bytes` (end marker included), or `None` when `bytes` does
/// not start with one that ends. Cameras that report a whole buffer (v4l2loopback reports the buffer size as
/// the bytes used) are trimmed with this.
pub fn jpeg_len(bytes: &[u8]) -> Option<usize> {
    if !bytes.starts_with(&[0xff, 0xd8]) {
        return None;
    }
    match Scan::new().run(bytes) {
        Extent::Complete(n) => Some(n),
        _ => None,
    }
}

/// One piece of an MJPEG stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// A complete JPEG by its markers (its content may still fail to decode).
    Jpeg(Vec<u8>),
    /// Something that started as a JPEG but is not one: why.
    Bad(String),
}

/// Splits a byte stream of concatenated JPEGs into frames, holding at most one frame (plus one read) in
/// memory. Bytes between frames that are not a JPEG are skipped.
pub struct MjpegReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf`.
    start: usize,
    eof: bool,
    max_frame: usize,
    /// Bytes skipped because they were not inside any JPEG.
    skipped: u64,
}

const READ_CHUNK: usize = 64 << 10;

impl<R: Read> MjpegReader<R> {
    /// A reader refusing frames longer than `max_frame` bytes (reported as [`Piece::Bad`], then skipped).
    pub fn new(inner: R, max_frame: usize) -> Self {
        Self {
            inner,
            buf: Vec::new(),
            start: 0,
            eof: false,
            max_frame,
            skipped: 0,
        }
    }

    /// Bytes skipped so far because they belonged to no JPEG.
    pub fn skipped_bytes(&self) -> u64 {
        self.skipped
    }

    /// The underlying reader (e.g. to rewind a file), after which buffered bytes are discarded.
    pub fn reset_with(
        &mut self,
        f: impl FnOnce(&mut R) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        f(&mut self.inner)?;
        self.buf.clear();
        self.start = 0;
        self.eof = false;
        Ok(())
    }

    /// The next frame, or `None` at the end of the stream.
    pub fn next_piece(&mut self) -> std::io::Result<Option<Piece>> {
        // Find a start-of-image marker.
        loop {
            let rest = &self.buf[self.start..];
            if let Some(i) = rest.windows(2).position(|w| w == [0xff, 0xd8]) {
                self.skipped += i as u64;
                self.start += i;
                break;
            }
            // Keep a trailing FF: it may be the first half of the marker.
            let keep = usize::from(rest.last() == Some(&0xff));
            self.skipped += (rest.len() - keep) as u64;
            self.start = self.buf.len() - keep;
            if self.eof {
                self.skipped += keep as u64;
                self.start = self.buf.len();
                return Ok(None);
            }
            self.fill()?;
        }
        let mut scan = Scan::new();
        loop {
            let frame = &self.buf[self.start..];
            let extent = scan.run(frame);
            let limit_hit = frame.len() > self.max_frame;
            match extent {
                Extent::Complete(n) if n <= self.max_frame => {
                    let jpeg = frame[..n].to_vec();
                    self.start += n;
                    return Ok(Some(Piece::Jpeg(jpeg)));
                }
                Extent::Truncated(n) => {
                    self.start += n;
                    return Ok(Some(Piece::Bad(format!(
                        "the JPEG ends after {n} bytes without its end-of-image marker (the next frame starts there)"
                    ))));
                }
                Extent::Corrupt(n) => {
                    self.start += n.max(2);
                    return Ok(Some(Piece::Bad(format!(
                        "corrupt JPEG structure at byte {n} (no marker where one must be)"
                    ))));
                }
                Extent::Complete(_) | Extent::Incomplete if limit_hit => {
                    self.start += 2;
                    return Ok(Some(Piece::Bad(format!(
                        "the JPEG is longer than the limit of {} bytes",
                        self.max_frame
                    ))));
                }
                Extent::Complete(_) | Extent::Incomplete if self.eof => {
                    let n = frame.len();
                    self.start = self.buf.len();
                    return Ok(Some(Piece::Bad(format!(
                        "the stream ends {n} bytes into a JPEG, before its end-of-image marker"
                    ))));
                }
                Extent::Complete(_) | Extent::Incomplete => self.fill()?,
            }
        }
    }

    /// Reads more bytes, dropping consumed ones first. Reads grow with the pending frame, so a large frame
    /// costs a few reads, not thousands.
    fn fill(&mut self) -> std::io::Result<()> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let want = READ_CHUNK.max(self.buf.len());
        let old = self.buf.len();
        self.buf.resize(old + want, 0);
        let n = loop {
            match self.inner.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(old + n);
        if n == 0 {
            self.eof = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
