//! [`SharedGallery`]: one gallery shared by the camera pipelines, Home Assistant and the HTTP upload.
//!
//! The SQLite store sits behind a mutex (writes are rare: enrollments, removals, level changes); the in-memory
//! [`Matcher`] every frame reads sits behind an `RwLock` holding an `Arc`, so a frame clones the `Arc` and
//! matches without holding any lock while a change builds the next matcher. Every change made through the
//! handle reloads the matcher; [`SharedGallery::reload`] picks up changes made by another process (the CLI).

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use super::{EnrollSample, Gallery, GalleryError, MatchParams, Matcher, PersonInfo, Result};

/// A cloneable handle on the gallery and its current matcher.
#[derive(Clone)]
pub struct SharedGallery {
    store: Arc<Mutex<Gallery>>,
    matcher: Arc<RwLock<Arc<Matcher>>>,
    params: MatchParams,
}

impl std::fmt::Debug for SharedGallery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedGallery")
            .field("people", &self.matcher().people().len())
            .field("params", &self.params)
            .finish()
    }
}

impl SharedGallery {
    /// Wraps an open gallery; `params` are the matcher's defaults (the pipeline overrides the threshold live).
    pub fn new(gallery: Gallery, params: MatchParams) -> Result<Self> {
        let matcher = gallery.load_matcher(params)?;
        Ok(Self {
            store: Arc::new(Mutex::new(gallery)),
            matcher: Arc::new(RwLock::new(Arc::new(matcher))),
            params,
        })
    }

    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: impl AsRef<Path>, params: MatchParams) -> Result<Self> {
        Self::new(Gallery::open(path)?, params)
    }

    /// A throw-away gallery (tests, replays without `--db`).
    pub fn in_memory(params: MatchParams) -> Result<Self> {
        Self::new(Gallery::open_in_memory()?, params)
    }

    /// The matcher of the people enrolled now.
    pub fn matcher(&self) -> Arc<Matcher> {
        self.matcher
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs `f` on the store with the lock held (a check and a write are atomic together), then reloads the
    /// matcher, whether `f` succeeded or not (a failed transaction changed nothing, reloading is harmless).
    pub fn with_store<T, E: From<GalleryError>>(
        &self,
        f: impl FnOnce(&mut Gallery) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        let out = f(&mut store);
        let matcher = store.load_matcher(self.params)?;
        *self.matcher.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(matcher);
        out
    }

    /// Adds samples to `name` (creating the person), see [`Gallery::enroll`].
    pub fn enroll(
        &self,
        name: &str,
        access_level: Option<&str>,
        samples: &[EnrollSample],
    ) -> Result<usize> {
        self.with_store(|g| g.enroll(name, access_level, samples))
    }

    pub fn remove(&self, name: &str) -> Result<()> {
        self.with_store(|g| g.remove(name))
    }

    pub fn set_access_level(&self, name: &str, level: &str) -> Result<()> {
        self.with_store(|g| g.set_access_level(name, level))
    }

    pub fn people(&self) -> Result<Vec<PersonInfo>> {
        self.store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .people()
    }

    /// Re-reads the matcher from the database (after another process changed it).
    pub fn reload(&self) -> Result<()> {
        self.with_store(|_| Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gallery::Quality;
    use crate::vision::Embedding;

    fn sample(v: f32) -> EnrollSample {
        EnrollSample {
            embedding: Embedding(vec![v; 128]),
            quality: Quality {
                score: 1.0,
                face_size: 100.0,
                blur: 100.0,
                pose: 0.0,
            },
            source: "test".into(),
        }
    }

    #[test]
    fn changes_through_any_clone_reach_every_clone_matcher() {
        let a = SharedGallery::in_memory(MatchParams::default()).unwrap();
        let b = a.clone();
        let before = a.matcher();
        assert_eq!(b.enroll("ann", None, &[sample(0.1)]).unwrap(), 1);
        assert_eq!(a.matcher().people().len(), 1);
        // A matcher already handed out stays as it was (a frame in flight is not disturbed).
        assert_eq!(before.people().len(), 0);
        b.set_access_level("ann", "guest").unwrap();
        assert_eq!(a.matcher().access_level("ann"), Some("guest"));
        assert!(matches!(
            a.remove("bob"),
            Err(GalleryError::NoSuchPerson(_))
        ));
        a.remove("ann").unwrap();
        assert!(b.matcher().people().is_empty());
        assert!(b.people().unwrap().is_empty());
    }
}
