//! Replay sources on a real clip from ../shared/faces/blink, converted at test time with ffmpeg
//! (scripts/clip-to-mjpeg.sh): frame counts, media times, pixels against ffmpeg's own split, real-time pacing
//! with dropped-frame accounting, looping, and bad input (cut, corrupt, empty and non-image frames).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use facegate::capture::mjpeg::{MjpegReader, Piece};
use facegate::capture::{CaptureError, FrameSource, Pace, ReplayOptions, ReplaySource};

/// The clip used throughout: 250 frames, 480x480, 30 fps.
const CLIP: &str = "blink/liveportrait_driving_d19.mp4";
const CLIP_FRAMES: u64 = 250;

/// The clip as an MJPEG file in `dir` (converted once per machine, cached by the script).
fn clip_mjpeg(dir: &Path) -> PathBuf {
    let out = dir.join("clip.mjpeg");
    let status = Command::new("bash")
        .arg(common::repo().join("scripts/clip-to-mjpeg.sh"))
        .arg(common::face(CLIP))
        .arg(&out)
        .status()
        .expect("run scripts/clip-to-mjpeg.sh");
    assert!(status.success(), "clip-to-mjpeg.sh failed");
    out
}

/// The first `n` frames of an MJPEG file as separate JPEG files (ffmpeg's own split, bytes copied).
fn split_with_ffmpeg(mjpeg: &Path, n: u32, dir: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-i"])
        .arg(mjpeg)
        .args(["-c:v", "copy", "-frames:v", &n.to_string()])
        .arg(dir.join("%04d.jpg"))
        .status()
        .expect("ffmpeg (scripts/setup-media.sh installs it)");
    assert!(status.success());
    (1..=n).map(|i| dir.join(format!("{i:04}.jpg"))).collect()
}

fn opts(fps: f32, pace: Pace, looped: bool) -> ReplayOptions {
    ReplayOptions { fps, pace, looped }
}

fn bad_reason(r: Result<Option<facegate::capture::Frame>, CaptureError>) -> String {
    match r {
        Err(CaptureError::BadFrame { reason, .. }) => reason,
        other => panic!("expected a bad frame, got {other:?}"),
    }
}

#[test]
fn mjpeg_file_plays_every_frame_at_its_media_time_with_ffmpegs_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let mjpeg = clip_mjpeg(tmp.path());
    // Our splitter agrees byte for byte with ffmpeg's on the first 30 frames.
    let theirs = split_with_ffmpeg(&mjpeg, 30, &tmp.path().join("ffmpeg"));
    let mut reader = MjpegReader::new(std::fs::File::open(&mjpeg).unwrap(), 1 << 24);
    for path in &theirs {
        let piece = reader.next_piece().unwrap().unwrap();
        assert!(
            piece == Piece::Jpeg(std::fs::read(path).unwrap()),
            "{path:?}"
        );
    }

    let mut src = ReplaySource::open(&mjpeg, opts(30.0, Pace::Fast, false)).unwrap();
    let mut folder =
        ReplaySource::open(&tmp.path().join("ffmpeg"), opts(30.0, Pace::Fast, false)).unwrap();
    let mut n = 0;
    let t = Instant::now();
    while let Some(frame) = src.next_frame().unwrap() {
        assert_eq!(frame.seq, n);
        assert_eq!(frame.pts, Duration::from_secs_f64(n as f64 / 30.0));
        assert_eq!(frame.image.dimensions(), (480, 480));
        if n < 30 {
            // The same JPEG bytes from the folder decode to the same pixels.
            let same = folder.next_frame().unwrap().unwrap();
            assert_eq!(same.seq, n);
            assert!(same.image == frame.image, "frame {n} differs");
        }
        n += 1;
    }
    assert_eq!(n, CLIP_FRAMES, "ffprobe counts 250 frames in the clip");
    eprintln!(
        "fast replay: {n} frames of 480x480 in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(src.dropped(), 0);
    assert!(src.next_frame().unwrap().is_none(), "stays ended");
    assert!(folder.next_frame().unwrap().is_none());
}

