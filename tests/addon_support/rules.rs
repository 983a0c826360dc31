//! The Home Assistant Supervisor's rules for an add-on, re-implemented from its source so the manifest and the
//! shipped defaults can be checked without a Supervisor. Read from home-assistant/supervisor at
//! 2026.08.0-4-g090ef31ec (commit 090ef31ec024952c2469ed5a7c9f3ce8c1a5499e, 2026-08-21):
//! - `supervisor/apps/options.py`: `RE_SCHEMA_ELEMENT` (the grammar of a schema element), `AppOptions`
//!   (how options are checked against the schema: types, ranges, devices, missing keys);
//! - `supervisor/apps/validate.py`: `_SCHEMA_APP_CONFIG` (the manifest's keys and their types),
//!   `SCHEMA_ELEMENT` (a list may not directly hold a list), `RE_SERVICE`;
//! - `supervisor/apps/const.py` (`MappingType`, `RE_SLUG`), `supervisor/const.py` (`ARCH_ALL_COMPAT`,
//!   `AppStage`, `AppStartup`, `AppBootConfig`), `supervisor/validate.py` (`network_port`).
//!
//! Our own code: each rule is written here from reading those files, not copied.

use serde_json::{Map, Value};

/// A schema element, parsed by the Supervisor's grammar.
#[derive(Debug, PartialEq)]
pub struct Element {
    /// `str`, `password`, `int`, `float`, `bool`, `email`, `url`, `port`, `device`, `match`, `list`.
    pub base: String,
    /// The text between the parentheses (range, `subsystem=...`, alternatives, pattern).
    pub arg: Option<String>,
    /// Ends in `?`: may be left out.
    pub optional: bool,
}

fn is_int(s: &str) -> bool {
    let d = s.strip_prefix('-').unwrap_or(s);
    !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
}

/// `-?\d*\.?\d+` of the float range.
fn is_float(s: &str) -> bool {
    let d = s.strip_prefix('-').unwrap_or(s);
    let (int_part, frac) = match d.split_once('.') {
        Some((i, f)) => (i, f),
        None => ("", d),
    };
    int_part.bytes().all(|b| b.is_ascii_digit())
        && !frac.is_empty()
        && frac.bytes().all(|b| b.is_ascii_digit())
}

fn is_uint(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `(min?,max?)` where each bound, when present, satisfies `ok`.
fn bounds(arg: &str, ok: fn(&str) -> bool) -> bool {
    match arg.split_once(',') {
        Some((lo, hi)) => (lo.is_empty() || ok(lo)) && (hi.is_empty() || ok(hi)),
        None => false,
    }
}

/// Parses a schema element exactly as `RE_SCHEMA_ELEMENT` accepts it; the error says why not.
/// (The grammar also accepts an empty element, `""` or `"?"`; no add-on needs that and we refuse it.)
pub fn parse_element(s: &str) -> Result<Element, String> {
    let (body, optional) = match s.strip_suffix('?') {
        Some(b) => (b, true),
        None => (s, false),
    };
    let (base, arg) = match body.find('(') {
        Some(i) if body.ends_with(')') => (&body[..i], Some(&body[i + 1..body.len() - 1])),
        Some(_) => return Err(format!("'{s}': unbalanced parenthesis")),
        None => (body, None),
    };
    let ok = match (base, arg) {
        (
            "bool" | "email" | "url" | "port" | "device" | "str" | "password" | "int" | "float",
            None,
        ) => true,
        // device(subsystem=[a-z]+): lower-case letters only, so no digit (video4linux cannot be named).
        ("device", Some(a)) => a
            .strip_prefix("subsystem=")
            .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_lowercase())),
        ("str" | "password", Some(a)) => bounds(a, is_uint),
        ("int", Some(a)) => bounds(a, is_int),
        ("float", Some(a)) => bounds(a, is_float),
        ("match", Some(_)) => true,
        ("list", Some(a)) => !a.is_empty(),
        _ => false,
    };
    if !ok {
        return Err(format!(
            "'{s}' is not a schema element the Supervisor knows"
        ));
    }
    Ok(Element {
        base: base.to_string(),
        arg: arg.map(String::from),
        optional,
    })
}

/// `(min, max)` of a ranged element; an absent bound is unbounded.
pub fn range(e: &Element) -> Option<(f64, f64)> {
    if !["int", "float", "str", "password"].contains(&e.base.as_str()) {
        return None;
    }
    let (lo, hi) = e.arg.as_deref()?.split_once(',')?;
    let b = |x: &str, d: f64| if x.is_empty() { Ok(d) } else { x.parse() };
    Some((b(lo, f64::NEG_INFINITY).ok()?, b(hi, f64::INFINITY).ok()?))
}

