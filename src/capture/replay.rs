//! Replay of recorded frames: a folder of images (played in file-name order) or an MJPEG file, at a given fps.
//!
//! Replays are how tests, benchmarks and users check a setup without a camera, so a frame's media time is
//! exactly `seq / fps` whatever the pace. [`Pace::Fast`] hands out every frame as fast as the consumer pulls
//! (nothing is dropped: results are reproducible); [`Pace::Realtime`] behaves like a camera: frame `k` is due
//! `k / fps` after the first pull, and a consumer that falls behind gets the newest due frame, the skipped
//! ones counted in [`FrameSource::dropped`].

use std::fs::File;
use std::io::{BufReader, Seek};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::mjpeg::{MjpegReader, Piece};
use super::{CaptureError, Frame, FrameSource};
use crate::imageio::{self, ImageLimits};

/// The frame rates a replay accepts (a thousandth of a frame per second up to ten million: beyond that
/// times are no longer meaningful).
pub const MIN_FPS: f32 = 0.001;
pub const MAX_FPS: f32 = 1.0e7;

/// How fast a replay hands out frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// Frames are due at their media time; a slow consumer gets the newest due frame (the rest are dropped).
    Realtime,
    /// As fast as the consumer pulls; no frame is dropped.
    Fast,
}

/// How to play a recording.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReplayOptions {
    /// Frames per second of the recording: frame `seq` has media time `seq / fps`.
    pub fps: f32,
    pub pace: Pace,
    /// Start again from the first frame after the last (media time keeps counting up).
    pub looped: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self {
            fps: 10.0,
            pace: Pace::Fast,
            looped: false,
        }
    }
}

/// What one step of the recording yields before decoding.
enum Item {
    File(PathBuf),
    Jpeg(Vec<u8>),
    Bad(String),
}

/// The recording being played.
enum Recording {
    Folder { files: Vec<PathBuf>, next: usize },
    Mjpeg(MjpegReader<BufReader<File>>),
}

impl Recording {
    fn next_item(&mut self) -> std::io::Result<Option<Item>> {
        match self {
            Recording::Folder { files, next } => {
                let item = files.get(*next).cloned().map(Item::File);
                *next += usize::from(item.is_some());
                Ok(item)
            }
            Recording::Mjpeg(reader) => Ok(reader.next_piece()?.map(|p| match p {
                Piece::Jpeg(bytes) => Item::Jpeg(bytes),
                Piece::Bad(reason) => Item::Bad(reason),
            })),
        }
    }

    fn rewind(&mut self) -> std::io::Result<()> {
        match self {
            Recording::Folder { next, .. } => {
                *next = 0;
                Ok(())
            }
            Recording::Mjpeg(reader) => reader.reset_with(|r| r.rewind()),
        }
    }
}

/// A [`FrameSource`] playing a folder of images or an MJPEG file.
pub struct ReplaySource {
    name: String,
    recording: Recording,
    opts: ReplayOptions,
    limits: ImageLimits,
    /// Sequence number of the next item the recording yields.
    seq: u64,
    /// Items yielded in the current pass (a looped recording with none would spin forever).
    in_pass: u64,
    /// When frame 0 was due (set by the first pull).
    started: Option<Instant>,
    dropped: u64,
    ended: bool,
}

impl ReplaySource {
    /// Opens `path`: a directory means its `.jpg` / `.jpeg` / `.png` files in file-name order, anything else is
    /// read as an MJPEG file (so a single JPEG is a one-frame recording).
    pub fn open(path: &Path, opts: ReplayOptions) -> Result<ReplaySource, CaptureError> {
        let name = path.display().to_string();
        let other = |reason: String| CaptureError::Other {
            source_name: name.clone(),
            reason,
        };
        if !(MIN_FPS..=MAX_FPS).contains(&opts.fps) {
            return Err(other(format!(
                "replay fps must be a number from {MIN_FPS} to {MAX_FPS}, got {}",
                opts.fps
            )));
        }
        let meta = std::fs::metadata(path)
            .map_err(|e| other(format!("cannot open the replay path: {e}")))?;
        let recording = if meta.is_dir() {
            let files =
                image_files(path).map_err(|e| other(format!("cannot list the folder: {e}")))?;
            if files.is_empty() {
                return Err(other(
                    "the folder holds no .jpg, .jpeg or .png files".to_string(),
                ));
            }
            Recording::Folder { files, next: 0 }
        } else {
            let file = File::open(path).map_err(|e| other(format!("cannot open the file: {e}")))?;
            let max_frame =
                usize::try_from(ImageLimits::default().max_file_bytes).unwrap_or(usize::MAX);
            Recording::Mjpeg(MjpegReader::new(BufReader::new(file), max_frame))
        };
        Ok(ReplaySource {
            name,
            recording,
            opts,
            limits: ImageLimits::default(),
            seq: 0,
            in_pass: 0,
            started: None,
            dropped: 0,
            ended: false,
        })
    }

