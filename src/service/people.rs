//! The gallery as the Home Assistant bridge sees it: the people to publish entities for, and access level
//! changes from HA's selects. Its own connection to the database file (SQLite WAL: the pipeline and the CLI
//! read and write the same file).

use std::path::Path;
use std::sync::Mutex;

use crate::gallery::{Gallery, PersonInfo};
use crate::ha::bridge::People;

pub struct GalleryPeople {
    gallery: Mutex<Gallery>,
}

impl GalleryPeople {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let gallery = Gallery::open(path)
            .map_err(|e| anyhow::anyhow!("opening the database {}: {e}", path.display()))?;
        Ok(Self {
            gallery: Mutex::new(gallery),
        })
    }
}

impl People for GalleryPeople {
    fn people(&self) -> Result<Vec<PersonInfo>, String> {
        let g = self.gallery.lock().unwrap_or_else(|e| e.into_inner());
        g.people().map_err(|e| e.to_string())
    }

    fn set_access_level(&self, name: &str, level: &str) -> Result<(), String> {
        let mut g = self.gallery.lock().unwrap_or_else(|e| e.into_inner());
        g.set_access_level(name, level).map_err(|e| e.to_string())
    }
}