#[test]
fn realtime_keeps_pace_and_a_slow_consumer_gets_the_newest_frame() {
    let tmp = tempfile::tempdir().unwrap();
    let mjpeg = clip_mjpeg(tmp.path());
    let frames = split_with_ffmpeg(&mjpeg, 20, &tmp.path().join("f"));
    assert_eq!(frames.len(), 20);

    // A consumer faster than 10 fps: every frame, none dropped, the last one due at 1.9 s.
    let t0 = Instant::now();
    let mut src =
        ReplaySource::open(&tmp.path().join("f"), opts(10.0, Pace::Realtime, false)).unwrap();
    let mut seqs = Vec::new();
    while let Some(f) = src.next_frame().unwrap() {
        assert!(
            t0.elapsed() >= f.pts,
            "frame {} came before it was due",
            f.seq
        );
        seqs.push(f.seq);
    }
    let took = t0.elapsed();
    assert_eq!(seqs, (0..20).collect::<Vec<_>>());
    assert_eq!(src.dropped(), 0);
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_millis(2600),
        "{took:?}"
    );

    // A consumer taking 130 ms per frame at 20 fps: it sees the newest due frame, skipping ~2 each time.
    let t0 = Instant::now();
    let mut src =
        ReplaySource::open(&tmp.path().join("f"), opts(20.0, Pace::Realtime, false)).unwrap();
    let mut delivered = Vec::new();
    loop {
        let called = t0.elapsed();
        let Some(f) = src.next_frame().unwrap() else {
            break;
        };
        let returned = t0.elapsed();
        // Due (pts after the first pull, which is after t0) and the newest due (the next one was not due yet).
        assert!(
            f.pts <= returned,
            "seq {} pts {:?} > {returned:?}",
            f.seq,
            f.pts
        );
        if f.seq < 19 {
            assert!(
                f.pts + Duration::from_millis(50) > called.saturating_sub(Duration::from_millis(5)),
                "seq {} at {:?} is stale when called at {called:?}",
                f.seq,
                f.pts
            );
        }
        delivered.push(f.seq);
        std::thread::sleep(Duration::from_millis(130));
    }
    assert_eq!(
        *delivered.last().unwrap(),
        19,
        "the last frame is still delivered"
    );
    assert!(delivered.windows(2).all(|w| w[0] < w[1]), "{delivered:?}");
    assert_eq!(
        src.dropped(),
        20 - delivered.len() as u64,
        "every frame is delivered or counted as dropped: {delivered:?}"
    );
    assert!((6..=9).contains(&delivered.len()), "{delivered:?}");
}

#[test]
fn looped_replay_restarts_with_media_time_still_counting() {
    let tmp = tempfile::tempdir().unwrap();
    let mjpeg = clip_mjpeg(tmp.path());
    split_with_ffmpeg(&mjpeg, 3, &tmp.path().join("f"));
    for path in [tmp.path().join("f"), mjpeg] {
        let mut src = ReplaySource::open(&path, opts(25.0, Pace::Fast, true)).unwrap();
        let frames: Vec<_> = (0..7).map(|_| src.next_frame().unwrap().unwrap()).collect();
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(f.seq, i as u64);
            assert_eq!(f.pts, Duration::from_millis(40 * i as u64));
        }
        if path.is_dir() {
            assert!(frames[3].image == frames[0].image && frames[6].image == frames[0].image);
            assert!(frames[4].image == frames[1].image && frames[1].image != frames[0].image);
        }
        assert_eq!(src.dropped(), 0);
    }
}

