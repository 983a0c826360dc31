//! Shared by the add-on tests: YAML files read as JSON values, the add-on schema walked into leaves, the
//! Supervisor's rules ([`rules`]) and the add-on linter's ([`linter`]) re-implemented from their source, and a
//! stand-in for the Supervisor's services API ([`supervisor`]).
#![allow(dead_code)]

pub mod container;
pub mod linter;
pub mod rules;
pub mod supervisor;

#[allow(unused_imports)] // each test binary uses a different part
pub use rules::{parse_element, range, Element};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
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

/// A schema element, parsed by the Supervisor's grammar; panics naming it when the Supervisor would not.
pub fn element(s: &str) -> Element {
    parse_element(s).unwrap_or_else(|e| panic!("{e}"))
}

/// The Supervisor's checks of options against a schema on a host without any devices (a fresh install on a
/// machine without a USB camera). One message per problem.
pub fn supervisor_check(schema: &Value, options: &Value) -> Vec<String> {
    rules::check_options(schema, options, &[])
}
