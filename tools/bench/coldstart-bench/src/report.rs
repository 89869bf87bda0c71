//! The measurements of a bench run, their summaries (min / median / p90) and the Markdown
//! table.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::catalog::Kind;

/// One run of one function: a fresh process, its init, a first and a warm invocation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sample {
    pub init_ms: f64,
    pub first_ms: f64,
    pub warm_ms: f64,
    pub peak_rss_kib: u64,
    /// With `--tls`: the TLS connections the process opened during init, the first and the
    /// warm invocation (the proxy's count; nothing else uses it while a sample runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<Vec<u64>>,
}

/// min / median / p90 (nearest rank) of one figure.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    pub min: f64,
    pub median: f64,
    pub p90: f64,
}

impl Summary {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = values.into_iter().collect();
        if v.is_empty() {
            return Summary::default();
        }
        v.sort_by(f64::total_cmp);
        let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Summary {
            min: v[0],
            median: if v.len() % 2 == 1 {
                v[v.len() / 2]
            } else {
                (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
            },
            p90: rank(0.9),
        }
    }
}

/// Everything measured of one function.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionReport {
    pub name: String,
    pub kind: Kind,
    pub baseline: bool,
    pub samples: Vec<Sample>,
    /// Errors of runs that did not complete (not counted in the samples).
    pub errors: Vec<String>,
    pub init_ms: Summary,
    pub first_ms: Summary,
    pub warm_ms: Summary,
    /// First invocation less the warm one, run by run: what a new sandbox's first request pays
    /// over a warm one (with `--tls`, the handshake and the random generator's seeding).
    pub first_extra_ms: Summary,
    pub peak_rss_mib: Summary,
    /// Size of `bootstrap` zipped (deflate), as uploaded to Lambda.
    pub zip_bytes: Option<u64>,
    /// Median init over the median init of the baseline of the same kind.
    pub init_vs_baseline: Option<f64>,
}

impl FunctionReport {
    /// The TLS connections opened during init / first / warm, as the median of each count.
    pub fn median_connections(&self) -> String {
        let median = |i: usize| {
            Summary::of(
                self.samples
                    .iter()
                    .filter_map(|s| Some(s.connections.as_ref()?.get(i).copied()? as f64)),
            )
            .median
        };
        format!("{} / {} / {}", median(0), median(1), median(2))
    }

    pub fn new(
        name: &str,
        kind: Kind,
        baseline: bool,
        samples: Vec<Sample>,
        errors: Vec<String>,
    ) -> Self {
        let summary = |f: fn(&Sample) -> f64| Summary::of(samples.iter().map(f));
        FunctionReport {
            name: name.to_owned(),
            kind,
            baseline,
            init_ms: summary(|s| s.init_ms),
            first_ms: summary(|s| s.first_ms),
            warm_ms: summary(|s| s.warm_ms),
            first_extra_ms: summary(|s| s.first_ms - s.warm_ms),
            peak_rss_mib: summary(|s| s.peak_rss_kib as f64 / 1024.0),
            samples,
            errors,
            zip_bytes: None,
            init_vs_baseline: None,
        }
    }
}

/// A whole bench run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub date: String,
    pub runs: usize,
    pub profile: String,
    pub arch: String,
    pub functions: Vec<FunctionReport>,
    /// Why Python was not measured, when it was not.
    pub python_skipped: Option<String>,
    /// Whether the functions reached moto through the TLS endpoint.
    pub tls: bool,
    /// The functions' `AWS_LAMBDA_INITIALIZATION_TYPE`.
    pub initialization_type: String,
}

impl Report {
    /// Fills in each function's init ratio to its kind's baseline.
    pub fn relate_to_baselines(&mut self) {
        let baseline = |kind: Kind| {
            self.functions
                .iter()
                .find(|f| f.baseline && f.kind == kind && !f.samples.is_empty())
                .map(|f| f.init_ms.median)
        };
        let (runtime, http) = (baseline(Kind::Runtime), baseline(Kind::Http));
        for f in &mut self.functions {
            let base = match f.kind {
                Kind::Runtime => runtime,
                Kind::Http => http,
            };
            f.init_vs_baseline = base
                .filter(|b| *b > 0.0 && !f.samples.is_empty())
                .map(|b| f.init_ms.median / b);
        }
    }

    /// Every error of every function, prefixed with its name.
    pub fn errors(&self) -> Vec<String> {
        self.functions
            .iter()
            .flat_map(|f| f.errors.iter().map(move |e| format!("{}: {e}", f.name)))
            .collect()
    }

    /// The Markdown table (figures are min / median / p90).
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} runs per function, {} build, {}, {}. Times in ms and RSS in MiB as min / median / p90.",
            self.runs, self.profile, self.arch, self.date
        );
        let _ = writeln!(
            out,
            "Mode: {}, AWS_LAMBDA_INITIALIZATION_TYPE={}.\n",
            if self.tls {
                "TLS (functions → tools/bench/tls_proxy.py → moto; first − warm is the median of each run's difference, and the last column counts the TLS connections opened during init / first / warm, in the median run)"
            } else {
                "plain HTTP to moto"
            },
            self.initialization_type
        );
        let (tls_head, tls_rule) = if self.tls {
            (
                " first − warm (ms) | TLS connects (init / first / warm) |",
                "---|---|",
            )
        } else {
            ("", "")
        };
        let _ = writeln!(
            out,
            "| function | init (ms) | × baseline | first invoke (ms) | warm invoke (ms) | peak RSS (MiB) | zip (MiB) |{tls_head}"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|{tls_rule}");
        let three = |s: &Summary, digits: usize| {
            format!(
                "{:.d$} / **{:.d$}** / {:.d$}",
                s.min,
                s.median,
                s.p90,
                d = digits
            )
        };
        for f in &self.functions {
            if f.samples.is_empty() {
                let _ = writeln!(
                    out,
                    "| {} | failed: {} | | | | | |{}",
                    f.name,
                    f.errors.first().map_or("", String::as_str),
                    if self.tls { " | |" } else { "" }
                );
                continue;
            }
            let name = if f.baseline {
                format!("*{}* (baseline)", f.name)
            } else {
                f.name.clone()
            };
            let connects = if self.tls {
                format!(
                    " {:.1} | {} |",
                    f.first_extra_ms.median,
                    f.median_connections()
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {} | {} | {} |{connects}",
                three(&f.init_ms, 1),
                f.init_vs_baseline
                    .map_or("–".to_owned(), |r| format!("{r:.2}")),
                three(&f.first_ms, 2),
                three(&f.warm_ms, 2),
                three(&f.peak_rss_mib, 1),
                f.zip_bytes.map_or("–".to_owned(), |b| format!(
                    "{:.2}",
                    b as f64 / (1024.0 * 1024.0)
                )),
            );
        }
        if let Some(reason) = &self.python_skipped {
            let _ = writeln!(out, "\nPython not measured: {reason}");
        }
        let errors = self.errors();
        if !errors.is_empty() {
            let _ = writeln!(out, "\nErrors:");
            for e in errors {
                let _ = writeln!(out, "- {e}");
            }
        }
        out
    }
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_of_seven_values_takes_the_middle_and_the_nearest_rank_p90() {
        let s = Summary::of([7.0, 1.0, 6.0, 2.0, 5.0, 3.0, 4.0]);
        assert_eq!((s.min, s.median, s.p90), (1.0, 4.0, 7.0));
    }

    #[test]
    fn the_summary_of_one_value_is_that_value() {
        let s = Summary::of([2.5]);
        assert_eq!((s.min, s.median, s.p90), (2.5, 2.5, 2.5));
    }
}
