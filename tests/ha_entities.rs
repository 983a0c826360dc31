//! The bridge against a real Home Assistant (2024.3.3, or the current one with `FACEGATE_HA=current`) and a
//! real mosquitto: the scenarios of tests/ha_support/entities.rs (entities with exact ids, names, device and
//! states; decisions -> events, last person, face image, tracker; HA's controls -> settings, gallery,
//! enrollment; removed people leave HA). tests/ha_current.rs runs the same scenarios on the current HA.

mod common;
mod ha_support;

use common::ha::HaVersion;
use ha_support::entities;

#[test]
fn entities_exist_with_names_device_and_states() {
    entities::entities_exist_with_names_device_and_states(HaVersion::from_env());
}

#[test]
fn decisions_fire_events_and_update_states_image_and_tracker() {
    entities::decisions_fire_events_and_update_states_image_and_tracker(HaVersion::from_env());
}

#[test]
fn controls_in_ha_reach_settings_gallery_and_enrollment() {
    entities::controls_in_ha_reach_settings_gallery_and_enrollment(HaVersion::from_env());
}
