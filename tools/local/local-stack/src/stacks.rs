//! Reads the platform stack (`infra/platform.yaml`) and every service stack
//! (`services/*/template.yaml`, found by glob) as one [`Template`], as if they were one stack:
//!
//! - a service's modules (`AWS::Serverless::Application` with a local `Location`, e.g.
//!   `infra/modules/service.yaml`) are expanded in place: the module's resources join the service as
//!   `<Instance><Resource>` (instance `Orders` + `Queue` = `OrdersQueue`), its parameters and
//!   conditions resolved, and `!GetAtt <Instance>.Outputs.X` (also as `${<Instance>.Outputs.X}`
//!   in a `Sub`) replaced by what the output is; a module parameter the service does not pass
//!   stays a `Ref` and joins the template's parameters with the module's default (so
//!   `--param QueueVisibilityTimeout=10` reaches it), and a module condition on what only a
//!   deployment knows (`IsProd`, on the `Stage`) joins the template's conditions; a module's own
//!   SAM function (the relay of `infra/modules/relay.yaml`) keeps its `CodeUri` relative to the module;
//! - each stack's SAM `Globals.Function` is merged into its own functions, and a function's
//!   local `CodeUri` made absolute (each stack has its own folder);
//! - a service's `Fn::ImportValue` of a platform export (`${AppName}-${Stage}-<Output>`) is
//!   replaced by the value of that platform output (`{"Ref": "EventBus"}`);
//! - the services' `AWS::ApiGatewayV2::Route`s become `HttpApi` events of the function their
//!   integration invokes, with the route's authorizer and scopes, which is how
//!   [`crate::functions`] reads routes.
//!
//! infra/tools/stacks.py does the same on the transformed templates for the offline checks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Map, Value};

use crate::template::{Resource, Template};

/// The text of one stack's template and the folder it is in (module `Location`s and `CodeUri`s
/// are relative to it).
#[derive(Debug, Clone)]
pub struct StackSource {
    pub path: PathBuf,
    pub text: String,
}

impl StackSource {
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading template {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            text,
        })
    }

    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or_else(|| Path::new("."))
    }
}

/// The platform template of a workspace.
pub fn platform_path(root: &Path) -> PathBuf {
    root.join("infra/platform.yaml")
}

/// Every service template of a workspace (`services/<name>/template.yaml`), in name order.
pub fn service_paths(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = root.join("services");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path().join("template.yaml"))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    Ok(out)
}

/// The platform and every service stack of a workspace.
pub fn sources(root: &Path) -> anyhow::Result<(StackSource, Vec<StackSource>)> {
    let platform = StackSource::read(&platform_path(root))?;
    let services = service_paths(root)?
        .iter()
        .map(|p| StackSource::read(p))
        .collect::<Result<Vec<_>, _>>()?;
    if services.is_empty() {
        bail!("no services/*/template.yaml under {}", root.display());
    }
    Ok((platform, services))
}

/// The platform and every service stack of a workspace as one template.
pub fn load(root: &Path) -> anyhow::Result<Template> {
    let (platform, services) = sources(root)?;
    merge(&platform, &services)
}