    /// Media time of frame `seq`.
    fn pts(&self, seq: u64) -> Duration {
        Duration::try_from_secs_f64(seq as f64 / f64::from(self.opts.fps)).unwrap_or(Duration::MAX)
    }

    /// The sequence number to deliver now: the next one (fast), or the newest due one (real time, after
    /// sleeping until the next one is due if none is).
    fn target(&mut self) -> u64 {
        if self.opts.pace == Pace::Fast {
            return self.seq;
        }
        let started = *self.started.get_or_insert_with(Instant::now);
        let now = Instant::now();
        if let Some(due_at) = started.checked_add(self.pts(self.seq)) {
            if now < due_at {
                std::thread::sleep(due_at - now);
                return self.seq;
            }
        }
        let newest = ((now - started).as_secs_f64() * f64::from(self.opts.fps)).floor() as u64;
        newest.max(self.seq)
    }

    /// Reads items up to `target`, keeping the last one read; a non-looped recording may end first.
    fn read_up_to(&mut self, target: u64) -> Result<Option<(u64, Item)>, CaptureError> {
        let mut last: Option<(u64, Item)> = None;
        while self.seq <= target {
            let item = self.recording.next_item().map_err(|e| self.io_error(e))?;
            match item {
                Some(item) => {
                    if last.replace((self.seq, item)).is_some() {
                        self.dropped += 1;
                    }
                    self.seq += 1;
                    self.in_pass += 1;
                }
                None if self.opts.looped && self.in_pass > 0 => {
                    self.recording.rewind().map_err(|e| self.io_error(e))?;
                    self.in_pass = 0;
                }
                None => {
                    self.ended = true;
                    if self.in_pass == 0 && self.seq == 0 {
                        return Err(CaptureError::Other {
                            source_name: self.name.clone(),
                            reason: "the file holds no JPEG frames".to_string(),
                        });
                    }
                    break;
                }
            }
        }
        Ok(last)
    }

    fn io_error(&self, e: std::io::Error) -> CaptureError {
        CaptureError::Other {
            source_name: self.name.clone(),
            reason: format!("cannot read the recording: {e}"),
        }
    }

    fn bad(&self, seq: u64, reason: String) -> CaptureError {
        CaptureError::BadFrame {
            source_name: self.name.clone(),
            reason: format!("frame {seq}: {reason}"),
        }
    }
}

impl FrameSource for ReplaySource {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError> {
        if self.ended {
            return Ok(None);
        }
        let target = self.target();
        let captured = Instant::now();
        let wall = SystemTime::now();
        let Some((seq, item)) = self.read_up_to(target)? else {
            return Ok(None);
        };
        let decoded = match item {
            Item::File(path) => imageio::load_image_with(&path, &self.limits).map_err(|e| {
                let file = path.file_name().unwrap_or_default().to_string_lossy();
                self.bad(seq, format!("{file}: {e}"))
            }),
            Item::Jpeg(bytes) => imageio::decode_image_with(&bytes, &self.limits)
                .map_err(|e| self.bad(seq, e.to_string())),
            Item::Bad(reason) => Err(self.bad(seq, reason)),
        };
        Ok(Some(Frame {
            seq,
            captured,
            pts: self.pts(seq),
            wall,
            image: decoded?,
        }))
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// The image files in `dir`, sorted by file name (byte order, as `ls` in the C locale).
fn image_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ["jpg", "jpeg", "png"].contains(&e.to_ascii_lowercase().as_str()));
        if is_image && !path.is_dir() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}
