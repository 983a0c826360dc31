//! `facegate people list|remove`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::gallery::Gallery;

fn open_existing(db: &Path) -> anyhow::Result<Gallery> {
    if !db.exists() {
        anyhow::bail!("gallery {} does not exist", db.display());
    }
    Gallery::open(db).with_context(|| format!("cannot open the gallery {}", db.display()))
}

/// Everyone enrolled: a table, or one JSON object per person and line.
pub fn list(db: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let people = open_existing(db)?.people()?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json {
        for p in &people {
            serde_json::to_writer(&mut out, p)?;
            writeln!(out)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if people.is_empty() {
        writeln!(out, "nobody is enrolled")?;
    }
    for p in &people {
        writeln!(
            out,
            "{:<30} {:<10} {} embedding(s)",
            p.name, p.access_level, p.embeddings
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Remove a person with all their embeddings.
pub fn remove(db: &Path, name: &str) -> anyhow::Result<ExitCode> {
    open_existing(db)?.remove(name)?;
    println!("removed {name}");
    Ok(ExitCode::SUCCESS)
}
