//! Smoke run of the bench: once per function, debug binaries, against moto. It checks that
//! every function initialises and answers its realistic event, and that with TLS the first
//! request opens the connection unless init primed it; it asserts no timings.

use std::process::Command;

/// Builds the function binaries (debug) the bench runs.
fn build_functions(root: &std::path::Path) -> anyhow::Result<()> {
    let status = Command::new(env!("CARGO"))
        // The function binaries (the services', the shared outbox relay) and the baselines.
        .args(["build", "--workspace", "--bins"])
        .current_dir(root)
        .status()?;
    anyhow::ensure!(
        status.success(),
        "cargo build of the function binaries failed"
    );
    Ok(())
}

fn options(root: &std::path::Path) -> coldstart_bench::Options {
    let target = coldstart_bench::world::target_dir(root);
    coldstart_bench::Options {
        runs: 1,
        bin_dir: target.join("debug"),
        profile: "debug".into(),
        // Python needs a download on first use; the bench proper covers it.
        python: false,
        only: Vec::new(),
        extra_env: Vec::new(),
        tls: false,
        initialization_type: "on-demand".into(),
        log_dir: target
            .join("bench-smoke")
            .join(uuid::Uuid::new_v4().to_string()),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn with_tls_the_first_request_opens_the_connection_unless_init_primed_it()
-> anyhow::Result<()> {
    let root = coldstart_bench::world::repo_root();
    build_functions(&root)?;
    for (initialization_type, expected) in [
        ("on-demand", [0, 1, 0]),
        ("provisioned-concurrency", [1, 0, 0]),
    ] {
        let options = coldstart_bench::Options {
            tls: true,
            initialization_type: initialization_type.into(),
            only: vec!["orders-http".into()],
            ..options(&root)
        };
        let report = coldstart_bench::run(&options).await?;
        let errors = report.errors();
        assert!(
            errors.is_empty(),
            "{initialization_type}: failed runs (is AWS_CA_BUNDLE trusted?):\n{}",
            errors.join("\n")
        );
        let sample = &report.functions[0].samples[0];
        assert_eq!(
            sample.connections.as_deref(),
            Some(&expected[..]),
            "{initialization_type}: TLS connections opened during init / first / warm"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn every_function_reaches_next_and_answers_its_event() -> anyhow::Result<()> {
    let root = coldstart_bench::world::repo_root();
    build_functions(&root)?;
    let options = options(&root);
    let report = coldstart_bench::run(&options).await?;
    let errors = report.errors();
    assert!(errors.is_empty(), "failed runs:\n{}", errors.join("\n"));
    // Every function of the template's services is in the catalog, and nothing else but
    // the two baselines.
    let world = coldstart_bench::world::World::start(&root, false).await?;
    let mut expected = world.service_functions();
    expected.extend(["hello-runtime".to_owned(), "hello-http".to_owned()]);
    expected.sort();
    let mut measured: Vec<String> = report.functions.iter().map(|f| f.name.clone()).collect();
    measured.sort();
    assert_eq!(
        measured, expected,
        "the bench measures every function of the template"
    );
    for f in &report.functions {
        assert_eq!(f.samples.len(), 1, "{} ran once", f.name);
    }
    Ok(())
}

/// ADR 0010: the functions seed AWS-LC's random generator from the OS, not from CPU jitter,
/// which cost 40–60 ms of CPU on the first TLS handshake of every new sandbox. Read in the
/// debug binaries' symbol tables (release binaries are stripped): with
/// `AWS_LC_SYS_NO_JITTER_ENTROPY=1` (`.cargo/config.toml`) the jitterentropy library is not
/// compiled in, while AWS-LC itself still is.
#[test]
fn the_functions_seed_aws_lc_from_the_os_not_from_cpu_jitter() -> anyhow::Result<()> {
    let root = coldstart_bench::world::repo_root();
    build_functions(&root)?;
    let bin_dir = coldstart_bench::world::target_dir(&root).join("debug");
    let specs = coldstart_bench::world::template_functions(&root)?;
    let functions = coldstart_bench::catalog::rust_functions(&specs);
    let mut checked = 0;
    for function in functions.iter().filter(|f| !f.baseline) {
        let coldstart_bench::catalog::Program::Binary(binary) = &function.program else {
            continue;
        };
        let bytes = std::fs::read(bin_dir.join(binary))?;
        // std's search (optimised even in a debug test) over the binary, read as text.
        let text = String::from_utf8_lossy(&bytes);
        let has = |symbol: &str| text.contains(symbol);
        assert!(
            has("CRYPTO_sysrand"),
            "{binary}: AWS-LC's symbols are not in the binary, so this test cannot see them"
        );
        assert!(
            !has("jent_entropy_init"),
            "{binary}: built with AWS-LC's CPU-jitter entropy; set AWS_LC_SYS_NO_JITTER_ENTROPY=1 (ADR 0010)"
        );
        checked += 1;
    }
    assert!(checked > 0, "no function binary was checked");
    Ok(())
}
