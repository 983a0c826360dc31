//! "Newest frame only" for live sources: a reader thread per camera puts each arrival into a single-slot
//! mailbox, and [`LatestSource::next_frame`] takes whatever is newest.
//!
//! A camera does not wait for inference. If the pipeline is slower than the camera, queued frames would make
//! every decision later than the last; instead an arrival replaces the unconsumed one (counted as dropped),
//! so the pipeline always works on the present. Frames stay encoded in the slot and are decoded by the
//! consumer, so frames that get replaced cost no decoding.
//!
//! Errors are kept apart from frames: a disconnection or a bad frame is reported once, in arrival order with
//! the frame waiting beside it, so the consumer always learns that the camera went away even when it comes
//! back before the next pull.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use image::RgbImage;

use super::{pixels, CaptureError, Frame, FrameSource};
use crate::imageio::{self, ImageLimits};

/// A frame as it arrived, before decoding.
#[derive(Debug)]
pub enum Payload {
    /// One JPEG image (MJPEG cameras, HTTP streams and snapshots).
    Jpeg(Vec<u8>),
    /// Packed YUV 4:2:2 (`Y0 U Y1 V`), `stride` bytes per row.
    Yuyv {
        width: u32,
        height: u32,
        stride: u32,
        data: Vec<u8>,
    },
    /// Already RGB.
    Rgb(RgbImage),
}

/// One arrival waiting in the slot.
struct Arrival {
    payload: Payload,
    captured: Instant,
    wall: SystemTime,
    seq: u64,
}

#[derive(Default)]
struct Slot {
    frame: Option<Arrival>,
    /// An unreported error and the number of frames that had arrived before it.
    error: Option<(CaptureError, u64)>,
    /// Frames put so far (the next one's sequence number).
    arrivals: u64,
    dropped: u64,
    /// The consumer is gone: the reader should stop.
    closed: bool,
    /// The reader has stopped: nothing more will come.
    ended: bool,
}

struct Shared {
    slot: Mutex<Slot>,
    changed: Condvar,
    started: Instant,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        // A reader that panicked mid-put leaves a consistent slot (every update is one assignment).
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The reader thread's end of the mailbox.
pub struct Mailbox {
    shared: Arc<Shared>,
}

impl Mailbox {
    /// Offers a frame, replacing an unconsumed one (counted as dropped). False once the consumer is gone.
    pub fn frame(&self, payload: Payload, captured: Instant, wall: SystemTime) -> bool {
        let mut slot = self.shared.lock();
        if slot.closed {
            return false;
        }
        let seq = slot.arrivals;
        slot.arrivals += 1;
        if slot
            .frame
            .replace(Arrival {
                payload,
                captured,
                wall,
                seq,
            })
            .is_some()
        {
            slot.dropped += 1;
        }
        self.shared.changed.notify_all();
        true
    }

    /// Reports an error; a pending frame is kept and handed out first (it arrived before the error). An
    /// older unreported error is replaced. False once the consumer is gone.
    pub fn error(&self, error: CaptureError) -> bool {
        let mut slot = self.shared.lock();
        if slot.closed {
            return false;
        }
        slot.error = Some((error, slot.arrivals));
        self.shared.changed.notify_all();
        true
    }

    /// Whether the consumer is gone.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }

    /// Waits `d` (a reconnect backoff), returning early with false when the consumer goes away.
    pub fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut slot = self.shared.lock();
        while !slot.closed {
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            slot = self
                .shared
                .changed
                .wait_timeout(slot, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        false
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        self.shared.lock().ended = true;
        self.shared.changed.notify_all();
    }
}

/// A [`FrameSource`] fed by a reader thread.
pub struct LatestSource {
    name: String,
    shared: Arc<Shared>,
    limits: ImageLimits,
    _reader: JoinHandle<()>,
}

impl LatestSource {
    /// Starts `reader` on its own thread with the producing end of the mailbox. The reader runs until the
    /// source is dropped (it should check [`Mailbox::is_closed`] or the return values regularly; blocking
    /// reads need a timeout) or until it returns, which ends the source.
    pub fn spawn(
        name: impl Into<String>,
        reader: impl FnOnce(Mailbox) + Send + 'static,
    ) -> Result<LatestSource, CaptureError> {
        let name = name.into();
        let shared = Arc::new(Shared {
            slot: Mutex::new(Slot::default()),
            changed: Condvar::new(),
            started: Instant::now(),
        });
        let mailbox = Mailbox {
            shared: shared.clone(),
        };
        let handle = std::thread::Builder::new()
            .name(format!("capture {name}"))
            .spawn(move || reader(mailbox))
            .map_err(|e| CaptureError::Other {
                source_name: name.clone(),
                reason: format!("cannot start the reader thread: {e}"),
            })?;
        Ok(LatestSource {
            name,
            shared,
            limits: ImageLimits::default(),
            _reader: handle,
        })
    }

    /// Like [`FrameSource::next_frame`] but returns `Ok(None)` after `timeout` without a frame (the source
    /// stays live), for callers that must stay responsive (shutdown, status) while a camera is silent.
    pub fn next_frame_timeout(&mut self, timeout: Duration) -> Result<Option<Frame>, CaptureError> {
        self.take(Some(Instant::now() + timeout))
    }

    fn take(&mut self, deadline: Option<Instant>) -> Result<Option<Frame>, CaptureError> {
        let arrival = {
            let mut slot = self.shared.lock();
            loop {
                // In arrival order: a frame that came before the error first, then the error.
                let frame_first = match (&slot.frame, &slot.error) {
                    (Some(a), Some((_, before))) => a.seq < *before,
                    _ => true,
                };
                if frame_first {
                    if let Some(a) = slot.frame.take() {
                        break a;
                    }
                }
                if let Some((e, _)) = slot.error.take() {
                    return Err(e);
                }
                if slot.ended {
                    return Ok(None);
                }
                slot = match deadline {
                    None => self
                        .shared
                        .changed
                        .wait(slot)
                        .unwrap_or_else(|p| p.into_inner()),
                    Some(d) => {
                        let now = Instant::now();
                        if now >= d {
                            return Ok(None);
                        }
                        self.shared
                            .changed
                            .wait_timeout(slot, d - now)
                            .unwrap_or_else(|p| p.into_inner())
                            .0
                    }
                };
            }
        };
        let image = self
            .decode(arrival.payload)
            .map_err(|reason| CaptureError::BadFrame {
                source_name: self.name.clone(),
                reason: format!("frame {}: {reason}", arrival.seq),
            })?;
        Ok(Some(Frame {
            seq: arrival.seq,
            captured: arrival.captured,
            pts: arrival
                .captured
                .saturating_duration_since(self.shared.started),
            wall: arrival.wall,
            image,
        }))
    }

    fn decode(&self, payload: Payload) -> Result<RgbImage, String> {
        match payload {
            Payload::Jpeg(bytes) if bytes.is_empty() => Err("zero-length frame (0 bytes)".into()),
            Payload::Jpeg(bytes) => {
                imageio::decode_image_with(&bytes, &self.limits).map_err(|e| e.to_string())
            }
            Payload::Yuyv {
                width,
                height,
                stride,
                data,
            } => pixels::yuyv_to_rgb(&data, width, height, stride),
            Payload::Rgb(image) => Ok(image),
        }
    }
}

impl FrameSource for LatestSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError> {
        self.take(None)
    }

    fn dropped(&self) -> u64 {
        self.shared.lock().dropped
    }
}

impl Drop for LatestSource {
    /// Tells the reader to stop; it is not joined (it may be blocked in a read until its timeout).
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests;
