//! The Home Assistant scenarios on the current Home Assistant (2026.2.3, Python 3.13, in the trixie chroot
//! made by scripts/setup-ha-current.sh), in every `cargo test`: the same code as tests/ha_entities.rs and
//! tests/ha_recovery.rs (which run HA 2024.3.3, the newest on the host's Python 3.11), so facegate's
//! discovery and life cycle are proven on both the oldest HA it supports and a current one. Entities come out
//! with the same exact ids on both; HA logs no warning about our discovery payloads. A missing chroot is a
//! failure naming the setup script, never a skip.

mod common;
mod ha_support;

use common::ha::HaVersion::Current;
use ha_support::{entities, recovery};

#[test]
fn entities_exist_with_names_device_and_states() {
    entities::entities_exist_with_names_device_and_states(Current);
}

#[test]
fn decisions_fire_events_and_update_states_image_and_tracker() {
    entities::decisions_fire_events_and_update_states_image_and_tracker(Current);
}

#[test]
fn controls_in_ha_reach_settings_gallery_and_enrollment() {
    entities::controls_in_ha_reach_settings_gallery_and_enrollment(Current);
}

#[test]
fn broker_and_ha_restarts_end_with_every_entity_available_and_correct() {
    recovery::broker_and_ha_restarts_end_with_every_entity_available_and_correct(Current);
}