/// The platform and the given service stacks as one template.
pub fn merge(platform: &StackSource, services: &[StackSource]) -> anyhow::Result<Template> {
    let mut merged =
        stack(platform).with_context(|| format!("reading {}", platform.path.display()))?;
    let exports = exports(&merged);
    for source in services {
        let mut service =
            stack(source).with_context(|| format!("reading {}", source.path.display()))?;
        for res in service.resources.values_mut() {
            res.properties = resolve_imports(&res.properties, &exports)
                .with_context(|| format!("{}", source.path.display()))?;
        }
        routes_to_events(&mut service)
            .with_context(|| format!("routes of {}", source.path.display()))?;
        for (id, res) in service.resources {
            if merged.resources.contains_key(&id) {
                bail!(
                    "{}: resource {id} is already the platform's or another service's",
                    source.path.display()
                );
            }
            merged.resources.insert(id, res);
        }
        for (name, p) in service.parameters {
            if let Some(have) = merged.parameters.get(&name)
                && have.get("Default") != p.get("Default")
            {
                bail!(
                    "{}: parameter {name} defaults to {:?}, in another stack to {:?}",
                    source.path.display(),
                    p.get("Default"),
                    have.get("Default")
                );
            }
            merged.parameters.entry(name).or_insert(p);
        }
        for (name, c) in service.conditions {
            merged.conditions.entry(name).or_insert(c);
        }
        for (name, m) in service.mappings {
            match (merged.mappings.get_mut(&name), m) {
                (Some(Value::Object(have)), Value::Object(add)) => {
                    for (key, entries) in add {
                        match (have.get_mut(&key), entries) {
                            (Some(Value::Object(h)), Value::Object(e)) => h.extend(e),
                            (_, e) => {
                                have.insert(key, e);
                            }
                        }
                    }
                }
                (_, m) => {
                    merged.mappings.insert(name, m);
                }
            }
        }
    }
    Ok(merged)
}

/// One stack: parsed, modules expanded, `Globals.Function` merged into its functions and their
/// `CodeUri` made absolute.
fn stack(source: &StackSource) -> anyhow::Result<Template> {
    let mut template = Template::parse(&source.text)?;
    expand_modules(&mut template, source.dir())?;
    for res in template.resources.values_mut() {
        if res.kind != "AWS::Serverless::Function" {
            continue;
        }
        res.properties = template_function_properties(&template.globals, res);
        if let Some(Value::String(uri)) = res.properties.get("CodeUri")
            && !uri.starts_with("s3://")
        {
            let abs = normalize(&source.dir().join(uri));
            res.properties["CodeUri"] = Value::String(abs.display().to_string());
        }
    }
    template.globals = Map::new();
    Ok(template)
}

/// `a/b/../c/.` → `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn template_function_properties(globals: &Map<String, Value>, res: &Resource) -> Value {
    let t = Template {
        parameters: Map::new(),
        conditions: Map::new(),
        mappings: Map::new(),
        globals: globals.clone(),
        resources: Default::default(),
        outputs: Map::new(),
    };
    t.function_properties(res)
}

// --- modules -----------------------------------------------------------------------------------

/// Replaces every `AWS::Serverless::Application` whose `Location` is a local file by the
/// resources of that module.
fn expand_modules(template: &mut Template, dir: &Path) -> anyhow::Result<()> {
    loop {
        let apps: Vec<(String, Resource)> = template
            .resources
            .iter()
            .filter(|(_, r)| {
                r.kind == "AWS::Serverless::Application"
                    && r.properties
                        .get("Location")
                        .and_then(Value::as_str)
                        .is_some_and(|l| !l.starts_with("s3://") && !l.starts_with("https://"))
            })
            .map(|(id, r)| (id.clone(), r.clone()))
            .collect();
        if apps.is_empty() {
            return Ok(());
        }
        let mut outputs: HashMap<(String, String), Value> = HashMap::new();
        for (id, app) in apps {
            let location = app.properties["Location"].as_str().unwrap_or_default();
            let path = dir.join(location);
            let module = Template::load(&path)?;
            let given = app
                .properties
                .get("Parameters")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let inliner = Inliner::new(&id, &module, &given)
                .with_context(|| format!("module {id} ({})", path.display()))?;
            template.resources.remove(&id);
            let module_dir = path.parent().unwrap_or_else(|| Path::new("."));
            for (name, cond) in &inliner.lifted {
                if let Some(have) = template.conditions.get(name)
                    && have != cond
                {
                    bail!("module {id}: its condition {name} is another condition of the stack");
                }
                template.conditions.insert(name.clone(), cond.clone());
            }
            for (name, mut res) in inliner.resources()? {
                if res.kind == "AWS::Serverless::Function"
                    && let Some(Value::String(uri)) = res.properties.get("CodeUri")
                    && !uri.starts_with("s3://")
                {
                    let abs = normalize(&std::env::current_dir()?.join(module_dir).join(uri));
                    res.properties["CodeUri"] = Value::String(abs.display().to_string());
                }
                if template.resources.contains_key(&name) {
                    bail!("module {id}: its {name} is already a resource of the stack");
                }
                template.resources.insert(name, res);
            }
            for (name, value) in inliner.outputs()? {
                outputs.insert((id.clone(), format!("Outputs.{name}")), value);
            }
            for (name, decl) in &inliner.declared {
                if let Some(have) = template.parameters.get(name)
                    && have.get("Default") != decl.get("Default")
                {
                    bail!("module {id}: parameter {name} has another default in the stack");
                }
                template
                    .parameters
                    .entry(name.clone())
                    .or_insert_with(|| decl.clone());
            }
        }
        for res in template.resources.values_mut() {
            res.properties = replace_outputs(&res.properties, &outputs);
        }
        template.outputs = template
            .outputs
            .iter()
            .map(|(k, v)| (k.clone(), replace_outputs(v, &outputs)))
            .collect();
    }
}

