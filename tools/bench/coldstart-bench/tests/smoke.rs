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
