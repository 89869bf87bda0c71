//! Holds the body schemas of the OpenAPI document (`docs/openapi.yaml` and the services'
//! `openapi.yaml`, [`crate::openapi`]) against the JSON Schemas schemars derives from
//! the Rust types that read the requests and write the responses, so the document cannot drift
//! from the code.
//!
//! Both sides are inlined (`$ref`s resolved) and reduced to what a client relies on. Compared
//! exactly: the properties (every field of the type is documented and nothing else), which are
//! required, the JSON types (an optional property may be omitted instead of null), array items.
//! Compared where the Rust type states them: `enum`, `format`, `pattern`, bounds and
//! `additionalProperties: false` (`deny_unknown_fields`). Where the type says nothing (a `String`,
//! a wide integer), the document may narrow it: those are the rules the domain validates.

use std::collections::BTreeSet;

use schemars::{
    JsonSchema,
    generate::{Contract, SchemaSettings},
};
use serde_json::{Map, Value};

/// The keywords compared where the Rust type states them (the document may add them).
const NARROWING: &[&str] = &[
    "format",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "additionalProperties",
];

/// Panics unless `#/components/schemas/{component}` documents the request body type `T` as
/// serde reads it.
pub fn assert_request_documented<T: JsonSchema>(component: &str) {
    assert_documented::<T>(component, false);
}

/// Panics unless `#/components/schemas/{component}` documents the response body type `T` as
/// serde writes it.
pub fn assert_response_documented<T: JsonSchema>(component: &str) {
    assert_documented::<T>(component, true);
}

/// The differences between the schema of `T` (as serde writes it when `response`, else as it
/// reads it) and the documented `component`, one line each (empty when they agree).
pub fn differences<T: JsonSchema>(doc: &Value, component: &str, response: bool) -> Vec<String> {
    let contract = if response {
        Contract::Serialize
    } else {
        Contract::Deserialize
    };
    let documented = doc["components"]["schemas"]
        .get(component)
        .unwrap_or_else(|| panic!("the OpenAPI document has no #/components/schemas/{component}"));
    let documented = shape(&resolve(doc, documented, 0));
    let generated = SchemaSettings::draft2020_12()
        .with(|s| {
            s.inline_subschemas = true;
            s.contract = contract;
        })
        .into_generator()
        .into_root_schema_for::<T>();
    let generated = shape(&generated.to_value());
    let mut out = Vec::new();
    compare(component, &generated, &documented, &mut out);
    out
}

fn assert_documented<T: JsonSchema>(component: &str, response: bool) {
    let doc = crate::openapi();
    let found = differences::<T>(&doc, component, response);
    assert!(
        found.is_empty(),
        "#/components/schemas/{component} of the OpenAPI document does not match the Rust type {}:\n  {}",
        std::any::type_name::<T>(),
        found.join("\n  ")
    );
}

/// `schema` with every `#/components/schemas/…` reference replaced by its target.
fn resolve(doc: &Value, schema: &Value, depth: usize) -> Value {
    assert!(depth < 32, "the OpenAPI document: recursive $ref");
    match schema {
        Value::Object(map) => {
            if let Some(target) = map.get("$ref").and_then(Value::as_str) {
                let name = target
                    .strip_prefix("#/components/schemas/")
                    .unwrap_or_else(|| panic!("the OpenAPI document: unsupported $ref {target}"));
                let found = doc["components"]["schemas"]
                    .get(name)
                    .unwrap_or_else(|| panic!("the OpenAPI document: dangling $ref {target}"));
                return resolve(doc, found, depth + 1);
            }
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), resolve(doc, v, depth)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(doc, v, depth)).collect()),
        other => other.clone(),
    }
}

fn is_null_only(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
        || schema.get("const") == Some(&Value::Null)
}

