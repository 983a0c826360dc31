//! Shared by the add-on tests: YAML files read as JSON values, the add-on schema walked into leaves, and the
//! Supervisor's option rules (types, ranges, required keys) re-stated so the shipped defaults can be checked
//! against them without a Supervisor.
#![allow(dead_code)]

pub mod supervisor;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A YAML file as JSON (the Supervisor reads YAML into the same data model). Panics naming the file.
pub fn load_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let docs = YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
    assert_eq!(
        docs.len(),
        1,
        "{}: one YAML document expected",
        path.display()
    );
    to_json(&docs[0])
}

fn to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Real(s) => Value::from(s.parse::<f64>().expect("YAML float")),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::from(s.clone()),
        Yaml::Boolean(b) => Value::from(*b),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        other => panic!("unsupported YAML key {other:?}"),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Yaml::Null => Value::Null,
        other => panic!("unsupported YAML node {other:?}"),
    }
}

/// Every leaf of an options-shaped value or schema: `a.b`, list elements as `[]` (`cameras[].source.type`).
/// Objects inside lists are merged over all elements (their union of keys).
pub fn leaves(v: &Value) -> BTreeMap<String, Vec<Value>> {
    let mut out = BTreeMap::new();
    walk(v, String::new(), &mut out);
    out
}

fn walk(v: &Value, path: String, out: &mut BTreeMap<String, Vec<Value>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(child, p, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, format!("{path}[]"), out);
            }
        }
        leaf => out.entry(path).or_default().push(leaf.clone()),
    }
}

/// A schema element such as `float(0.05,1.0)?`: its base type, optional range and whether it may be left out.
#[derive(Debug, PartialEq)]
pub struct Element {
    pub base: String,
    /// The text between the parentheses (range, `subsystem=...`, list alternatives).
    pub arg: Option<String>,
    pub optional: bool,
}

pub fn element(s: &str) -> Element {
    let (body, optional) = match s.strip_suffix('?') {
        Some(b) => (b, true),
        None => (s, false),
    };
    match body.find('(') {
        Some(i) => Element {
            base: body[..i].to_string(),
            arg: Some(body[i + 1..body.len() - 1].to_string()),
            optional,
        },
        None => Element {
            base: body.to_string(),
            arg: None,
            optional,
        },
    }
}

/// `(min, max)` of an `int(a,b)` / `float(a,b)` element.
pub fn range(e: &Element) -> Option<(f64, f64)> {
    let arg = e.arg.as_deref()?;
    let (lo, hi) = arg.split_once(',')?;
    Some((lo.parse().ok()?, hi.parse().ok()?))
}

/// The Supervisor's checks of options against a schema (its AppOptions): unknown keys, missing required keys,
/// value types, ranges, list alternatives. Devices are only checked to be strings (the Supervisor also looks
/// them up in its hardware list). Returns one message per problem.
pub fn supervisor_check(schema: &Value, options: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    check_dict(schema.as_object().unwrap(), options, "", &mut problems);
    problems
}

fn check_dict(schema: &Map<String, Value>, value: &Value, at: &str, out: &mut Vec<String>) {
    let Some(m) = value.as_object() else {
        out.push(format!("{at}: expected a dict"));
        return;
    };
    for (k, v) in m {
        let p = if at.is_empty() {
            k.clone()
        } else {
            format!("{at}.{k}")
        };
        match schema.get(k) {
            Some(typ) => check_value(typ, v, &p, out),
            None => out.push(format!("{p}: not in the schema")),
        }
    }
    for (k, typ) in schema {
        if m.contains_key(k) {
            continue;
        }
        let inner = match typ {
            Value::Array(a) => &a[0],
            t => t,
        };
        if !inner.as_str().is_some_and(|s| s.ends_with('?')) {
            out.push(format!("{at}.{k}: missing"));
        }
    }
}

fn check_value(typ: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    match typ {
        Value::Array(t) => match v.as_array() {
            Some(items) => items
                .iter()
                .for_each(|i| check_value(&t[0], i, &format!("{at}[]"), out)),
            None => out.push(format!("{at}: expected a list")),
        },
        Value::Object(t) => check_dict(t, v, at, out),
        Value::String(t) => {
            if let Err(e) = check_single(&element(t), v) {
                out.push(format!("{at}: {e}"));
            }
        }
        other => out.push(format!("{at}: bad schema element {other}")),
    }
}

fn check_single(e: &Element, v: &Value) -> Result<(), String> {
    if v.is_null() {
        return Err("null".into());
    }
    let in_range = |x: f64| match range(e) {
        Some((lo, hi)) if x < lo || x > hi => Err(format!("{x} outside {lo}..{hi}")),
        _ => Ok(()),
    };
    match e.base.as_str() {
        "str" | "password" | "device" => {
            v.as_str().map(|_| ()).ok_or(format!("{v} is not a string"))
        }
        "url" => match v.as_str() {
            Some(s) if s.contains("://") => Ok(()),
            _ => Err(format!("{v} is not a URL")),
        },
        "bool" => v.as_bool().map(|_| ()).ok_or(format!("{v} is not a bool")),
        "int" => in_range(v.as_i64().ok_or(format!("{v} is not an int"))? as f64),
        "float" => in_range(v.as_f64().ok_or(format!("{v} is not a number"))?),
        "port" => match v.as_i64() {
            Some(p) if (1..=65535).contains(&p) => Ok(()),
            _ => Err(format!("{v} is not a port")),
        },
        "list" => {
            let alternatives: Vec<&str> = e.arg.as_deref().unwrap_or("").split('|').collect();
            match v.as_str() {
                Some(s) if alternatives.contains(&s) => Ok(()),
                _ => Err(format!("{v} is not one of {alternatives:?}")),
            }
        }
        other => Err(format!("unknown schema type {other}")),
    }
}
