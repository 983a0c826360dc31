//! Recovery against a real Home Assistant (2024.3.3, or the current one with `FACEGATE_HA=current`) and a
//! real mosquitto, each restarted under a running bridge (tests/ha_support/recovery.rs): every entity
//! available and correct again, the event from while the broker was down delivered once.
//! tests/ha_current.rs runs the same scenario on the current HA.

mod common;
mod ha_support;

use common::ha::HaVersion;

#[test]
fn broker_and_ha_restarts_end_with_every_entity_available_and_correct() {
    ha_support::recovery::broker_and_ha_restarts_end_with_every_entity_available_and_correct(
        HaVersion::from_env(),
    );
}
