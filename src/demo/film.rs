//! The demo's camera: a [`FrameSource`] that plays the scenario's scenes as synthesised frames (see
//! [`super::media`]) into the real service, at the camera's 10 frames per second (or as fast as the pipeline
//! takes them with `--fast`; no frame is ever skipped, so the outcome does not depend on the machine's
//! speed). It waits for the demo's go before its first frame (so the narration, which listens to the service's
//! events, misses nothing), and ends after the last scene.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use image::RgbImage;

use super::media::{self, Media, Shot};
use crate::capture::{CaptureError, Frame, FrameSource};

/// The camera's frame rate (media time): frame `n` is at `n / FPS` seconds.
pub const FPS: u64 = 10;

/// One scene on film: what the camera sees for how many frames, then `gap` empty frames (the face leaves).
pub struct Reel {
    pub shot: Shot,
    pub frames: u32,
    pub gap: u32,
}

/// When each scene started, as the film played it (shared with the narration).
#[derive(Clone, Default)]
pub struct Timeline(Arc<Mutex<Vec<Instant>>>);

impl Timeline {
    /// The wall time scene `i` started, if it has.
    pub fn started(&self, i: usize) -> Option<Instant> {
        self.0.lock().ok()?.get(i).copied()
    }
}

/// The film: every scene's canvas drawn once, frames cut from them as the camera wanders.
pub struct Film {
    canvases: Vec<(RgbImage, u32)>,
    empty: RgbImage,
    /// First frame number of each scene (and the end, last).
    starts: Vec<u64>,
    seq: u64,
    fast: bool,
    dump: Option<std::path::PathBuf>,
    go: Option<std::sync::mpsc::Receiver<()>>,
    timeline: Timeline,
    last: Option<Instant>,
}

impl Film {
    /// The film of `reels`; it starts when `go` fires (or its sender is dropped).
    pub fn new(
        media: &Media,
        reels: &[Reel],
        fast: bool,
        dump: Option<std::path::PathBuf>,
        go: std::sync::mpsc::Receiver<()>,
    ) -> Film {
        let mut starts = vec![0];
        for r in reels {
            starts.push(starts.last().copied().unwrap_or(0) + u64::from(r.frames + r.gap));
        }
        Film {
            canvases: reels
                .iter()
                .map(|r| (media.canvas(r.shot), r.frames))
                .collect(),
            empty: media.canvas(Shot::Empty),
            starts,
            seq: 0,
            fast,
            dump,
            go: Some(go),
            timeline: Timeline::default(),
            last: None,
        }
    }

    pub fn timeline(&self) -> Timeline {
        self.timeline.clone()
    }

    /// The scene frame `seq` belongs to.
    pub fn scene_of(starts: &[u64], seq: u64) -> Option<usize> {
        starts.windows(2).position(|w| (w[0]..w[1]).contains(&seq))
    }

    /// First frame of each scene, and the end.
    pub fn starts(&self) -> Vec<u64> {
        self.starts.clone()
    }
}

impl FrameSource for Film {
    fn name(&self) -> &str {
        "demo film"
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError> {
        if let Some(go) = self.go.take() {
            let _ = go.recv();
        }
        let Some(scene) = Self::scene_of(&self.starts, self.seq) else {
            return Ok(None);
        };
        // Paced like a camera: a frame every 1/FPS s (a slow pipeline just gets them late, never fewer).
        if !self.fast {
            if let Some(last) = self.last {
                let due = last + Duration::from_millis(1000 / FPS);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
        }
        let now = Instant::now();
        self.last = Some(now);
        if self.seq == self.starts[scene] {
            if let Ok(mut t) = self.timeline.0.lock() {
                t.push(now);
            }
        }
        let (canvas, frames) = &self.canvases[scene];
        let within = self.seq - self.starts[scene];
        let c = if within < u64::from(*frames) {
            canvas
        } else {
            &self.empty
        };
        let image = media::frame(c, self.seq);
        if let Some(dir) = &self.dump {
            let path = dir.join(format!("frame-{:04}.png", self.seq));
            image.save(&path).map_err(|e| CaptureError::Other {
                source_name: "demo film".into(),
                reason: format!("{}: {e}", path.display()),
            })?;
        }
        let frame = Frame {
            seq: self.seq,
            captured: now,
            pts: Duration::from_millis(self.seq * 1000 / FPS),
            wall: SystemTime::now(),
            image,
        };
        self.seq += 1;
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_belong_to_their_scene_and_the_film_ends() {
        let media = Media::load().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reels = [
            Reel {
                shot: Shot::Empty,
                frames: 2,
                gap: 0,
            },
            Reel {
                shot: Shot::Live(media::Who::Hopper),
                frames: 2,
                gap: 1,
            },
        ];
        let mut film = Film::new(&media, &reels, true, None, rx);
        tx.send(()).unwrap();
        let starts = film.starts();
        assert_eq!(starts, vec![0, 2, 5]);
        let mut seqs = Vec::new();
        while let Some(f) = film.next_frame().unwrap() {
            assert_eq!(f.image.dimensions(), (media::WIDTH, media::HEIGHT));
            seqs.push((f.seq, Film::scene_of(&starts, f.seq)));
        }
        assert_eq!(
            seqs,
            vec![
                (0, Some(0)),
                (1, Some(0)),
                (2, Some(1)),
                (3, Some(1)),
                (4, Some(1))
            ]
        );
        assert!(film.timeline().started(1).is_some());
        assert!(film.timeline().started(2).is_none());
    }
}