/// `!GetAtt <Instance>.Outputs.X` → the value of the module's output X.
fn replace_outputs(v: &Value, outputs: &HashMap<(String, String), Value>) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.iter().map(|x| replace_outputs(x, outputs)).collect()),
        Value::Object(m) => {
            if m.len() == 1
                && let Some(Value::Array(at)) = m.get("Fn::GetAtt")
                && let [Value::String(id), Value::String(attr)] = at.as_slice()
                && let Some(out) = outputs.get(&(id.clone(), attr.clone()))
            {
                return out.clone();
            }
            if m.len() == 1
                && let Some(sub) = m.get("Fn::Sub")
            {
                return serde_json::json!({ "Fn::Sub": replace_sub_outputs(sub, outputs) });
            }
            Value::Object(
                m.iter()
                    .map(|(k, x)| (k.clone(), replace_outputs(x, outputs)))
                    .collect(),
            )
        }
        other => other.clone(),
    }
}

/// The `${<Instance>.Outputs.X}` of a `Sub` made `${R}` or `${R.Attr}` when the output is a
/// `Ref` of R or a `GetAtt` of R.Attr.
fn replace_sub_outputs(sub: &Value, outputs: &HashMap<(String, String), Value>) -> Value {
    let rewrite = |text: &str| -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                return out;
            };
            let var = &after[..end];
            let replaced = var.split_once(".Outputs.").and_then(|(instance, name)| {
                match outputs.get(&(instance.to_owned(), format!("Outputs.{name}")))? {
                    Value::Object(o) => match (o.get("Ref"), o.get("Fn::GetAtt")) {
                        (Some(Value::String(r)), _) => Some(format!("${{{r}}}")),
                        (_, Some(Value::Array(at))) => {
                            let parts: Vec<&str> = at.iter().filter_map(Value::as_str).collect();
                            Some(format!("${{{}}}", parts.join(".")))
                        }
                        _ => None,
                    },
                    _ => None,
                }
            });
            out.push_str(&replaced.unwrap_or_else(|| format!("${{{var}}}")));
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    };
    match sub {
        Value::String(t) => Value::String(rewrite(t)),
        Value::Array(a) if a.len() == 2 => Value::Array(vec![
            a[0].as_str()
                .map_or_else(|| a[0].clone(), |t| Value::String(rewrite(t))),
            replace_outputs(&a[1], outputs),
        ]),
        other => other.clone(),
    }
}

/// Rewrites one module's resources and outputs into the terms of the stack that uses it.
struct Inliner<'a> {
    instance: &'a str,
    module: &'a Template,
    params: HashMap<String, Value>,
    conditions: HashMap<String, bool>,
    /// The module's own settings: parameters with a default the stack does not pass.
    declared: Map<String, Value>,
    /// The module's conditions on what only a deployment knows, rewritten for the stack.
    lifted: Map<String, Value>,
}

/// `{"Ref": "AWS::NoValue"}`: what a resolved `Fn::If` leaves out.
fn is_no_value(v: &Value) -> bool {
    v.get("Ref").and_then(Value::as_str) == Some("AWS::NoValue")
}