/// The parts of a schema a client relies on, in one canonical form: `type` a sorted list,
/// `const` an `enum`, enums sorted without `null`, a `oneOf`/`anyOf` of string constants one
/// enum, `T | null` a nullable `T`.
fn shape(schema: &Value) -> Value {
    let Some(map) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = Map::new();
    let mut nullable = false;
    for key in ["anyOf", "oneOf"] {
        let Some(variants) = map.get(key).and_then(Value::as_array) else {
            continue;
        };
        let kept: Vec<Value> = variants
            .iter()
            .filter(|v| !is_null_only(v))
            .map(shape)
            .collect();
        nullable |= kept.len() < variants.len();
        let strings: Option<Vec<Value>> = kept
            .iter()
            .map(|v| {
                (types(v) == ["string"] && v.get("enum").is_some())
                    .then(|| v["enum"].as_array().cloned().unwrap_or_default())
            })
            .collect::<Option<Vec<_>>>()
            .map(|lists| lists.into_iter().flatten().collect());
        match (kept.len(), strings) {
            (1, _) => out.extend(kept[0].as_object().cloned().unwrap_or_default()),
            (_, Some(values)) => {
                out.insert("type".into(), Value::from(vec!["string"]));
                out.insert("enum".into(), Value::Array(values));
            }
            _ => {
                out.insert(key.into(), Value::Array(kept));
            }
        }
    }
    for (key, value) in map {
        let value = match key.as_str() {
            "type" => Value::from(types(schema)),
            "const" => {
                out.insert("enum".into(), Value::Array(vec![value.clone()]));
                continue;
            }
            "enum" => value.clone(),
            "properties" => Value::Object(
                value
                    .as_object()
                    .map(|p| p.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
                    .unwrap_or_default(),
            ),
            "items" => shape(value),
            "required" => value.clone(),
            k if NARROWING.contains(&k) => value.clone(),
            _ => continue,
        };
        out.insert(key.clone(), value);
    }
    if let Some(values) = out.get("enum").and_then(Value::as_array) {
        let mut values: Vec<Value> = values.iter().filter(|v| !v.is_null()).cloned().collect();
        values.sort_by_key(Value::to_string);
        values.dedup();
        out.insert("enum".into(), Value::Array(values));
    }
    if nullable {
        let mut t = types(&Value::Object(out.clone()));
        t.push("null".into());
        t.sort();
        t.dedup();
        out.insert("type".into(), Value::from(t));
    }
    // A machine integer's width (`int64`, `uint32`) is no contract: bounds say what is allowed.
    let t = types(&Value::Object(out.clone()));
    if t.iter().any(|t| t == "integer" || t == "number") {
        out.remove("format");
    }
    Value::Object(out)
}

fn types(schema: &Value) -> Vec<String> {
    let mut t: Vec<String> = match schema.get("type") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    t.sort();
    t
}

fn names(value: Option<&Value>) -> BTreeSet<String> {
    value
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Appends to `out` every way `doc` (the document) fails to describe `rust` (the type) at `at`.
fn compare(at: &str, rust: &Value, doc: &Value, out: &mut Vec<String>) {
    let (rust_types, doc_types) = (types(rust), types(doc));
    if rust_types != doc_types {
        out.push(format!(
            "{at}: type {rust_types:?} in Rust, {doc_types:?} documented"
        ));
    }
    for key in ["anyOf", "oneOf"] {
        if rust.get(key) != doc.get(key) {
            out.push(format!(
                "{at}: {key} differs: {} in Rust, {} documented",
                rust.get(key).unwrap_or(&Value::Null),
                doc.get(key).unwrap_or(&Value::Null)
            ));
        }
    }
    if let Some(values) = rust.get("enum")
        && doc.get("enum") != Some(values)
    {
        out.push(format!(
            "{at}: enum {values} in Rust, {} documented",
            doc.get("enum").unwrap_or(&Value::Null)
        ));
    }
    for key in NARROWING {
        if let Some(value) = rust.get(*key)
            && doc.get(*key) != Some(value)
        {
            out.push(format!(
                "{at}: {key} {value} in Rust, {} documented",
                doc.get(*key).unwrap_or(&Value::Null)
            ));
        }
    }
    let (rust_required, doc_required) = (names(rust.get("required")), names(doc.get("required")));
    if rust_required != doc_required {
        out.push(format!(
            "{at}: required {rust_required:?} in Rust, {doc_required:?} documented"
        ));
    }
    let empty = Map::new();
    let rust_props = rust
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let doc_props = doc
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (name, schema) in rust_props {
        let Some(documented) = doc_props.get(name) else {
            out.push(format!(
                "{at}.{name}: a field of the Rust type, not documented"
            ));
            continue;
        };
        let (mut schema, mut documented) = (schema.clone(), documented.clone());
        if !rust_required.contains(name) {
            // An optional field is omitted rather than sent as null.
            drop_null(&mut schema);
            drop_null(&mut documented);
        }
        compare(&format!("{at}.{name}"), &schema, &documented, out);
    }
    for name in doc_props.keys().filter(|n| !rust_props.contains_key(*n)) {
        out.push(format!(
            "{at}.{name}: documented, not a field of the Rust type"
        ));
    }
    match (rust.get("items"), doc.get("items")) {
        (Some(r), Some(d)) => compare(&format!("{at}[]"), r, d, out),
        (None, None) => {}
        (r, d) => out.push(format!(
            "{at}: items {} in Rust, {} documented",
            r.unwrap_or(&Value::Null),
            d.unwrap_or(&Value::Null)
        )),
    }
}

fn drop_null(schema: &mut Value) {
    let t: Vec<String> = types(schema).into_iter().filter(|t| t != "null").collect();
    if let Some(map) = schema.as_object_mut()
        && map.contains_key("type")
    {
        map.insert("type".into(), Value::from(t));
    }
}

#[cfg(test)]
mod tests {
    use schemars::JsonSchema;
    use serde::Serialize;
    use serde_json::json;

    use super::differences;

    #[derive(Serialize, JsonSchema)]
    #[allow(dead_code)]
    struct Thing {
        id: String,
        count: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    }

    fn doc(thing: &serde_json::Value) -> serde_json::Value {
        json!({ "components": { "schemas": { "Thing": thing } } })
    }

    fn documented_thing() -> serde_json::Value {
        json!({
            "type": "object",
            "required": ["id", "count"],
            "properties": {
                "id": { "type": "string", "format": "uuid" },
                "count": { "type": "integer", "minimum": 0 },
                "note": { "type": "string" },
            },
        })
    }

    #[test]
    fn a_document_that_describes_the_type_has_no_differences() {
        assert_eq!(
            differences::<Thing>(&doc(&documented_thing()), "Thing", true),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_field_of_the_type_missing_from_the_document_is_reported() {
        let mut thing = documented_thing();
        thing["properties"]
            .as_object_mut()
            .map(|p| p.remove("note"));
        let found = differences::<Thing>(&doc(&thing), "Thing", true);
        assert_eq!(
            found,
            vec!["Thing.note: a field of the Rust type, not documented"]
        );
    }

    #[test]
    fn a_documented_field_the_type_lacks_is_reported() {
        let mut thing = documented_thing();
        thing["properties"]["extra"] = json!({ "type": "string" });
        let found = differences::<Thing>(&doc(&thing), "Thing", true);
        assert_eq!(
            found,
            vec!["Thing.extra: documented, not a field of the Rust type"]
        );
    }

    #[test]
    fn a_wrong_type_requiredness_or_bound_is_reported() {
        let mut thing = documented_thing();
        thing["properties"]["count"] = json!({ "type": "string" });
        thing["required"] = json!(["id"]);
        let found = differences::<Thing>(&doc(&thing), "Thing", true);
        assert_eq!(
            found,
            vec![
                r#"Thing: required {"count", "id"} in Rust, {"id"} documented"#,
                r#"Thing.count: type ["integer"] in Rust, ["string"] documented"#,
                "Thing.count: minimum 0 in Rust, null documented",
            ]
        );
    }
}