#[test]
fn bad_frames_in_a_folder_are_reported_and_playback_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let mjpeg = clip_mjpeg(tmp.path());
    let dir = tmp.path().join("f");
    let files = split_with_ffmpeg(&mjpeg, 4, &dir);
    std::fs::write(dir.join("0001_empty.jpg"), b"").unwrap();
    std::fs::write(dir.join("0002_text.png"), b"this is not a picture").unwrap();
    let jpeg = std::fs::read(&files[2]).unwrap();
    std::fs::write(dir.join("0003_cut.JPG"), &jpeg[..jpeg.len() / 2]).unwrap();
    std::fs::write(dir.join("notes.txt"), b"ignored").unwrap();
    std::fs::create_dir(dir.join("0000_folder.jpg")).unwrap();

    let mut src = ReplaySource::open(&dir, opts(10.0, Pace::Fast, false)).unwrap();
    let ok = |src: &mut ReplaySource, seq: u64| {
        let f = src.next_frame().unwrap().unwrap();
        assert_eq!((f.seq, f.image.dimensions()), (seq, (480, 480)));
    };
    ok(&mut src, 0);
    assert_eq!(
        bad_reason(src.next_frame()),
        "frame 1: 0001_empty.jpg: empty file (0 bytes)"
    );
    ok(&mut src, 2);
    assert_eq!(
        bad_reason(src.next_frame()),
        "frame 3: 0002_text.png: not an image: the content matches no known image format"
    );
    ok(&mut src, 4);
    assert_eq!(
        bad_reason(src.next_frame()),
        "frame 5: 0003_cut.JPG: truncated or corrupt JPEG data: the file ends before the JPEG \
         end-of-image marker (truncated)"
    );
    ok(&mut src, 6);
    assert!(src.next_frame().unwrap().is_none());
    assert_eq!(src.dropped(), 0);
}

#[test]
fn bad_frames_in_an_mjpeg_file_are_reported_and_playback_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let mjpeg = clip_mjpeg(tmp.path());
    let files = split_with_ffmpeg(&mjpeg, 4, &tmp.path().join("f"));
    let j: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    // A JPEG whose frame header claims 0 lines: structurally fine, refused by the decoder.
    let mut zero_height = j[3].clone();
    let sof = zero_height
        .windows(2)
        .position(|w| w == [0xff, 0xc0])
        .unwrap();
    zero_height[sof + 5..sof + 7].copy_from_slice(&[0, 0]);
    let cut = j[1].len() - 1000;
    let mut stream = j[0].clone();
    stream.extend_from_slice(&j[1][..cut]); // cut short: the next frame starts inside it
    stream.extend_from_slice(&j[2]);
    stream.extend_from_slice(b"\r\n--garbage between frames--\r\n");
    stream.extend_from_slice(&zero_height);
    stream.extend_from_slice(&j[3]);
    stream.extend_from_slice(&j[0][..5000]); // the file ends inside a frame
    let path = tmp.path().join("bad.mjpeg");
    std::fs::write(&path, &stream).unwrap();

    let mut src = ReplaySource::open(&path, opts(10.0, Pace::Fast, false)).unwrap();
    assert_eq!(src.next_frame().unwrap().unwrap().seq, 0);
    assert_eq!(
        bad_reason(src.next_frame()),
        format!(
            "frame 1: the JPEG ends after {cut} bytes without its end-of-image marker (the next frame \
             starts there)"
        )
    );
    assert_eq!(src.next_frame().unwrap().unwrap().seq, 2);
    let zero = bad_reason(src.next_frame());
    assert_eq!(
        zero,
        "frame 3: truncated or corrupt JPEG data: Format error decoding Jpeg: Image width or height is set \
         to zero, cannot continue"
    );
    let last = src.next_frame().unwrap().unwrap();
    assert_eq!((last.seq, last.image.dimensions()), (4, (480, 480)));
    assert_eq!(
        bad_reason(src.next_frame()),
        "frame 5: the stream ends 5000 bytes into a JPEG, before its end-of-image marker"
    );
    assert!(src.next_frame().unwrap().is_none());
}

