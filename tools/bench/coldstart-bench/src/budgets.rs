//! The budgets CI holds every function to (`tools/bench/coldstart-bench/budgets.yaml`): the size of
//! its zip, and its median init over the median init of the hello-world baseline of its kind,
//! measured in the same run. A ratio, not milliseconds, so a slower or busier runner does not
//! move it; a regression in our init (a new eager client, a heavier dependency) does. With TLS,
//! one more figure: the median first invocation less the warm one, in ms (ADR 0010: the first
//! request of a new sandbox pays the handshake, not a random generator's seeding).

use std::{collections::BTreeMap, path::Path};

use anyhow::Context as _;
use serde::Deserialize;

use crate::report::Report;

/// The budgets file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Budgets {
    /// What a function without its own entry may use.
    pub default: Budget,
    /// Per function name, what replaces the default.
    #[serde(default)]
    pub functions: BTreeMap<String, Budget>,
    /// Every function's median first invocation less its warm one, in ms, in a `--tls` run.
    pub tls_first_extra_ms: f64,
}

/// What one function may use.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// The zipped `bootstrap`, in MiB.
    pub zip_mib: f64,
    /// Median init over the baseline's median init.
    pub init_ratio: f64,
}

impl Budgets {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_norway::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Every way `report` breaks these budgets, one sentence each; empty when it keeps them.
    /// A function the report lacks, or a measurement it could not make, is a breach too: a
    /// budget that is not checked is not kept.
    pub fn breaches(&self, report: &Report) -> Vec<String> {
        let mut breaches = Vec::new();
        if !report.tls {
            breaches.push(format!(
                "the first request's budget ({} ms over warm) is measured with TLS: run with --tls",
                self.tls_first_extra_ms
            ));
        }
        for name in self.functions.keys() {
            if !report.functions.iter().any(|f| &f.name == name) {
                breaches.push(format!("{name}: has a budget but was not measured"));
            }
        }
        for function in report.functions.iter().filter(|f| !f.baseline) {
            let name = &function.name;
            if name.starts_with("python-") {
                continue;
            }
            let budget = self.functions.get(name).unwrap_or(&self.default);
            match function.zip_bytes {
                Some(bytes) => {
                    let mib = bytes as f64 / (1024.0 * 1024.0);
                    if mib > budget.zip_mib {
                        breaches.push(format!(
                            "{name}: zip {mib:.2} MiB is over its budget of {:.2} MiB",
                            budget.zip_mib
                        ));
                    }
                }
                None => breaches.push(format!("{name}: no zip size measured")),
            }
            match function.init_vs_baseline {
                Some(ratio) if ratio > budget.init_ratio => breaches.push(format!(
                    "{name}: init is {ratio:.2} × the baseline's, over its budget of {:.2} ×",
                    budget.init_ratio
                )),
                Some(_) => {}
                None => breaches.push(format!("{name}: no init ratio to its baseline measured")),
            }
            let extra = function.first_extra_ms.median;
            if report.tls && extra > self.tls_first_extra_ms {
                breaches.push(format!(
                    "{name}: with TLS the first invocation takes {extra:.1} ms more than a warm one, over its budget of {:.1} ms",
                    self.tls_first_extra_ms
                ));
            }
        }
        breaches
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{catalog::Kind, report::FunctionReport};

    fn budgets() -> Budgets {
        serde_norway::from_str(
            "default: {zip_mib: 5.0, init_ratio: 3.0}\nfunctions:\n  orders-http: {zip_mib: 4.6, init_ratio: 3.5}\ntls_first_extra_ms: 15\n",
        )
        .unwrap()
    }

    fn function(name: &str, zip_mib: f64, ratio: f64) -> FunctionReport {
        let sample = crate::report::Sample {
            first_ms: 22.0,
            warm_ms: 18.0,
            ..Default::default()
        };
        let mut f = FunctionReport::new(name, Kind::Http, false, vec![sample], Vec::new());
        f.zip_bytes = Some((zip_mib * 1024.0 * 1024.0) as u64);
        f.init_vs_baseline = Some(ratio);
        f
    }

    fn report(functions: Vec<FunctionReport>) -> Report {
        Report {
            date: String::new(),
            runs: 1,
            profile: "release".into(),
            arch: "x86_64".into(),
            functions,
            tls: true,
            initialization_type: "on-demand".into(),
            python_skipped: None,
        }
    }

    #[test]
    fn functions_within_their_budgets_pass() {
        let run = report(vec![
            function("orders-http", 4.5, 3.4),
            function("notify-relay", 4.9, 2.9),
        ]);
        assert_eq!(budgets().breaches(&run), Vec::<String>::new());
    }

    #[test]
    fn a_zip_or_an_init_over_budget_is_named() {
        let run = report(vec![
            function("orders-http", 4.7, 3.4),
            function("notify-relay", 4.0, 3.2),
        ]);
        assert_eq!(
            budgets().breaches(&run),
            [
                "orders-http: zip 4.70 MiB is over its budget of 4.60 MiB",
                "notify-relay: init is 3.20 × the baseline's, over its budget of 3.00 ×",
            ]
        );
    }

    #[test]
    fn a_first_request_that_pays_more_than_its_budget_over_warm_is_named() {
        let mut seeded = function("notify-relay", 4.0, 2.0);
        seeded.first_extra_ms.median = 47.5;
        assert_eq!(
            budgets().breaches(&report(vec![function("orders-http", 4.5, 3.4), seeded])),
            [
                "notify-relay: with TLS the first invocation takes 47.5 ms more than a warm one, over its budget of 15.0 ms"
            ]
        );
    }

    #[test]
    fn a_run_without_tls_cannot_keep_the_first_request_budget() {
        let run = Report {
            tls: false,
            ..report(vec![function("orders-http", 4.5, 3.4)])
        };
        assert_eq!(
            budgets().breaches(&run),
            ["the first request's budget (15 ms over warm) is measured with TLS: run with --tls"]
        );
    }

    #[test]
    fn a_budget_that_was_not_checked_is_a_breach() {
        let mut unmeasured = function("notify-http", 1.0, 1.0);
        unmeasured.zip_bytes = None;
        unmeasured.init_vs_baseline = None;
        let breaches = budgets().breaches(&report(vec![unmeasured]));
        assert_eq!(
            breaches,
            [
                "orders-http: has a budget but was not measured",
                "notify-http: no zip size measured",
                "notify-http: no init ratio to its baseline measured",
            ]
        );
    }

    #[test]
    fn the_budgets_file_names_only_functions_the_bench_runs_and_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("budgets.yaml");
        let budgets = Budgets::load(&path).unwrap();
        let specs = crate::world::template_functions(&crate::world::repo_root()).unwrap();
        let known: Vec<String> = crate::catalog::rust_functions(&specs)
            .into_iter()
            .map(|f| f.name)
            .collect();
        for name in budgets.functions.keys() {
            assert!(
                known.contains(name),
                "budgets.yaml names {name}, not a function the bench runs"
            );
        }
    }
}
