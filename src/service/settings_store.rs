//! Live settings persisted in SQLite: one row per camera in the `ha_live_settings` table of facegate's
//! database ([`crate::store`] creates and migrates it and owns the connection). A change made in Home
//! Assistant is written at once and restored on start.

use std::path::Path;

use rusqlite::{params, OptionalExtension};

use crate::ha::bridge::SettingsSink;
use crate::settings::LiveSettings;
use crate::store::{Store, StoreError};

/// The settings table.
pub struct SettingsStore {
    store: Store,
}

impl SettingsStore {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self::new(Store::open(path)?))
    }

    /// The settings table in an open database (sharing its connection).
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The persisted settings of `device`, if any and still valid (a row from an older facegate with a value
    /// now out of range is ignored, with a log line, and the options' values used).
    pub fn load(&self, device: &str) -> Option<LiveSettings> {
        let text: Option<String> = self
            .store
            .conn()
            .query_row(
                "SELECT settings FROM ha_live_settings WHERE device = ?1",
                params![device],
                |r| r.get(0),
            )
            .optional()
            .unwrap_or_else(|e| {
                tracing::warn!(device, error = %e, "cannot read persisted live settings");
                None
            });
        let parsed = serde_json::from_str::<LiveSettings>(&text?);
        match parsed.map_err(|e| e.to_string()).and_then(|s| {
            s.validate().map_err(|e| e.to_string())?;
            Ok(s)
        }) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(device, "ignoring persisted live settings: {e}");
                None
            }
        }
    }

    pub fn save(&self, device: &str, s: &LiveSettings) -> rusqlite::Result<()> {
        let json = serde_json::to_string(s).expect("settings serialise");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        self.store.conn().execute(
            "INSERT INTO ha_live_settings (device, settings, updated) VALUES (?1, ?2, ?3)
             ON CONFLICT(device) DO UPDATE SET settings = excluded.settings, updated = excluded.updated",
            params![device, json, now],
        )?;
        Ok(())
    }
}

impl SettingsSink for SettingsStore {
    fn save(&self, device: &str, settings: &LiveSettings) -> Result<(), String> {
        SettingsStore::save(self, device, settings).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_settings_come_back_and_invalid_rows_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("facegate.db");
        // The gallery's own tables live in the same file, untouched.
        crate::gallery::Gallery::open(&db).unwrap();
        let store = SettingsStore::open(&db).unwrap();
        assert_eq!(store.load("front_door"), None);
        let s = LiveSettings {
            recognition_enabled: false,
            require_blink: true,
            match_threshold: 0.42,
            antispoof_threshold: 0.6,
        };
        store.save("front_door", &s).unwrap();
        let again = SettingsStore::open(&db).unwrap();
        assert_eq!(again.load("front_door"), Some(s.clone()));
        assert_eq!(again.load("lift"), None);
        let bad = LiveSettings {
            match_threshold: 5.0,
            ..s
        };
        again.save("lift", &bad).unwrap();
        assert_eq!(again.load("lift"), None);
        assert!(crate::gallery::Gallery::open(&db)
            .unwrap()
            .people()
            .unwrap()
            .is_empty());
    }
}