#[test]
fn unusable_paths_and_options_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let err = |path: &Path, fps: f32| {
        ReplaySource::open(path, opts(fps, Pace::Fast, false))
            .err()
            .expect("open must fail")
            .to_string()
    };
    let missing = tmp.path().join("nope");
    assert_eq!(
        err(&missing, 10.0),
        format!(
            "source {}: cannot open the replay path: No such file or directory (os error 2)",
            missing.display()
        )
    );
    assert_eq!(
        err(tmp.path(), 10.0),
        format!(
            "source {}: the folder holds no .jpg, .jpeg or .png files",
            tmp.path().display()
        )
    );
    assert_eq!(
        err(tmp.path(), 0.0),
        format!(
            "source {}: replay fps must be a number from 0.001 to 10000000, got 0",
            tmp.path().display()
        )
    );
    assert!(err(tmp.path(), f32::NAN).ends_with("got NaN"));
    assert!(err(tmp.path(), 1e-30).contains("replay fps must be a number from 0.001"));
    // A file with no JPEG in it: an error once, then the end.
    let junk = tmp.path().join("junk.mjpeg");
    std::fs::write(&junk, vec![0x42u8; 200_000]).unwrap();
    let mut src = ReplaySource::open(&junk, opts(10.0, Pace::Fast, true)).unwrap();
    assert_eq!(
        src.next_frame().err().unwrap().to_string(),
        format!("source {}: the file holds no JPEG frames", junk.display())
    );
    assert!(src.next_frame().unwrap().is_none());
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_long_mjpeg_stream_is_read_in_pieces_not_whole() {
    // 30 copies of the clip (143 MB) through a FIFO, which cannot be read whole or seeked; real-time pace
    // at an absurd fps makes the replay skip through it, splitting every frame but decoding few.
    let tmp = tempfile::tempdir().unwrap();
    let clip = std::fs::read(clip_mjpeg(tmp.path())).unwrap();
    let fifo = tmp.path().join("fifo.mjpeg");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let writer_path = fifo.clone();
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(writer_path)
            .unwrap();
        for _ in 0..30 {
            std::io::Write::write_all(&mut f, &clip).unwrap();
        }
        clip.len() * 30
    });
    let before = rss_kib();
    let mut src = ReplaySource::open(&fifo, opts(1.0e6, Pace::Realtime, false)).unwrap();
    let (mut delivered, mut last) = (0, 0);
    while let Some(f) = src.next_frame().unwrap() {
        delivered += 1;
        last = f.seq;
    }
    let grew_mib = rss_kib().saturating_sub(before) / 1024;
    let bytes = writer.join().unwrap();
    assert_eq!(bytes, 143_351_490);
    assert_eq!(last, 30 * CLIP_FRAMES - 1, "the last frame is delivered");
    assert_eq!(src.dropped() + delivered, 30 * CLIP_FRAMES);
    eprintln!(
        "143 MB stream: {delivered} frames decoded, {} dropped, RSS grew {grew_mib} MiB",
        src.dropped()
    );
    assert!(grew_mib < 40, "RSS grew {grew_mib} MiB reading 143 MB");
}

#[test]
fn capture_open_builds_the_configured_source() {
    use facegate::capture::open;
    use facegate::config::SourceConfig;
    let tmp = tempfile::tempdir().unwrap();
    let mjpeg = clip_mjpeg(tmp.path());
    // A configured replay plays in real time: 3 frames at 20 fps take 0.1 s.
    let mut src = open(&SourceConfig::Replay {
        path: mjpeg.clone(),
        fps: 20,
        looped: false,
    })
    .unwrap();
    assert_eq!(src.name(), mjpeg.display().to_string());
    let t = Instant::now();
    for seq in 0..3 {
        assert_eq!(src.next_frame().unwrap().unwrap().seq, seq);
    }
    assert!(
        t.elapsed() >= Duration::from_millis(100),
        "{:?}",
        t.elapsed()
    );
    // A camera that is not there is a disconnection reported by the source (it keeps retrying).
    let mut cam = open(&SourceConfig::V4l2 {
        device: "/dev/video-facegate-missing".into(),
        width: 640,
        height: 480,
        fps: 10,
    })
    .unwrap();
    assert_eq!(
        cam.next_frame().unwrap_err().to_string(),
        "source /dev/video-facegate-missing disconnected: cannot open: No such file or directory (os error 2)"
    );
    let err = open(&SourceConfig::Http {
        url: "https://cam.local/stream".into(),
        fps: 10,
    })
    .err()
    .unwrap();
    assert!(matches!(err, CaptureError::Other { .. }), "{err}");
}
