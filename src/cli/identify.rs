//! `facegate identify` and `facegate embed`: every face of every image, one image at a time.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::output::{self, box_text, error_text, FaceOut};
use super::{setup, EmbedArgs, GlobalArgs, IdentifyArgs, VisionArgs};
use crate::gallery::{Gallery, MatchOutcome, MatchParams, MatchResult};
use crate::imageio::{load_image, ImageError};
use crate::vision::{AnalyzeOptions, AnalyzedFace, CropPadding, FaceAnalyzer, VisionError};

/// Why one image could not be analysed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Vision(#[from] VisionError),
}

/// Load and analyse one image file (no landmarks: nothing here reports them).
pub fn analyze_file(
    analyzer: &FaceAnalyzer,
    path: &Path,
    padding: CropPadding,
) -> Result<Vec<AnalyzedFace>, FileError> {
    let img = load_image(path)?;
    let opts = AnalyzeOptions {
        padding,
        landmarks: false,
    };
    Ok(analyzer.analyze_detailed(&img, opts)?)
}

/// Runs `each` on every image's analysis, printing `{"image", "error"}` (JSON) or `PATH: error: ...` for the
/// files that fail. Returns how many failed.
fn for_each_image(
    analyzer: &FaceAnalyzer,
    vision: &VisionArgs,
    images: &[std::path::PathBuf],
    json: bool,
    mut each: impl FnMut(&mut dyn Write, &str, &[AnalyzedFace]) -> std::io::Result<()>,
) -> anyhow::Result<usize> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut failed = 0;
    for path in images {
        let name = path.to_string_lossy();
        match analyze_file(analyzer, path, vision.pad.into()) {
            Ok(faces) => each(&mut out, &name, &faces)?,
            Err(e) => {
                failed += 1;
                let msg = error_text(&e);
                if json {
                    output::error_line(&mut out, &name, &msg)?;
                } else {
                    writeln!(out, "{name}: error: {msg}")?;
                }
            }
        }
        out.flush()?;
    }
    Ok(failed)
}

/// `facegate embed`.
pub fn embed(g: &GlobalArgs, a: &EmbedArgs) -> anyhow::Result<ExitCode> {
    let analyzer = setup::analyzer(g, &a.vision)?;
    let failed = for_each_image(
        &analyzer,
        &a.vision,
        &a.images,
        a.json,
        |out, name, faces| {
            if a.json {
                let faces: Vec<FaceOut> = faces
                    .iter()
                    .map(|f| FaceOut {
                        face: &f.observation,
                        with_embedding: true,
                        matched: None,
                    })
                    .collect();
                return output::image_line(out, name, &faces);
            }
            writeln!(out, "{name}: {} face(s)", faces.len())?;
            for (i, f) in faces.iter().enumerate() {
                let o = &f.observation;
                writeln!(
                out,
                "  face {}: box {} score {:.3} anti-spoof {:.3} embedding [{:.4}, {:.4}, {:.4}, ...]",
                i + 1,
                box_text(o),
                o.detection.score,
                o.antispoof,
                o.embedding.0[0],
                o.embedding.0[1],
                o.embedding.0[2]
            )?;
            }
            Ok(())
        },
    )?;
    Ok(super::batch_exit(failed))
}

/// `facegate identify`.
pub fn identify(g: &GlobalArgs, a: &IdentifyArgs) -> anyhow::Result<ExitCode> {
    let mut params = MatchParams::default();
    if let Some(t) = a.threshold {
        params.threshold = t;
    }
    if let Some(m) = a.margin {
        params.margin = m;
    }
    if !a.db.exists() {
        anyhow::bail!(
            "gallery {} does not exist: enroll someone first",
            a.db.display()
        );
    }
    let gallery = Gallery::open(&a.db)
        .with_context(|| format!("cannot open the gallery {}", a.db.display()))?;
    let matcher = gallery.load_matcher(params)?;
    if matcher.people().is_empty() {
        eprintln!(
            "warning: nobody is enrolled in {}: every face is unknown",
            a.db.display()
        );
    }
    let analyzer = setup::analyzer(g, &a.vision)?;
    let failed = for_each_image(
        &analyzer,
        &a.vision,
        &a.images,
        a.json,
        |out, name, faces| {
            let matches: Vec<MatchResult> = faces
                .iter()
                .map(|f| matcher.identify(&f.observation.embedding))
                .collect();
            if a.json {
                let faces: Vec<FaceOut> = faces
                    .iter()
                    .zip(&matches)
                    .map(|(f, m)| FaceOut {
                        face: &f.observation,
                        with_embedding: false,
                        matched: Some(m),
                    })
                    .collect();
                return output::image_line(out, name, &faces);
            }
            if faces.is_empty() {
                return writeln!(out, "{name}: no face");
            }
            for (i, (f, m)) in faces.iter().zip(&matches).enumerate() {
                writeln!(
                    out,
                    "{name}: face {} {}: {} (anti-spoof {:.2})",
                    i + 1,
                    box_text(&f.observation),
                    describe(m),
                    f.observation.antispoof
                )?;
            }
            Ok(())
        },
    )?;
    Ok(super::batch_exit(failed))
}

/// "Ada (distance 0.41)" or "unknown (nearest Ada at 0.63: too far)".
fn describe(m: &MatchResult) -> String {
    let near = || {
        format!(
            "nearest {} at {:.3}",
            m.nearest.as_deref().unwrap_or("?"),
            m.distance.unwrap_or(f32::NAN)
        )
    };
    match (m.outcome, &m.person) {
        (MatchOutcome::Match, Some(p)) => {
            format!("{p} (distance {:.3})", m.distance.unwrap_or(f32::NAN))
        }
        (MatchOutcome::EmptyGallery, _) => "unknown (nobody enrolled)".to_string(),
        (MatchOutcome::Ambiguous, _) => format!(
            "unknown ({}, second person at {:.3}: ambiguous)",
            near(),
            m.second_distance.unwrap_or(f32::NAN)
        ),
        _ => format!("unknown ({}: too far)", near()),
    }
}