fn literal_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl<'a> Inliner<'a> {
    fn new(
        instance: &'a str,
        module: &'a Template,
        given: &Map<String, Value>,
    ) -> anyhow::Result<Self> {
        let mut params = HashMap::new();
        let mut declared = Map::new();
        for (name, decl) in &module.parameters {
            let mut value = match (given.get(name), decl.get("Default")) {
                (Some(v), _) => v.clone(),
                (None, Some(_)) => {
                    declared.insert(name.clone(), decl.clone());
                    serde_json::json!({ "Ref": name })
                }
                (None, None) => bail!("module parameter {name} has no value"),
            };
            if decl.get("Type").and_then(Value::as_str) == Some("CommaDelimitedList") {
                value = match value {
                    Value::String(s) => Value::Array(
                        s.split(',')
                            .map(|x| Value::String(x.trim().to_owned()))
                            .collect(),
                    ),
                    Value::Object(m)
                        if m.get("Fn::Join")
                            .and_then(Value::as_array)
                            .is_some_and(|j| j.len() == 2 && j[0] == ",") =>
                    {
                        m["Fn::Join"][1].clone()
                    }
                    Value::Array(a) => Value::Array(a),
                    other => Value::Array(vec![other]),
                };
            }
            params.insert(name.clone(), value);
        }
        let mut inliner = Self {
            instance,
            module,
            params,
            conditions: HashMap::new(),
            declared,
            lifted: Map::new(),
        };
        let mut pending: Vec<&String> = module.conditions.keys().collect();
        for _ in 0..=pending.len() {
            pending.retain(
                |name| match inliner.condition(&module.conditions[name.as_str()]) {
                    Ok(b) => {
                        inliner.conditions.insert((*name).clone(), b);
                        false
                    }
                    Err(_) => true,
                },
            );
        }
        // What is left depends on what only a deployment knows (IsProd on the Stage): the stack's.
        let mut lifted = Map::new();
        for name in pending {
            lifted.insert(
                name.clone(),
                inliner.rewrite(&module.conditions[name.as_str()])?,
            );
        }
        inliner.lifted = lifted;
        Ok(inliner)
    }

    fn name(&self, id: &str) -> String {
        format!("{}{id}", self.instance)
    }

    fn exists(&self, id: &str) -> bool {
        self.module.resources.get(id).is_some_and(|r| {
            r.condition
                .as_ref()
                .is_none_or(|c| self.conditions.get(c).copied().unwrap_or(false))
        })
    }

    fn literal(&self, v: &Value) -> anyhow::Result<String> {
        if let Some(Value::String(p)) = v.get("Ref")
            && let Some(value) = self.params.get(p)
        {
            // A parameter the stack does not pass has the module's default in a deployment too.
            let value = self
                .declared
                .get(p)
                .and_then(|d| d.get("Default"))
                .unwrap_or(value);
            return literal_text(value).ok_or_else(|| anyhow!("{p} is not a literal: {value}"));
        }
        literal_text(v).ok_or_else(|| anyhow!("{v} is not a literal"))
    }

    fn condition(&self, v: &Value) -> anyhow::Result<bool> {
        let Value::Object(m) = v else {
            bail!("bad condition {v}")
        };
        let (k, arg) = m.iter().next().ok_or_else(|| anyhow!("empty condition"))?;
        let list = || arg.as_array().ok_or_else(|| anyhow!("{k} needs a list"));
        match k.as_str() {
            "Fn::Equals" => {
                let l = list()?;
                let [a, b] = l.as_slice() else {
                    bail!("Equals needs 2 arguments")
                };
                Ok(self.literal(a)? == self.literal(b)?)
            }
            "Fn::Not" => Ok(!self.condition(list()?.first().ok_or_else(|| anyhow!("Not"))?)?),
            "Fn::And" => list()?
                .iter()
                .try_fold(true, |a, c| Ok(a && self.condition(c)?)),
            "Fn::Or" => list()?
                .iter()
                .try_fold(false, |a, c| Ok(a || self.condition(c)?)),
            "Condition" => {
                let name = arg
                    .as_str()
                    .ok_or_else(|| anyhow!("Condition needs a name"))?;
                self.conditions
                    .get(name)
                    .copied()
                    .ok_or_else(|| anyhow!("condition {name} not evaluated yet"))
            }
            other => bail!("condition {other} is not supported in a module"),
        }
    }

    fn sub_text(&self, text: &str, vars: &mut Map<String, Value>) -> anyhow::Result<String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| anyhow!("unterminated ${{ in Sub {text}"))?;
            let var = &after[..end];
            let (head, attr) = var.split_once('.').unwrap_or((var, ""));
            let token = format!("${{{var}}}");
            if var.starts_with('!') || vars.contains_key(var) || head.starts_with("AWS::") {
                out.push_str(&token);
            } else if self.exists(head) {
                let dotted = if attr.is_empty() {
                    String::new()
                } else {
                    format!(".{attr}")
                };
                out.push_str(&format!("${{{}{dotted}}}", self.name(head)));
            } else if let Some(value) = self.params.get(var) {
                if let Some(lit) = literal_text(value) {
                    out.push_str(&lit);
                } else if let Some(Value::String(r)) = value.get("Ref") {
                    out.push_str(&format!("${{{r}}}"));
                } else {
                    vars.insert(var.to_owned(), value.clone());
                    out.push_str(&token);
                }
            } else {
                bail!("${{{var}}} names nothing of the module");
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn rewrite(&self, v: &Value) -> anyhow::Result<Value> {
        match v {
            Value::Array(a) => Ok(Value::Array(
                a.iter()
                    .map(|x| self.rewrite(x))
                    .filter(|x| !x.as_ref().is_ok_and(is_no_value))
                    .collect::<Result<_, _>>()?,
            )),
            Value::Object(m) if m.len() == 1 => {
                let (k, arg) = m.iter().next().ok_or_else(|| anyhow!("empty object"))?;
                match (k.as_str(), arg) {
                    ("Ref", Value::String(id)) => {
                        if let Some(p) = self.params.get(id) {
                            Ok(p.clone())
                        } else if self.exists(id) {
                            Ok(serde_json::json!({ "Ref": self.name(id) }))
                        } else if let Some((head, attr)) = id.split_once('.')
                            && self.exists(head)
                        {
                            // SAM's `!Ref Function.Version` / `.Alias` of the module's function.
                            Ok(serde_json::json!({ "Ref": format!("{}.{attr}", self.name(head)) }))
                        } else {
                            Ok(v.clone())
                        }
                    }
                    ("Fn::GetAtt", Value::Array(at)) => match at.as_slice() {
                        [Value::String(id), rest @ ..] if self.exists(id) => {
                            let mut parts = vec![Value::String(self.name(id))];
                            parts.extend(rest.iter().cloned());
                            Ok(serde_json::json!({ "Fn::GetAtt": parts }))
                        }
                        _ => Ok(v.clone()),
                    },
                    ("Fn::Sub", _) => {
                        let (text, mut vars) = match arg {
                            Value::String(t) => (t.clone(), Map::new()),
                            Value::Array(a) if a.len() == 2 => (
                                a[0].as_str().unwrap_or_default().to_owned(),
                                a[1].as_object().cloned().unwrap_or_default(),
                            ),
                            other => bail!("bad Sub {other}"),
                        };
                        let mut text = text;
                        let mut kept = Map::new();
                        for (name, value) in vars.iter_mut() {
                            let value = self.rewrite(value)?;
                            match literal_text(&value) {
                                Some(lit) => text = text.replace(&format!("${{{name}}}"), &lit),
                                None => {
                                    kept.insert(name.clone(), value);
                                }
                            }
                        }
                        let text = self.sub_text(&text, &mut kept)?;
                        Ok(if kept.is_empty() && !text.contains("${") {
                            // Nothing left to substitute: the text itself.
                            Value::String(text)
                        } else if kept.is_empty() {
                            serde_json::json!({ "Fn::Sub": text })
                        } else {
                            serde_json::json!({ "Fn::Sub": [text, kept] })
                        })
                    }
                    ("Fn::If", Value::Array(a)) if a.len() == 3 => {
                        let name = a[0].as_str().ok_or_else(|| anyhow!("If needs a name"))?;
                        if self.lifted.contains_key(name) {
                            return Ok(serde_json::json!({
                                "Fn::If": [name, self.rewrite(&a[1])?, self.rewrite(&a[2])?]
                            }));
                        }
                        let holds = *self
                            .conditions
                            .get(name)
                            .ok_or_else(|| anyhow!("unknown condition {name}"))?;
                        self.rewrite(if holds { &a[1] } else { &a[2] })
                    }
                    ("Fn::FindInMap", Value::Array(a)) if a.len() == 3 => {
                        let keys: Vec<Value> = a
                            .iter()
                            .map(|x| self.rewrite(x))
                            .collect::<Result<_, _>>()?;
                        let found = match keys.as_slice() {
                            [Value::String(m), Value::String(k1), Value::String(k2)] => self
                                .module
                                .mappings
                                .get(m)
                                .and_then(|m| m.get(k1))
                                .and_then(|m| m.get(k2))
                                .cloned(),
                            _ => None,
                        };
                        Ok(found.unwrap_or_else(|| serde_json::json!({ "Fn::FindInMap": keys })))
                    }
                    _ => Ok(Value::Object(
                        m.iter()
                            .map(|(k, x)| Ok((k.clone(), self.rewrite(x)?)))
                            .collect::<anyhow::Result<_>>()?,
                    )),
                }
            }
            Value::Object(m) => Ok(Value::Object(
                m.iter()
                    .map(|(k, x)| Ok((k.clone(), self.rewrite(x)?)))
                    .filter(|kv| !kv.as_ref().is_ok_and(|(_, x)| is_no_value(x)))
                    .collect::<anyhow::Result<_>>()?,
            )),
            other => Ok(other.clone()),
        }
    }

    fn resources(&self) -> anyhow::Result<Vec<(String, Resource)>> {
        let mut out = Vec::new();
        for (id, res) in &self.module.resources {
            if !self.exists(id) {
                continue;
            }
            out.push((
                self.name(id),
                Resource {
                    kind: res.kind.clone(),
                    properties: self.rewrite(&res.properties)?,
                    condition: None,
                    metadata: self.rewrite(&res.metadata)?,
                },
            ));
        }
        Ok(out)
    }

    fn outputs(&self) -> anyhow::Result<Vec<(String, Value)>> {
        let mut out = Vec::new();
        for (name, o) in &self.module.outputs {
            let holds = o
                .get("Condition")
                .and_then(Value::as_str)
                .is_none_or(|c| self.conditions.get(c).copied().unwrap_or(false));
            if holds && let Some(v) = o.get("Value") {
                out.push((name.clone(), self.rewrite(v)?));
            }
        }
        Ok(out)
    }
}

