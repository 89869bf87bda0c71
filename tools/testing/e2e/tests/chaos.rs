//! A small chaos run in `make test` (`make chaos` runs 200 orders): orders of every kind go
//! through the local stack while 10 % of the functions' AWS calls fail and a function process
//! is killed every 2 s; every guarantee the checker knows must hold.
#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used,
    clippy::print_stdout
)]

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_faults_and_kills_every_order_settles_once_and_no_money_is_held_on_a_cancelled_one() {
    let root = testkit::repo_root();
    tokio::task::block_in_place(testkit::build_functions);

    let mut plan = e2e::chaos::Plan::new(24, 0.1, 11);
    plan.aws_endpoint = Some(testkit::moto().endpoint.clone());
    let report = e2e::chaos::run(&root, &plan)
        .await
        .expect("the run completes");
    println!("{report}");

    assert_eq!(report.problems(), Vec::<String>::new(), "\n{report}");
    assert!(report.faults_injected > 0, "faults were injected\n{report}");
    assert!(
        report.processes_killed > 0,
        "processes were killed\n{report}"
    );
    assert_eq!(
        report.rejected, 0,
        "the client's retries got every order in\n{report}"
    );
    assert!(report.confirmed > 0 && report.cancelled > 0, "{report}");
    assert!(
        report.timed_out >= 2,
        "the two orders whose provider never answers are cancelled by the saga timeout\n{report}"
    );
}