/// The schema itself (`SCHEMA_ELEMENT`): every leaf an element, dicts nest freely, a list holds exactly one
/// element or dict (never directly a list).
pub fn check_schema(schema: &Value, at: &str, out: &mut Vec<String>) {
    match schema {
        Value::String(s) => {
            if let Err(e) = parse_element(s) {
                out.push(format!("schema {at}: {e}"));
            }
        }
        Value::Object(m) => {
            for (k, v) in m {
                check_schema(v, &join(at, k), out);
            }
        }
        Value::Array(items) => {
            if items.len() != 1 {
                out.push(format!("schema {at}: a list holds exactly one element"));
            }
            for i in items {
                if i.is_array() {
                    out.push(format!("schema {at}: a list may not directly hold a list"));
                } else {
                    check_schema(i, &format!("{at}[]"), out);
                }
            }
        }
        other => out.push(format!("schema {at}: {other} is not a schema element")),
    }
}

fn join(at: &str, k: &str) -> String {
    if at.is_empty() {
        k.to_string()
    } else {
        format!("{at}.{k}")
    }
}

/// Options against a schema as `AppOptions` checks them when the add-on is started or its options are
/// saved. `devices` is the host's hardware list (a `device` option must name one of them). Unknown keys are
/// dropped by the Supervisor with a warning; they are reported here too, since the option would be lost.
pub fn check_options(schema: &Value, options: &Value, devices: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    match schema.as_object() {
        Some(s) => check_dict(s, options, "", devices, &mut out),
        None => out.push("the schema is not a dict".into()),
    }
    out
}

fn check_dict(
    schema: &Map<String, Value>,
    value: &Value,
    at: &str,
    devices: &[&str],
    out: &mut Vec<String>,
) {
    let Some(m) = value.as_object() else {
        out.push(format!("Invalid dict for option '{at}'"));
        return;
    };
    for (k, v) in m {
        match schema.get(k) {
            Some(typ) => check_value(typ, v, &join(at, k), devices, out),
            None => out.push(format!("{}: not in the schema (dropped)", join(at, k))),
        }
    }
    // _check_missing_options: only a string element ending in `?` (or a list whose element is one) may be
    // left out; a missing dict or list of dicts is an error.
    for (k, typ) in schema {
        if m.contains_key(k) {
            continue;
        }
        let inner = match typ {
            Value::Array(a) if !a.is_empty() => &a[0],
            t => t,
        };
        if !inner.as_str().is_some_and(|s| s.ends_with('?')) {
            out.push(format!(
                "Missing option '{k}' in {}",
                if at.is_empty() { "root" } else { at }
            ));
        }
    }
}

fn check_value(typ: &Value, v: &Value, at: &str, devices: &[&str], out: &mut Vec<String>) {
    match typ {
        Value::Array(t) => match v.as_array() {
            Some(items) => items
                .iter()
                .for_each(|i| check_value(&t[0], i, &format!("{at}[]"), devices, out)),
            None => out.push(format!("Invalid list for option '{at}'")),
        },
        Value::Object(t) => check_dict(t, v, at, devices, out),
        Value::String(t) => match parse_element(t) {
            Ok(e) => {
                if let Err(msg) = check_single(&e, v, devices) {
                    out.push(format!("{at}: {msg}"));
                }
            }
            Err(e) => out.push(format!("{at}: Unknown type ({e})")),
        },
        other => out.push(format!("{at}: bad schema element {other}")),
    }
}

/// `vol.Coerce(int)`: Python's int() of an int, a float (truncated), a bool or a decimal string.
fn coerce_int(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64().map(f64::trunc),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::String(s) => s.trim().parse::<i64>().ok().map(|i| i as f64),
        _ => None,
    }
}

