//! The gallery as the Home Assistant bridge sees it: the people to publish entities for, and access level
//! changes from HA's selects, made through the [`SharedGallery`] the pipelines match against (so a change
//! applies to the next frame).

use crate::gallery::{PersonInfo, SharedGallery};
use crate::ha::bridge::People;

impl People for SharedGallery {
    fn people(&self) -> Result<Vec<PersonInfo>, String> {
        SharedGallery::people(self).map_err(|e| e.to_string())
    }

    fn set_access_level(&self, name: &str, level: &str) -> Result<(), String> {
        SharedGallery::set_access_level(self, name, level).map_err(|e| e.to_string())
    }
}
