//! Reads a SAM template (one stack's; [`crate::stacks`] joins the platform and the service stacks
//! into one) and resolves the CloudFormation intrinsics the local stack needs (`Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::If`, conditions, parameters …) against local values.
//!
//! The YAML is first turned into JSON with short-form tags rewritten to their long form
//! (`!Ref X` → `{"Ref": "X"}`, `!Sub s` → `{"Fn::Sub": s}`), then resolved by [`Resolver`].

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Map, Value};

/// One resource of the template, properties still unresolved.
#[derive(Debug, Clone)]
pub struct Resource {
    pub kind: String,
    pub properties: Value,
    pub condition: Option<String>,
    pub metadata: Value,
}

/// The parsed template: parameters, conditions, mappings, globals, resources and outputs.
#[derive(Debug, Clone)]
pub struct Template {
    pub parameters: Map<String, Value>,
    pub conditions: Map<String, Value>,
    pub mappings: Map<String, Value>,
    pub globals: Map<String, Value>,
    pub resources: BTreeMap<String, Resource>,
    pub outputs: Map<String, Value>,
}

impl Template {
    /// Reads and parses a template file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading template {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("parsing template {}", path.display()))
    }

    /// Parses template text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let yaml: serde_norway::Value = serde_norway::from_str(text)?;
        let json = yaml_to_json(yaml)?;
        let Value::Object(mut root) = json else {
            bail!("template is not a mapping")
        };
        let mut take = |key: &str| match root.remove(key) {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let parameters = take("Parameters");
        let conditions = take("Conditions");
        let mappings = take("Mappings");
        let globals = take("Globals");
        let outputs = take("Outputs");
        let mut resources = BTreeMap::new();
        for (id, res) in take("Resources") {
            let kind = res
                .get("Type")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("resource {id} has no Type"))?
                .to_owned();
            resources.insert(
                id,
                Resource {
                    kind,
                    properties: res.get("Properties").cloned().unwrap_or(Value::Null),
                    condition: res
                        .get("Condition")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    metadata: res.get("Metadata").cloned().unwrap_or(Value::Null),
                },
            );
        }
        Ok(Self {
            parameters,
            conditions,
            mappings,
            globals,
            resources,
            outputs,
        })
    }

    /// Resources of one type whose condition (if any) holds, in logical-id order.
    pub fn of_kind<'a>(
        &'a self,
        kind: &'a str,
        ctx: &'a Context,
    ) -> impl Iterator<Item = (&'a String, &'a Resource)> + 'a {
        self.resources.iter().filter(move |(_, r)| {
            r.kind == kind
                && r.condition
                    .as_ref()
                    .is_none_or(|c| ctx.conditions.get(c).copied().unwrap_or(false))
        })
    }

    /// Properties of a function with SAM `Globals.Function` merged in (the function wins;
    /// `Environment.Variables` maps are merged key by key).
    pub fn function_properties(&self, res: &Resource) -> Value {
        let mut props = match self.globals.get("Function") {
            Some(Value::Object(g)) => Value::Object(g.clone()),
            _ => Value::Object(Map::new()),
        };
        merge(&mut props, &res.properties);
        props
    }
}

fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() && !is_intrinsic(v) => {
                        merge(existing, v)
                    }
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn is_intrinsic(v: &Value) -> bool {
    v.as_object().is_some_and(|m| {
        m.len() == 1
            && m.keys()
                .all(|k| k == "Ref" || k.starts_with("Fn::") || k == "Condition")
    })
}

fn yaml_to_json(v: serde_norway::Value) -> anyhow::Result<Value> {
    use serde_norway::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n)?,
        Y::String(s) => Value::String(s),
        Y::Sequence(seq) => Value::Array(
            seq.into_iter()
                .map(yaml_to_json)
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    other => serde_norway::to_string(&other)?.trim().to_owned(),
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            let key = match name {
                "Ref" | "Condition" => name.to_owned(),
                other => format!("Fn::{other}"),
            };
            let mut inner = yaml_to_json(t.value)?;
            if key == "Fn::GetAtt"
                && let Value::String(s) = &inner
                && let Some((a, b)) = s.split_once('.')
            {
                inner = Value::Array(vec![
                    Value::String(a.to_owned()),
                    Value::String(b.to_owned()),
                ]);
            }
            let mut m = Map::new();
            m.insert(key, inner);
            Value::Object(m)
        }
    })
}

