//! The demo's narration: what happens, in plain sentences on stdout, and a progress bar per scene on stderr
//! when a person is watching (a terminal, not CI). Without a terminal or with `CI` set the bar is hidden and
//! the same sentences come out as plain lines, so logs read the same as the screen.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Narration state: when the demo started, and the current progress bar, if any.
pub struct Narrator {
    started: Instant,
    interactive: bool,
    bar: Option<ProgressBar>,
}

impl Narrator {
    /// Interactive (with progress bars) only when stderr is a terminal and `CI` is not set.
    pub fn new() -> Narrator {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
        Narrator {
            started: Instant::now(),
            interactive: std::io::stderr().is_terminal() && !ci,
            bar: None,
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// One line of narration, stamped with the time since the start.
    pub fn say(&self, text: impl AsRef<str>) {
        let line = format!("[{:5.1}s] {}", self.elapsed().as_secs_f32(), text.as_ref());
        self.print(&line);
    }

    /// A line without a time stamp (headings, the summary table).
    pub fn print(&self, line: &str) {
        let out = || {
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "{line}");
            let _ = o.flush();
        };
        match &self.bar {
            Some(b) => b.suspend(out),
            None => out(),
        }
    }

    /// Starts a progress bar of `len` frames for a scene (hidden when not interactive).
    pub fn begin(&mut self, label: &str, len: u64) {
        self.finish();
        let target = if self.interactive {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(len), target);
        let style = ProgressStyle::with_template(
            "  {spinner} {prefix:<34} [{bar:24}] {pos}/{len} frames  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label.to_string());
        self.bar = Some(bar);
    }

    /// Advances the bar by a frame, with a short status (what is in view).
    pub fn frame(&self, status: &str) {
        if let Some(b) = &self.bar {
            b.inc(1);
            b.set_message(status.to_string());
        }
    }

    /// Removes the current bar.
    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Default for Narrator {
    fn default() -> Self {
        Self::new()
    }
}
