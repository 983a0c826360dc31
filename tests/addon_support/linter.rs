//! The Home Assistant add-on linter (frenck/action-addon-linter, the GitHub action add-on repositories run),
//! re-implemented from its source: `src/lint.py` and `src/config.schema.json` at v2-16-g2bd8faa (commit
//! 2bd8faa8a6e3598b22bccf2dc809e7870b4f1244, 2026-04-09). Our own code, written from reading those files.
//!
//! What it reports as errors for a `config.yaml` (community checks aside):
//! - a key set to its schema default ("'boot' should be removed, it uses a default value");
//! - keys the JSON schema does not know (`additionalProperties: false`), missing required keys, wrong types;
//! - `map` entries of an unknown type (its list has no `app_config`);
//! - `watchdog` (obsolete: "Use the native Docker HEALTHCHECK directive instead"), `webui` with ingress,
//!   `ingress_port: 0` off the host network, `auto_uart`, `codenotary`, devices in the old `a:b` format.

use serde_json::{json, Value};

/// Keys of config.schema.json that carry a `default`, with that default.
fn defaults() -> Vec<(&'static str, Value)> {
    vec![
        ("advanced", json!(false)),
        ("apparmor", json!(true)),
        ("audio", json!(false)),
        ("auth_api", json!(false)),
        ("auto_uart", json!(false)),
        ("backup", json!("hot")),
        ("boot", json!("auto")),
        ("devicetree", json!(false)),
        ("docker_api", json!(false)),
        ("full_access", json!(false)),
        ("gpio", json!(false)),
        ("hassio_api", json!(false)),
        ("hassio_role", json!("default")),
        ("homeassistant", json!(false)),
        ("homeassistant_api", json!(false)),
        ("host_dbus", json!(false)),
        ("host_ipc", json!(false)),
        ("host_network", json!(false)),
        ("host_pid", json!(false)),
        ("host_uts", json!(false)),
        ("ingress", json!(false)),
        ("ingress_port", json!(8099)),
        ("ingress_stream", json!(false)),
        ("init", json!(true)),
        ("journald", json!(false)),
        ("kernel_modules", json!(false)),
        ("legacy", json!(false)),
        ("options", json!({})),
        ("panel_admin", json!(true)),
        ("panel_icon", json!("mdi:puzzle")),
        ("realtime", json!(false)),
        ("schema", json!({})),
        ("stage", json!("stable")),
        ("startup", json!("application")),
        ("stdin", json!(false)),
        ("timeout", json!(10)),
        ("tmpfs", json!(false)),
        ("uart", json!(false)),
        ("udev", json!(false)),
        ("ulimits", json!({})),
        ("usb", json!(false)),
        ("video", json!(false)),
    ]
}

/// Keys of config.schema.json without a default.
const OTHER_KEYS: &[&str] = &[
    "arch",
    "backup_exclude",
    "backup_pre",
    "backup_post",
    "breaking_versions",
    "codenotary",
    "description",
    "devices",
    "discovery",
    "environment",
    "image",
    "ingress_entry",
    "machine",
    "map",
    "name",
    "panel_title",
    "ports",
    "ports_description",
    "privileged",
    "services",
    "slug",
    "url",
    "version",
    "watchdog",
    "webui",
];

const MAP_TYPES: &[&str] = &[
    "addon_config",
    "addons",
    "all_addon_configs",
    "backup",
    "config",
    "data",
    "homeassistant_config",
    "media",
    "share",
    "ssl",
];

/// The linter's error messages for a manifest (empty: it passes).
pub fn lint(m: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(obj) = m.as_object() else {
        return vec!["not a dict".into()];
    };
    let defaults = defaults();
    for (key, default) in &defaults {
        if obj.get(*key) == Some(default) {
            out.push(format!(
                "'{key}' should be removed, it uses a default value"
            ));
        }
    }
    for key in obj.keys() {
        if !defaults.iter().any(|(k, _)| k == key) && !OTHER_KEYS.contains(&key.as_str()) {
            out.push(format!(
                "Additional properties are not allowed ('{key}' was unexpected)"
            ));
        }
    }
    for key in ["arch", "description", "name", "slug", "version"] {
        if !obj.contains_key(key) {
            out.push(format!("'{key}' is a required property"));
        }
    }
    if let Some(map) = obj.get("map").and_then(Value::as_array) {
        for entry in map {
            let t = entry.get("type").and_then(Value::as_str).unwrap_or("");
            if !MAP_TYPES.contains(&t) {
                out.push(format!("map: '{t}' is not one of {MAP_TYPES:?}"));
            }
        }
    }
    let truthy = |k: &str| {
        obj.get(k)
            .is_some_and(|v| v != &json!(false) && !v.is_null())
    };
    if obj.get("ingress") == Some(&json!(true)) {
        if truthy("webui") {
            out.push("'webui' should be removed, Ingress is enabled.".into());
        }
        if !truthy("host_network") && obj.get("ingress_port") == Some(&json!(0)) {
            out.push("'ingress_port' this does not run on the host network.".into());
        }
    }
    if truthy("watchdog") {
        out.push(
            "'watchdog', is obsolete. Use the native Docker HEALTHCHECK directive instead.".into(),
        );
    }
    if obj.contains_key("auto_uart") {
        out.push("'auto_uart' is deprecated, use 'uart' instead.".into());
    }
    if obj.contains_key("codenotary") {
        out.push("'codenotary' is deprecated and no longer used.".into());
    }
    if let Some(devices) = obj.get("devices").and_then(Value::as_array) {
        if devices
            .iter()
            .any(|d| d.as_str().is_some_and(|d| d.contains(':')))
        {
            out.push("'devices' uses a deprecated format".into());
        }
    }
    out
}
