//! Smoke run of the bench: once per function, debug binaries, against moto. It checks that
//! every function initialises and answers its realistic event; it asserts no timings.

use std::process::Command;

#[tokio::test(flavor = "current_thread")]
async fn every_function_reaches_next_and_answers_its_event() -> anyhow::Result<()> {
    let root = coldstart_bench::world::repo_root();
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--bins",
            "-p",
            "orders",
            "-p",
            "payments",
            "-p",
            "notify",
            "-p",
            "baselines",
        ])
        .current_dir(&root)
        .status()?;
    anyhow::ensure!(
        status.success(),
        "cargo build of the function binaries failed"
    );
    let target = coldstart_bench::world::target_dir(&root);
    let options = coldstart_bench::Options {
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
    };
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
