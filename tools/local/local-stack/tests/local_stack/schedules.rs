//! The template's `Schedule` and `ScheduleV2` events fire the function, every
//! `schedule_period` (`--schedule-period`) instead of their rate or cron.

use std::time::Duration;

use local_stack::{Options, Stack};

use crate::helpers::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabled_schedules_fire_every_schedule_period_and_a_disabled_one_never() {
    let root = testkit::repo_root();
    tokio::task::block_in_place(testkit::build_functions);
    let mut o = Options::new(&root);
    o.template = Some(root.join("tools/local/local-stack/tests/fixtures/schedule-template.yaml"));
    o.build = false;
    o.aws_endpoint = Some(testkit::moto().endpoint.clone());
    o.prefix = Some(format!(
        "t{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    o.serve_http = false;
    o.schedule_period = Some(Duration::from_millis(700));
    let stack = Stack::start(o).await.expect("the local stack starts");
    let tick = stack.function("TickFunction").unwrap();
    assert_eq!(tick.spec().schedules.len(), 3);

    let fired = eventually(
        "both enabled schedules to fire twice",
        Duration::from_secs(20),
        || async {
            let d: Vec<_> = stack
                .reporter
                .deliveries()
                .into_iter()
                .filter(|d| d.source == "schedule")
                .collect();
            let count = |e: &str| d.iter().filter(|x| x.ids == [e.to_owned()]).count();
            (count("EveryMinute") >= 2 && count("Nightly") >= 2).then_some(d)
        },
    )
    .await;
    assert!(
        fired.iter().all(|d| d.success),
        "hello-runtime answered: {fired:?}"
    );
    assert!(
        !fired.iter().any(|d| d.ids == ["Paused".to_owned()]),
        "the disabled schedule never fires"
    );
    let arn = &tick.spec().schedules[0].arn;
    assert!(
        arn.starts_with("arn:aws:events:us-east-1:123456789012:rule/")
            && arn.ends_with("-TickFunctionEveryMinute"),
        "{arn}"
    );
}