/// Local values the intrinsics resolve against.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub stack_name: String,
    pub region: String,
    pub account: String,
    pub params: HashMap<String, Value>,
    pub conditions: HashMap<String, bool>,
    /// `Ref` of a resource by logical id.
    pub refs: HashMap<String, String>,
    /// `Fn::GetAtt` of a resource by (logical id, attribute).
    pub attrs: HashMap<(String, String), String>,
}

impl Context {
    /// Parameters from their defaults (a `Stage` parameter is set to `local`, or `dev` when
    /// `local` is not allowed), overridden by `overrides`, then conditions evaluated.
    pub fn new(
        template: &Template,
        stack_name: &str,
        region: &str,
        overrides: &HashMap<String, String>,
    ) -> anyhow::Result<Self> {
        let mut ctx = Self {
            stack_name: stack_name.to_owned(),
            region: region.to_owned(),
            account: "123456789012".to_owned(),
            ..Self::default()
        };
        for (name, p) in &template.parameters {
            let allowed: Vec<&str> = p
                .get("AllowedValues")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let value = if let Some(v) = overrides.get(name) {
                Value::String(v.clone())
            } else if name == "Stage" && (allowed.is_empty() || allowed.contains(&"local")) {
                Value::String("local".into())
            } else if name == "Stage" && allowed.contains(&"dev") {
                Value::String("dev".into())
            } else {
                match p.get("Default") {
                    Some(Value::Number(n)) => Value::String(n.to_string()),
                    Some(Value::Bool(b)) => Value::String(b.to_string()),
                    Some(v) => v.clone(),
                    None => Value::String(String::new()),
                }
            };
            let is_list = p
                .get("Type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.contains("List"));
            let value = match value {
                Value::String(text) if is_list => Value::Array(
                    text.split(',')
                        .map(|x| Value::String(x.trim().to_owned()))
                        .collect(),
                ),
                other => other,
            };
            ctx.params.insert(name.clone(), value);
        }
        // Conditions may refer to each other: evaluate until a fixed point.
        let mut pending: Vec<&String> = template.conditions.keys().collect();
        for _ in 0..=pending.len() {
            pending.retain(|name| {
                let r = Resolver {
                    template,
                    ctx: &ctx,
                }
                .condition(&template.conditions[name.as_str()]);
                match r {
                    Ok(b) => {
                        ctx.conditions.insert((*name).clone(), b);
                        false
                    }
                    Err(_) => true,
                }
            });
        }
        if let Some(name) = pending.first() {
            let err = Resolver {
                template,
                ctx: &ctx,
            }
            .condition(&template.conditions[name.as_str()])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
            bail!("cannot evaluate condition {name}: {err}");
        }
        Ok(ctx)
    }

    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:aws:{service}:{}:{}:{resource}",
            self.region, self.account
        )
    }
}

/// Resolves intrinsics in template values.
#[derive(Debug, Clone, Copy)]
pub struct Resolver<'a> {
    pub template: &'a Template,
    pub ctx: &'a Context,
}

