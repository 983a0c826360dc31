//! `facegate enroll`: check each photo, then store all the good ones in one transaction.
//!
//! A photo is accepted by the one enrollment rule ([`crate::gallery::enroll_rule`]: exactly one face, large and
//! sharp enough and not turned away); otherwise the file is reported with the reason and the others go on. Nothing is written until every file
//! has been looked at, and then all accepted photos are written together or not at all.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use super::identify::analyze_file;
use super::output::error_text;
use super::{setup, EnrollArgs, GlobalArgs};
use crate::gallery::{enrollment_sample, Gallery, QualityLimits, SeenIn};

pub fn run(g: &GlobalArgs, a: &EnrollArgs) -> anyhow::Result<ExitCode> {
    let mut limits = QualityLimits::default();
    if let Some(v) = a.min_face_size {
        limits.min_face_size = v;
    }
    if let Some(v) = a.min_sharpness {
        limits.min_blur = v;
    }
    // Open (and create) the gallery first: a database we cannot use should fail before minutes of analysis.
    let mut gallery = Gallery::open(&a.db)
        .with_context(|| format!("cannot open the gallery {}", a.db.display()))?;
    let analyzer = setup::analyzer(g, &a.vision)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut samples = Vec::new();
    let mut failed = 0;
    for path in &a.images {
        let name = path.to_string_lossy();
        let verdict = analyze_file(&analyzer, path, a.vision.pad.into())
            .map_err(|e| error_text(&e))
            .and_then(|faces| {
                enrollment_sample(&faces, &limits, SeenIn::Photo, name.as_ref())
                    .map_err(|e| e.to_string())
            });
        match verdict {
            Ok(sample) => {
                let q = &sample.quality;
                writeln!(
                    out,
                    "ok    {name}: face {:.0} px, sharpness {:.1}, pose {:.2}, quality {:.2}",
                    q.face_size, q.blur, q.pose, q.score
                )?;
                samples.push(sample);
            }
            Err(reason) => {
                failed += 1;
                writeln!(out, "error {name}: {reason}")?;
            }
        }
    }
    if samples.is_empty() {
        writeln!(out, "nothing enrolled for {}: no usable photo", a.name)?;
        return Ok(ExitCode::from(1));
    }
    let total = gallery
        .enroll(&a.name, a.access_level.as_deref(), &samples)
        .with_context(|| format!("enrolling {} failed; nothing was written", a.name))?;
    writeln!(
        out,
        "enrolled {} of {} photos for {} ({} embeddings in total)",
        samples.len(),
        a.images.len(),
        a.name.trim(),
        total
    )?;
    Ok(super::batch_exit(failed))
}
