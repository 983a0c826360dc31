use std::io::{Cursor, Read};

use super::*;

/// A small synthetic JPEG (a gradient, no person), different per `k`.
fn jpeg(k: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, k]));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&img)
        .unwrap();
    out
}

/// `jpeg(k)` with an APP1 segment right after SOI whose payload holds an end and a start marker, as an EXIF
/// thumbnail does.
fn jpeg_with_thumbnail(k: u8) -> Vec<u8> {
    let plain = jpeg(k);
    let payload = [
        b'E', b'x', b'i', b'f', 0, 0, 0xff, 0xd8, 0xff, 0xd9, 0xff, 0xd9,
    ];
    let len = (payload.len() + 2) as u16;
    let mut out = vec![0xff, 0xd8, 0xff, 0xe1];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&plain[2..]);
    out
}

/// `jpeg(k)` made `extra` bytes longer by a comment segment.
fn jpeg_with_comment(k: u8, extra: usize) -> Vec<u8> {
    let plain = jpeg(k);
    let mut out = vec![0xff, 0xd8, 0xff, 0xfe];
    out.extend_from_slice(&((extra - 2) as u16).to_be_bytes());
    out.resize(2 + extra, b'c');
    out.extend_from_slice(&plain[2..]);
    out
}

/// Hands out one byte per read, to exercise every resumption point of the scan.
struct Trickle(Cursor<Vec<u8>>);

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(1);
        self.0.read(&mut buf[..n])
    }
}

fn pieces(reader: impl Read, max_frame: usize) -> (Vec<Piece>, u64) {
    let mut r = MjpegReader::new(reader, max_frame);
    let mut out = Vec::new();
    while let Some(p) = r.next_piece().unwrap() {
        out.push(p);
    }
    (out, r.skipped_bytes())
}

#[test]
fn splits_concatenated_jpegs_and_skips_junk_between() {
    let (a, b, c) = (jpeg(1), jpeg_with_thumbnail(2), jpeg(3));
    let mut stream = b"junk".to_vec();
    stream.extend_from_slice(&a);
    stream.extend_from_slice(&b);
    stream.extend_from_slice(&[0, 0, 0xff]);
    stream.extend_from_slice(&c);
    stream.extend_from_slice(b"\r\n");
    let want = vec![Piece::Jpeg(a), Piece::Jpeg(b), Piece::Jpeg(c)];
    let (got, skipped) = pieces(Cursor::new(stream.clone()), 1 << 20);
    assert_eq!(got, want);
    assert_eq!(skipped, 4 + 3 + 2);
    let (got, skipped) = pieces(Trickle(Cursor::new(stream)), 1 << 20);
    assert_eq!(got, want);
    assert_eq!(skipped, 9);
}

#[test]
fn a_cut_frame_is_reported_and_the_next_one_is_found() {
    let (a, b) = (jpeg(1), jpeg(2));
    // Cut inside the entropy-coded data, and inside the Huffman tables (whose length then spans into `b`).
    let dht = a.windows(2).position(|w| w == [0xff, 0xc4]).unwrap();
    for cut in [a.len() - 20, dht + 10] {
        let mut stream = a[..cut].to_vec();
        stream.extend_from_slice(&b);
        let (got, _) = pieces(Cursor::new(stream), 1 << 20);
        assert_eq!(
            got,
            vec![
                Piece::Bad(format!(
                    "the JPEG ends after {cut} bytes without its end-of-image marker (the next frame starts there)"
                )),
                Piece::Jpeg(b.clone())
            ],
            "cut at {cut}"
        );
    }
}

#[test]
fn broken_structure_oversize_and_a_stream_ending_mid_frame_are_bad_pieces() {
    let (a, b) = (jpeg(1), jpeg(2));
    // A header segment's marker byte overwritten: the walk finds no marker at byte 2.
    let mut broken = a.clone();
    broken[2] = 0x12;
    let mut stream = broken;
    stream.extend_from_slice(&b);
    stream.extend_from_slice(&a[..100]);
    let (got, _) = pieces(Cursor::new(stream), 1 << 20);
    assert_eq!(
        got,
        vec![
            Piece::Bad("corrupt JPEG structure at byte 2 (no marker where one must be)".into()),
            Piece::Jpeg(b.clone()),
            Piece::Bad(
                "the stream ends 100 bytes into a JPEG, before its end-of-image marker".into()
            ),
        ]
    );
    // A frame over the limit is refused, and the reader finds the next one.
    let big = jpeg_with_comment(1, 4000);
    let limit = b.len() + 100;
    let mut stream = big;
    stream.extend_from_slice(&b);
    let (got, _) = pieces(Cursor::new(stream), limit);
    assert_eq!(
        got[0],
        Piece::Bad(format!(
            "the JPEG is longer than the limit of {limit} bytes"
        ))
    );
    assert_eq!(got[1..], [Piece::Jpeg(b)]);
}

#[test]
fn jpeg_len_trims_a_padded_camera_buffer() {
    let a = jpeg_with_thumbnail(7);
    let mut padded = a.clone();
    padded.resize(a.len() + 5000, 0);
    assert_eq!(jpeg_len(&padded), Some(a.len()));
    assert_eq!(jpeg_len(&a[..a.len() - 1]), None);
    assert_eq!(jpeg_len(b"not a jpeg"), None);
    assert_eq!(jpeg_len(&[]), None);
}