impl Resolver<'_> {
    /// Resolves a value; `AWS::NoValue` at the top gives `Value::Null`.
    pub fn resolve(&self, v: &Value) -> anyhow::Result<Value> {
        Ok(self.value(v)?.unwrap_or(Value::Null))
    }

    /// Resolves a value that must be a string (numbers and booleans are stringified).
    pub fn string(&self, v: &Value) -> anyhow::Result<String> {
        match self.resolve(v)? {
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => bail!("expected a string, got {other}"),
        }
    }

    fn value(&self, v: &Value) -> anyhow::Result<Option<Value>> {
        match v {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    if let Some(r) = self.value(i)? {
                        out.push(r);
                    }
                }
                Ok(Some(Value::Array(out)))
            }
            Value::Object(m) if m.len() == 1 && is_intrinsic(v) => {
                let (k, arg) = m.iter().next().ok_or_else(|| anyhow!("empty intrinsic"))?;
                self.intrinsic(k, arg)
            }
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, v) in m {
                    if let Some(r) = self.value(v)? {
                        out.insert(k.clone(), r);
                    }
                }
                Ok(Some(Value::Object(out)))
            }
            other => Ok(Some(other.clone())),
        }
    }

    fn intrinsic(&self, name: &str, arg: &Value) -> anyhow::Result<Option<Value>> {
        let s = |v: String| Ok(Some(Value::String(v)));
        match name {
            "Ref" => {
                let id = arg.as_str().ok_or_else(|| anyhow!("Ref needs a name"))?;
                if id == "AWS::NoValue" {
                    return Ok(None);
                }
                if let Some(Value::Array(list)) = self.ctx.params.get(id) {
                    return Ok(Some(Value::Array(list.clone())));
                }
                s(self.reference(id)?)
            }
            "Fn::GetAtt" => {
                let parts: Vec<String> = match self.resolve(arg)? {
                    Value::Array(a) => a
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect(),
                    Value::String(x) => x.splitn(2, '.').map(str::to_owned).collect(),
                    other => bail!("bad GetAtt {other}"),
                };
                let [id, attr] = parts.as_slice() else {
                    bail!("bad GetAtt {parts:?}")
                };
                s(self.get_att(id, attr))
            }
            "Fn::Sub" => {
                let (text, vars) = match arg {
                    Value::String(t) => (t.clone(), Map::new()),
                    Value::Array(a) if a.len() == 2 => {
                        let t = self.string(&a[0])?;
                        let vars = match self.resolve(&a[1])? {
                            Value::Object(m) => m,
                            _ => Map::new(),
                        };
                        (t, vars)
                    }
                    other => bail!("bad Sub {other}"),
                };
                s(self.sub(&text, &vars)?)
            }
            "Fn::If" => {
                let Value::Array(a) = arg else {
                    bail!("bad If")
                };
                let [cond, yes, no] = a.as_slice() else {
                    bail!("If needs 3 arguments")
                };
                let c = cond
                    .as_str()
                    .ok_or_else(|| anyhow!("If needs a condition name"))?;
                let holds = *self
                    .ctx
                    .conditions
                    .get(c)
                    .ok_or_else(|| anyhow!("unknown condition {c}"))?;
                self.value(if holds { yes } else { no })
            }
            "Fn::Join" => {
                let Value::Array(a) = arg else {
                    bail!("bad Join")
                };
                let [sep, list] = a.as_slice() else {
                    bail!("Join needs 2 arguments")
                };
                let sep = self.string(sep)?;
                let Value::Array(items) = self.resolve(list)? else {
                    bail!("Join needs a list")
                };
                let parts: Vec<String> = items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| i.to_string())
                    })
                    .collect();
                s(parts.join(&sep))
            }
            "Fn::Select" => {
                let Value::Array(a) = arg else {
                    bail!("bad Select")
                };
                let [idx, list] = a.as_slice() else {
                    bail!("Select needs 2 arguments")
                };
                let i: usize = self.string(idx)?.parse()?;
                let Value::Array(items) = self.resolve(list)? else {
                    bail!("Select needs a list")
                };
                Ok(items.get(i).cloned())
            }
            "Fn::Split" => {
                let Value::Array(a) = arg else {
                    bail!("bad Split")
                };
                let [sep, text] = a.as_slice() else {
                    bail!("Split needs 2 arguments")
                };
                let (sep, text) = (self.string(sep)?, self.string(text)?);
                Ok(Some(Value::Array(
                    text.split(&sep)
                        .map(|p| Value::String(p.to_owned()))
                        .collect(),
                )))
            }
            "Fn::FindInMap" => {
                let Value::Array(a) = arg else {
                    bail!("bad FindInMap")
                };
                let keys: Vec<String> =
                    a.iter().map(|k| self.string(k)).collect::<Result<_, _>>()?;
                let [m, k1, k2] = keys.as_slice() else {
                    bail!("FindInMap needs 3 arguments")
                };
                let v = self
                    .template
                    .mappings
                    .get(m)
                    .and_then(|m| m.get(k1))
                    .and_then(|m| m.get(k2))
                    .ok_or_else(|| anyhow!("FindInMap {m}.{k1}.{k2} not found"))?;
                self.value(v)
            }
            "Fn::GetAZs" => Ok(Some(Value::Array(vec![Value::String(format!(
                "{}a",
                self.ctx.region
            ))]))),
            "Fn::Base64" => {
                use base64::Engine as _;
                s(base64::engine::general_purpose::STANDARD.encode(self.string(arg)?))
            }
            "Fn::Equals" | "Fn::Not" | "Fn::And" | "Fn::Or" | "Condition" => {
                let mut m = Map::new();
                m.insert(name.to_owned(), arg.clone());
                Ok(Some(Value::Bool(self.condition(&Value::Object(m))?)))
            }
            other => bail!("intrinsic {other} is not supported locally"),
        }
    }

    /// Evaluates a condition expression.
    pub fn condition(&self, v: &Value) -> anyhow::Result<bool> {
        let Value::Object(m) = v else {
            return match v {
                Value::Bool(b) => Ok(*b),
                Value::String(s) => Ok(s == "true"),
                other => bail!("bad condition {other}"),
            };
        };
        let (k, arg) = m.iter().next().ok_or_else(|| anyhow!("empty condition"))?;
        let list = || -> anyhow::Result<&Vec<Value>> {
            arg.as_array().ok_or_else(|| anyhow!("{k} needs a list"))
        };
        match k.as_str() {
            "Fn::Equals" => {
                let l = list()?;
                let [a, b] = l.as_slice() else {
                    bail!("Equals needs 2 arguments")
                };
                Ok(self.string(a)? == self.string(b)?)
            }
            "Fn::Not" => Ok(!self.condition(
                list()?
                    .first()
                    .ok_or_else(|| anyhow!("Not needs 1 argument"))?,
            )?),
            "Fn::And" => list()?
                .iter()
                .try_fold(true, |acc, c| Ok(acc && self.condition(c)?)),
            "Fn::Or" => list()?
                .iter()
                .try_fold(false, |acc, c| Ok(acc || self.condition(c)?)),
            "Condition" => {
                let name = arg
                    .as_str()
                    .ok_or_else(|| anyhow!("Condition needs a name"))?;
                self.ctx
                    .conditions
                    .get(name)
                    .copied()
                    .ok_or_else(|| anyhow!("condition {name} not evaluated yet"))
            }
            _ => Ok(self.resolve(v)? == Value::Bool(true)),
        }
    }

    fn reference(&self, id: &str) -> anyhow::Result<String> {
        match id {
            "AWS::Region" => return Ok(self.ctx.region.clone()),
            "AWS::AccountId" => return Ok(self.ctx.account.clone()),
            "AWS::StackName" => return Ok(self.ctx.stack_name.clone()),
            "AWS::StackId" => {
                return Ok(self.ctx.arn(
                    "cloudformation",
                    &format!("stack/{}/local", self.ctx.stack_name),
                ));
            }
            "AWS::Partition" => return Ok("aws".into()),
            "AWS::URLSuffix" => return Ok("amazonaws.com".into()),
            _ => {}
        }
        if let Some(p) = self.ctx.params.get(id) {
            return Ok(match p {
                Value::String(s) => s.clone(),
                Value::Array(a) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            });
        }
        if let Some(r) = self.ctx.refs.get(id) {
            return Ok(r.clone());
        }
        // Resources the local stack does not create (keys, roles, SAM-generated ones …) get a
        // stable placeholder, so properties that mention them still resolve.
        Ok(format!("{}-{id}", self.ctx.stack_name))
    }

    fn get_att(&self, id: &str, attr: &str) -> String {
        if let Some(v) = self.ctx.attrs.get(&(id.to_owned(), attr.to_owned())) {
            return v.clone();
        }
        self.ctx.arn("local", &format!("{id}/{attr}"))
    }

    fn sub(&self, text: &str, vars: &Map<String, Value>) -> anyhow::Result<String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| anyhow!("unterminated ${{ in Sub {text}"))?;
            let var = &after[..end];
            if let Some(lit) = var.strip_prefix('!') {
                out.push_str("${");
                out.push_str(lit);
                out.push('}');
            } else if let Some(v) = vars.get(var) {
                out.push_str(
                    &v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string()),
                );
            } else if let Some((id, attr)) = var.split_once('.')
                && !var.starts_with("AWS::")
            {
                out.push_str(&self.get_att(id, attr));
            } else {
                out.push_str(&self.reference(var)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const T: &str = r#"
Parameters:
  Stage: { Type: String, Default: prod, AllowedValues: [dev, prod] }
  Retention: { Type: Number, Default: 7 }
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  NotProd: !Not [!Condition IsProd]
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-orders-${Stage}"
      Pitr: !If [IsProd, true, !Ref AWS::NoValue]
      Arn: !GetAtt Table.Arn
      Joined: !Join ["-", [a, !Ref Retention]]
"#;

    #[test]
    fn short_form_intrinsics_resolve_against_local_values() {
        let t = Template::parse(T).unwrap();
        let mut ctx = Context::new(&t, "stk", "eu-west-1", &HashMap::new()).unwrap();
        assert_eq!(ctx.params["Stage"], Value::String("dev".into()));
        assert!(!ctx.conditions["IsProd"]);
        assert!(ctx.conditions["NotProd"]);
        ctx.attrs
            .insert(("Table".into(), "Arn".into()), "arn:x".into());
        let r = Resolver {
            template: &t,
            ctx: &ctx,
        };
        let props = r.resolve(&t.resources["Table"].properties).unwrap();
        assert_eq!(props["TableName"], "stk-orders-dev");
        assert!(props.get("Pitr").is_none());
        assert_eq!(props["Arn"], "arn:x");
        assert_eq!(props["Joined"], "a-7");
    }
}
