//! The HTTP API's OpenAPI document, put together: `docs/openapi.yaml` holds what every service
//! shares (info, security, the common parameters, responses and schemas such as `Problem`), and
//! each service documents its own routes and schemas in `services/<name>/openapi.yaml` (`paths`
//! and `components`). A new service's routes are documented in its own folder.
//!
//! `local-stack openapi` (`make openapi`) prints the whole document; the fuzzer and the services'
//! route tests read it from here.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde_json::{Map, Value};

/// The shared part of the document, under the workspace root.
pub const BASE: &str = "docs/openapi.yaml";

/// A service's part of the document, under its folder.
pub const FRAGMENT: &str = "openapi.yaml";

/// The service fragments: `services/*/openapi.yaml`, in name order.
pub fn fragments(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = root.join("services");
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path().join(FRAGMENT);
        if path.exists() {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

fn read(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_norway::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The whole document: the base with every service's paths and components added. A path or a
/// component defined twice is an error that names both files.
pub fn document(root: &Path) -> anyhow::Result<Value> {
    let mut doc = read(&root.join(BASE))?;
    let mut owners: Map<String, Value> = Map::new();
    for path in fragments(root)? {
        let fragment = read(&path)?;
        let from = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        for key in fragment.as_object().map(Map::keys).into_iter().flatten() {
            if key != "paths" && key != "components" {
                bail!("{from}: only paths and components belong in a service's part, not {key}");
            }
        }
        add(&mut doc, &["paths"], &fragment["paths"], &from, &mut owners)?;
        if let Some(sections) = fragment["components"].as_object() {
            for (section, entries) in sections {
                add(
                    &mut doc,
                    &["components", section],
                    entries,
                    &from,
                    &mut owners,
                )?;
            }
        }
    }
    Ok(doc)
}

/// Adds the entries of `entries` under `at` in `doc`, refusing a name already there.
fn add(
    doc: &mut Value,
    at: &[&str],
    entries: &Value,
    from: &str,
    owners: &mut Map<String, Value>,
) -> anyhow::Result<()> {
    let Some(entries) = entries.as_object() else {
        if entries.is_null() {
            return Ok(());
        }
        bail!("{from}: {} is not a mapping", at.join("."));
    };
    let mut target = &mut *doc;
    for key in at {
        let object = target
            .as_object_mut()
            .with_context(|| format!("{BASE}: {} is not a mapping", at.join(".")))?;
        target = object
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    let target = target
        .as_object_mut()
        .with_context(|| format!("{BASE}: {} is not a mapping", at.join(".")))?;
    for (name, value) in entries {
        let id = format!("{}.{name}", at.join("."));
        if target.contains_key(name) {
            let first = owners.get(&id).and_then(Value::as_str).unwrap_or(BASE);
            bail!("{id} is defined by both {first} and {from}");
        }
        target.insert(name.clone(), value.clone());
        owners.insert(id, Value::String(from.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn repo(files: &[(&str, &str)]) -> tempdir::Dir {
        let dir = tempdir::Dir::new();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    /// A throwaway directory, removed on drop.
    mod tempdir {
        pub(super) struct Dir(std::path::PathBuf);
        impl Dir {
            pub(super) fn new() -> Self {
                let path = std::env::temp_dir().join(format!("openapi-{}", uuid::Uuid::new_v4()));
                std::fs::create_dir_all(&path).unwrap();
                Self(path)
            }
            pub(super) fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    const BASE_TEXT: &str =
        "openapi: 3.1.0\npaths: {}\ncomponents:\n  schemas:\n    Problem: {type: object}\n";

    #[test]
    fn every_services_paths_and_components_join_the_shared_part() {
        let dir = repo(&[
            (BASE, BASE_TEXT),
            (
                "services/a/openapi.yaml",
                "paths:\n  /v1/a: {get: {}}\ncomponents:\n  schemas:\n    A: {type: string}\n",
            ),
            (
                "services/b/openapi.yaml",
                "paths:\n  /v1/b: {get: {}}\ncomponents:\n  parameters:\n    B: {name: b}\n",
            ),
            ("services/c/README.md", "no document"),
        ]);
        let doc = document(dir.path()).unwrap();
        assert_eq!(
            doc["paths"].as_object().unwrap().keys().collect::<Vec<_>>(),
            ["/v1/a", "/v1/b"]
        );
        assert_eq!(
            doc["components"]["schemas"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["A", "Problem"]
        );
        assert_eq!(doc["components"]["parameters"]["B"]["name"], "b");
    }

    #[test]
    fn a_path_or_component_defined_twice_names_both_files() {
        let dir = repo(&[
            (BASE, BASE_TEXT),
            (
                "services/a/openapi.yaml",
                "components:\n  schemas:\n    Problem: {type: string}\n",
            ),
        ]);
        let error = format!("{:#}", document(dir.path()).unwrap_err());
        assert_eq!(
            error,
            "components.schemas.Problem is defined by both docs/openapi.yaml and services/a/openapi.yaml"
        );

        let dir = repo(&[
            (BASE, BASE_TEXT),
            ("services/a/openapi.yaml", "paths:\n  /v1/x: {get: {}}\n"),
            ("services/b/openapi.yaml", "paths:\n  /v1/x: {post: {}}\n"),
        ]);
        let error = format!("{:#}", document(dir.path()).unwrap_err());
        assert_eq!(
            error,
            "paths./v1/x is defined by both services/a/openapi.yaml and services/b/openapi.yaml"
        );
    }

    #[test]
    fn a_service_part_may_not_change_the_shared_settings() {
        let dir = repo(&[
            (BASE, BASE_TEXT),
            ("services/a/openapi.yaml", "security: []\n"),
        ]);
        let error = format!("{:#}", document(dir.path()).unwrap_err());
        assert!(error.contains("not security"), "{error}");
    }
}