/// `vol.Coerce(float)`.
fn coerce_float(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn check_single(e: &Element, v: &Value, devices: &[&str]) -> Result<(), String> {
    if v.is_null() {
        return Err("Missing required option (null)".into());
    }
    if v.as_str().is_some_and(|s| s.starts_with("!secret ")) {
        return Err("a !secret, which needs Home Assistant's secrets.yaml".into());
    }
    let in_range = |x: f64| match range(e) {
        Some((lo, hi)) if x < lo || x > hi => Err(format!("{x} is outside {lo}..{hi}")),
        _ => Ok(()),
    };
    match e.base.as_str() {
        // vol.All(str, vol.Length(...)): a string, never coerced.
        "str" | "password" => match v.as_str() {
            Some(s) => in_range(s.chars().count() as f64),
            None => Err(format!("{v} is not a string")),
        },
        "int" => in_range(coerce_int(v).ok_or(format!("{v} is not an int"))?),
        "float" => in_range(coerce_float(v).ok_or(format!("{v} is not a number"))?),
        // vol.Boolean: a bool, a number, or one of its words.
        "bool" => match v {
            Value::Bool(_) | Value::Number(_) => Ok(()),
            Value::String(s)
                if [
                    "1", "true", "yes", "on", "enable", "0", "false", "no", "off", "disable",
                ]
                .contains(&s.to_lowercase().as_str()) =>
            {
                Ok(())
            }
            _ => Err(format!("{v} is not a boolean")),
        },
        // vol.Url: a scheme and a network location.
        "url" => match v.as_str().and_then(|s| s.split_once("://")) {
            Some((scheme, rest))
                if !scheme.is_empty() && !rest.is_empty() && !rest.starts_with('/') =>
            {
                Ok(())
            }
            _ => Err(format!("{v} is not a URL")),
        },
        "port" => match coerce_int(v) {
            Some(p) if (1.0..=65535.0).contains(&p) => Ok(()),
            _ => Err(format!("{v} is not a port")),
        },
        // vol.In(alternatives)(str(value)).
        "list" => {
            let alternatives: Vec<&str> = e.arg.as_deref().unwrap_or("").split('|').collect();
            let s = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if alternatives.contains(&s.as_str()) {
                Ok(())
            } else {
                Err(format!("{v} is not one of {alternatives:?}"))
            }
        }
        // A string naming a device of the host's hardware list.
        "device" => match v.as_str() {
            Some(p) if devices.contains(&p) => Ok(()),
            Some(p) => Err(format!("Device '{p}' does not exist")),
            None => Err(format!("Expected a string, got {v}")),
        },
        other => Err(format!("{other} is not checked by these tests")),
    }
}

/// The manifest's own keys, as `_SCHEMA_APP_CONFIG` reads them (unknown keys are removed silently there:
/// `extra=vol.REMOVE_EXTRA`, so a misspelt key would just vanish; they are reported here).
pub fn check_manifest(m: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(obj) = m.as_object() else {
        return vec!["the manifest is not a dict".into()];
    };
    for key in ["name", "version", "slug", "description", "arch"] {
        if !obj.contains_key(key) {
            out.push(format!("required key {key} is missing"));
        }
    }
    let s = |k: &str| obj.get(k).and_then(Value::as_str);
    for (k, v) in obj {
        let bad = match k.as_str() {
            "name" | "description" | "panel_icon" | "panel_title" | "ingress_entry" => {
                !v.is_string()
            }
            // version_tag: AwesomeVersion of the text; a YAML number would not be the same text.
            "version" | "homeassistant" => !v.is_string(),
            "slug" => !s(k).is_some_and(|x| {
                !x.is_empty()
                    && x.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            }),
            "arch" => !v.as_array().is_some_and(|a| {
                a.iter().all(|x| {
                    ["aarch64", "amd64", "armhf", "armv7", "i386"]
                        .contains(&x.as_str().unwrap_or(""))
                })
            }),
            "url" => !s(k).is_some_and(|x| x.starts_with("https://") || x.starts_with("http://")),
            "startup" => !["initialize", "system", "services", "application", "once"]
                .contains(&s(k).unwrap_or("")),
            "boot" => !["auto", "manual", "manual_only"].contains(&s(k).unwrap_or("")),
            "stage" => !["stable", "experimental", "deprecated"].contains(&s(k).unwrap_or("")),
            "init" | "ingress" | "ingress_stream" | "video" | "panel_admin" | "host_network"
            | "hassio_api" | "homeassistant_api" | "auth_api" | "usb" | "uart" | "udev"
            | "audio" | "gpio" | "stdin" | "journald" | "tmpfs" => !v.is_boolean(),
            "timeout" => !v.as_i64().is_some_and(|t| (10..=300).contains(&t)),
            "ingress_port" => !v.as_i64().is_some_and(|p| (0..=65535).contains(&p)),
            "services" => !v.as_array().is_some_and(|a| {
                a.iter().all(|x| {
                    x.as_str()
                        .and_then(|x| x.split_once(':'))
                        .is_some_and(|(svc, right)| {
                            ["mqtt", "mysql"].contains(&svc)
                                && ["provide", "want", "need"].contains(&right)
                        })
                })
            }),
            "map" => !v.as_array().is_some_and(|a| {
                a.iter().all(|x| {
                    let known = [
                        "data",
                        "config",
                        "ssl",
                        "local_apps",
                        "backup",
                        "share",
                        "media",
                        "homeassistant_config",
                        "all_app_configs",
                        "app_config",
                        "addons",
                        "all_addon_configs",
                        "addon_config",
                    ];
                    x.get("type")
                        .and_then(Value::as_str)
                        .is_some_and(|t| known.contains(&t))
                        && x.get("read_only").is_none_or(Value::is_boolean)
                        && x.as_object().is_some_and(|o| {
                            o.keys()
                                .all(|k| ["type", "read_only", "path"].contains(&k.as_str()))
                        })
                })
            }),
            // docker_image: path components of [a-z0-9{][a-z0-9.-_{}]*, no tag.
            "image" => !s(k).is_some_and(|x| {
                let path = x.split_once('/').map_or(x, |(_, p)| p);
                !x.contains('@')
                    && !path.contains(':')
                    && path.split('/').all(|c| {
                        c.bytes().next().is_some_and(|b| {
                            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'{'
                        }) && c.bytes().all(|b| {
                            b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-{}".contains(&b)
                        })
                    })
            }),
            "options" => !v.is_object(),
            "schema" => {
                if v.as_bool() == Some(false) {
                    false
                } else if v.is_object() {
                    check_schema(v, "", &mut out);
                    false
                } else {
                    true
                }
            }
            other => {
                out.push(format!(
                    "{other}: not a key these tests know (the Supervisor drops unknown keys)"
                ));
                false
            }
        };
        if bad {
            out.push(format!("{k}: {v} is not accepted"));
        }
    }
    out
}