// --- imports and routes ------------------------------------------------------------------------

/// Output name → value of every platform output exported as `${AppName}-${Stage}-<Name>`.
fn exports(platform: &Template) -> HashMap<String, Value> {
    platform
        .outputs
        .iter()
        .filter_map(|(name, o)| {
            let export = o.pointer("/Export/Name/Fn::Sub")?.as_str()?;
            (export.strip_prefix("${AppName}-${Stage}-")? == name)
                .then(|| (name.clone(), o.get("Value").cloned().unwrap_or(Value::Null)))
        })
        .collect()
}

/// The export name of `{"Fn::ImportValue": {"Fn::Sub": "${AppName}-${Stage}-<Name>"}}`.
fn imported(v: &Value) -> Option<&str> {
    let m = v.as_object().filter(|m| m.len() == 1)?;
    m.get("Fn::ImportValue")?
        .get("Fn::Sub")?
        .as_str()?
        .strip_prefix("${AppName}-${Stage}-")
}

fn resolve_imports(v: &Value, exports: &HashMap<String, Value>) -> anyhow::Result<Value> {
    if let Some(name) = imported(v) {
        return exports.get(name).cloned().ok_or_else(|| {
            anyhow!("Fn::ImportValue of {name}, which the platform does not export")
        });
    }
    Ok(match v {
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| resolve_imports(x, exports))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| Ok((k.clone(), resolve_imports(x, exports)?)))
                .collect::<anyhow::Result<_>>()?,
        ),
        other => other.clone(),
    })
}

