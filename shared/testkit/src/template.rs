//! A service's template and its code agree: every function its config names is a function of
//! its template with every env var that config reads, every function of its template is named
//! by its config, and its template's HTTP routes are exactly its handlers' routes.
//!
//! Each service checks itself (`services/<name>/tests/<name>/template.rs` calls
//! [`assert_service_matches`]), so a new service is checked without being listed anywhere;
//! tools/local/local-stack/tests/template_matches_code.rs checks what spans the services (binaries,
//! scopes, CORS, retention) and that every service has that test.

use std::collections::BTreeSet;
use std::path::Path;

use kit::config::FunctionEnv;
use kit::http::Route;
use local_stack::functions::{self, FunctionSpec};
use local_stack::resources::name_resources;
use local_stack::stacks;
use local_stack::template::{Context, Template};

use crate::repo_root;

/// What a service's code declares.
#[derive(Debug, Clone, Copy)]
pub struct ServiceCode<'a> {
    /// Its folder under `services/` (its package name).
    pub name: &'a str,
    /// Its `config::FUNCTIONS`: each function's binary and the env vars its config reads.
    pub functions: &'a [FunctionEnv],
    /// Its HTTP handlers' route table.
    pub routes: &'a [Route],
}

/// The functions of a template (the platform and every service stack, read as one by
/// [`stacks::load`] or [`stacks::merge`]), as the local stack runs them.
pub fn template_functions(template: &Template) -> Vec<FunctionSpec> {
    let root = repo_root();
    let mut ctx = Context::new(template, "check", "us-east-1", &Default::default())
        .expect("a context for the template");
    name_resources(template, &mut ctx, None).expect("the template's resources are named");
    functions::functions(template, &ctx, &root, &root.join("infra"))
        .expect("the template's functions")
}

/// Whether `f` belongs to `service`: built from its folder, or the shared relay run for it.
fn belongs_to(f: &FunctionSpec, service: &str) -> bool {
    let in_folder = f
        .code_uri
        .as_deref()
        .is_some_and(|u| Path::new(u).ends_with(Path::new("services").join(service)));
    in_folder || f.env.get(kit::relay::SERVICE_VAR).map(String::as_str) == Some(service)
}

/// Every disagreement between `code` and the functions of the template.
pub fn service_problems(fns: &[FunctionSpec], code: &ServiceCode<'_>) -> Vec<String> {
    let service = code.name;
    let mut problems = Vec::new();
    let of_service: Vec<&FunctionSpec> = fns.iter().filter(|f| belongs_to(f, service)).collect();
    if of_service.is_empty() {
        problems.push(format!(
            "{service}: no function of the template is built from services/{service} or relays its outbox"
        ));
    }
    for env in code.functions {
        let Some(f) = of_service.iter().find(|f| f.binary == env.binary) else {
            problems.push(format!(
                "{service}: binary {} is not a function of the template",
                env.binary
            ));
            continue;
        };
        for var in env.vars {
            if !f.env.contains_key(*var) {
                problems.push(format!(
                    "{}: {var} is read by its config but not set in the template",
                    f.binary
                ));
            }
        }
    }
    for f in &of_service {
        if !code.functions.iter().any(|e| e.binary == f.binary) {
            problems.push(format!(
                "{}: in the template but not in {service}::config::FUNCTIONS",
                f.binary
            ));
        }
    }
    let in_template: BTreeSet<(String, String)> = of_service
        .iter()
        .flat_map(|f| f.routes.iter().map(|r| (r.method.clone(), r.path.clone())))
        .collect();
    let in_code: BTreeSet<(String, String)> = code
        .routes
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    for (m, p) in in_template.difference(&in_code) {
        problems.push(format!("{service}: template route {m} {p} has no handler"));
    }
    for (m, p) in in_code.difference(&in_template) {
        problems.push(format!(
            "{service}: handler route {m} {p} is not in the template"
        ));
    }
    problems
}

/// Panics with every disagreement between `code` and the stacks on disk (the platform and every
/// `services/*/template.yaml`).
pub fn assert_service_matches(code: ServiceCode<'_>) {
    let template = stacks::load(&repo_root()).expect("the platform and service stacks load");
    let problems = service_problems(&template_functions(&template), &code);
    assert!(
        problems.is_empty(),
        "services/{}/template.yaml and its code disagree:\n  {}",
        code.name,
        problems.join("\n  ")
    );
}