/// Each `AWS::ApiGatewayV2::Route` becomes an `HttpApi` event (`Method`, `Path`,
/// `Auth.Authorizer`, `Auth.AuthorizationScopes`) of the function whose alias its integration
/// invokes (`IntegrationUri: !Ref <Function>.Alias`).
fn routes_to_events(template: &mut Template) -> anyhow::Result<()> {
    let routes: Vec<(String, Value)> = template
        .resources
        .iter()
        .filter(|(_, r)| r.kind == "AWS::ApiGatewayV2::Route")
        .map(|(id, r)| (id.clone(), r.properties.clone()))
        .collect();
    for (id, route) in routes {
        let key = route
            .get("RouteKey")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("route {id} has no RouteKey"))?;
        let (method, path) = key
            .split_once(' ')
            .ok_or_else(|| anyhow!("route {id}: RouteKey {key} is not '<METHOD> <path>'"))?;
        let target = route
            .pointer("/Target/Fn::Sub")
            .and_then(Value::as_str)
            .and_then(|t| t.strip_prefix("integrations/${"))
            .and_then(|t| t.strip_suffix('}'))
            .ok_or_else(|| {
                anyhow!("route {id}: Target is not !Sub integrations/${{<Integration>}}")
            })?;
        let uri = template
            .resources
            .get(target)
            .and_then(|i| i.properties.get("IntegrationUri"))
            .ok_or_else(|| anyhow!("route {id}: no integration {target}"))?;
        let function = match uri {
            Value::Object(m) => m
                .get("Ref")
                .and_then(Value::as_str)
                .map(|r| r.trim_end_matches(".Alias").to_owned())
                .or_else(|| {
                    m.get("Fn::GetAtt")
                        .and_then(|a| a.get(0))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                }),
            _ => None,
        }
        .ok_or_else(|| anyhow!("route {id}: integration {target} does not name a function"))?;
        let authorizer = route
            .pointer("/AuthorizerId/Ref")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut auth = Map::new();
        if let Some(a) = authorizer {
            auth.insert("Authorizer".into(), Value::String(a));
        }
        if let Some(scopes) = route.get("AuthorizationScopes") {
            auth.insert("AuthorizationScopes".into(), scopes.clone());
        }
        let event = serde_json::json!({
            "Type": "HttpApi",
            "Properties": { "Method": method, "Path": path, "Auth": Value::Object(auth) },
        });
        let f = template
            .resources
            .get_mut(&function)
            .ok_or_else(|| anyhow!("route {id}: no function {function}"))?;
        let props = f
            .properties
            .as_object_mut()
            .ok_or_else(|| anyhow!("function {function} has no properties"))?;
        let events = props
            .entry("Events")
            .or_insert_with(|| Value::Object(Map::new()));
        events
            .as_object_mut()
            .ok_or_else(|| anyhow!("function {function}: Events is not a mapping"))?
            .insert(id.trim_end_matches("Route").to_owned(), event);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn root() -> PathBuf {
        crate::stack::workspace_root(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn the_stacks_read_as_one_template_with_modules_expanded_and_imports_resolved() {
        let t = load(&root()).unwrap();
        // Each service's inbox module: its queue, DLQs and rule under the old logical ids.
        for id in [
            "OrdersQueue",
            "PaymentsQueueDlq",
            "NotifyRuleDlq",
            "OrdersRule",
            "OrdersRelayDlq",
        ] {
            assert!(t.resources.contains_key(id), "no {id}");
        }
        assert_eq!(
            t.resources["OrdersRule"].properties["EventBusName"],
            serde_json::json!({"Ref": "EventBus"})
        );
        assert_eq!(
            t.resources["NotifyRule"].properties["EventPattern"]["source"],
            serde_json::json!(["shop.orders", "shop.payments"])
        );
        // A module's own setting stays a parameter (with the module's default) the stack may set.
        assert_eq!(
            t.resources["OrdersQueue"].properties["VisibilityTimeout"],
            serde_json::json!({"Ref": "QueueVisibilityTimeout"})
        );
        assert_eq!(t.parameters["QueueVisibilityTimeout"]["Default"], 120);
        // A relay reads its DLQ's ARN from the module's output.
        let relay = &t.resources["OrdersRelayFunction"].properties;
        assert_eq!(
            relay.pointer("/Events/TableStream/Properties/DestinationConfig/OnFailure/Destination"),
            Some(&serde_json::json!({"Fn::GetAtt": ["OrdersRelayDlq", "Arn"]}))
        );
        // The relay is the module's own function: its CodeUri is the shared binary's folder, read
        // from the module's folder; a service's functions take Globals (CodeUri included).
        assert_eq!(relay["Runtime"], "provided.al2023");
        assert_eq!(
            Path::new(relay["CodeUri"].as_str().unwrap()),
            root().join("shared/outbox-relay")
        );
        assert_eq!(relay["Environment"]["Variables"]["SERVICE_NAME"], "orders");
        let http = &t.resources["OrdersHttpFunction"].properties;
        assert_eq!(http["Runtime"], "provided.al2023");
        assert_eq!(
            Path::new(http["CodeUri"].as_str().unwrap()),
            root().join("services/orders")
        );
        // The table is the service module's: its sparse index only where the service asks for one,
        // its deletion protection on the stack's own IsProd, the module's outputs read in a Sub.
        let indexes = |id: &str| {
            t.resources[id].properties["GlobalSecondaryIndexes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["IndexName"].clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            indexes("OrdersTable"),
            [serde_json::json!("gsi1"), serde_json::json!("pending")]
        );
        assert_eq!(indexes("PaymentsTable"), [serde_json::json!("gsi1")]);
        assert_eq!(
            t.resources["OrdersTable"].properties["DeletionProtectionEnabled"],
            serde_json::json!({"Fn::If": ["IsProd", true, false]})
        );
        assert_eq!(
            t.resources["OrdersTimeoutFunction"].properties["Environment"]["Variables"]["ORDERS_TABLE"],
            serde_json::json!({"Ref": "OrdersTable"})
        );
        // The routes are events of the function their integration invokes.
        let create = relay_event(&t, "OrdersHttpFunction", "OrdersCreate");
        assert_eq!(create["Properties"]["Method"], "POST");
        assert_eq!(create["Properties"]["Path"], "/v1/orders");
        assert_eq!(create["Properties"]["Auth"]["Authorizer"], "JwtAuthorizer");
        assert_eq!(
            create["Properties"]["Auth"]["AuthorizationScopes"],
            serde_json::json!([{"Fn::Sub": "${AppName}/orders"}])
        );
        // No CloudWatch resource of a module is conditioned on something unresolved.
        assert!(
            t.resources
                .values()
                .all(|r| r.kind != "AWS::Serverless::Application")
        );
    }

    fn relay_event<'a>(t: &'a Template, function: &str, event: &str) -> &'a Value {
        &t.resources[function].properties["Events"][event]
    }

    #[test]
    fn an_import_of_something_the_platform_does_not_export_is_an_error() {
        let (platform, mut services) = sources(&root()).unwrap();
        services[0].text = services[0]
            .text
            .replacen("-DataKeyArn\"}", "-NoSuchExport\"}", 1);
        let err = merge(&platform, &services).unwrap_err();
        assert!(
            format!("{err:#}").contains("NoSuchExport, which the platform does not export"),
            "{err:#}"
        );
    }
}
