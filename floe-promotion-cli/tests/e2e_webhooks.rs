//! End to end: webhooks configured in the manifest, a receiver that is down while promotions
//! run (they succeed regardless, the deliveries are recorded failed), then up again for
//! `floe notifications retry`, which gets it every missed event.

mod common;

use std::time::{Duration, Instant};

use common::{Workspace, image_layout};
use floe_promotion::notify::DeliveryStatus;
use floe_promotion_cli::exit;
use floe_promotion_cli::output::Output;
use floe_promotion_webhook::testing::{Receiver, closed_port};

const SECRET: (&str, &str) = (
    "FLOE_WEBHOOK_SECRET",
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
);

fn workspace(port: u16) -> Workspace {
    let ws = Workspace::new(&format!(
        "artifacts:\n  promotion:\n    environments:\n      - name: dev\n        repository: oci-layout:./registry/dev\n      - name: staging\n        repository: oci-layout:./registry/staging\n    webhooks:\n      - url: http://127.0.0.1:{port}/floe\n        secret_env: FLOE_WEBHOOK_SECRET\n        retry_count: 1\n        timeout_seconds: 2\n        headers:\n          X-Api-Key: {{ secret_env: FLOE_WEBHOOK_KEY }}\n"
    ));
    image_layout(&ws.join("registry/dev/app"), "v1", 1);
    ws
}

const ENV: &[(&str, &str)] = &[SECRET, ("FLOE_WEBHOOK_KEY", "k3y-value")];

fn deliveries(ws: &Workspace, failed: bool) -> Vec<floe_promotion::notify::DeliveryOutcome> {
    let mut args = vec!["--output", "json", "notifications"];
    if failed {
        args.push("--failed");
    }
    match ws.run_env(&args, ENV).ok().output() {
        Output::Notifications { deliveries } => deliveries,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_was_down_gets_every_missed_event_on_retry() {
    let port = closed_port().unwrap();
    let ws = workspace(port);

    // The receiver is down: promotions succeed, quickly, and the deliveries fail.
    for args in [
        &["promote", "app:v1", "--from", "dev", "--to", "staging"][..],
        &["lock", "staging", "--reason", "freeze"][..],
    ] {
        let started = Instant::now();
        ws.run_env(args, ENV).ok();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }
    // Every command loads the manifest, and with it the secrets.
    let mut history = match ws
        .run_env(&["--output", "json", "history", "--limit", "1000"], ENV)
        .ok()
        .output()
    {
        Output::History { events } => events,
        other => panic!("{other:?}"),
    };
    history.reverse();
    assert_eq!(history.len(), 3);
    let failed = deliveries(&ws, true);
    assert_eq!(
        failed.iter().map(|d| d.seq).collect::<Vec<_>>(),
        history.iter().map(|e| e.seq).collect::<Vec<_>>(),
        "every event's delivery failed and was recorded"
    );
    assert!(
        failed
            .iter()
            .all(|d| d.status == DeliveryStatus::Failed && d.attempts == 2)
    );
    assert_eq!(
        failed[0].webhook,
        format!("webhook:http://127.0.0.1:{port}/floe")
    );
    let text = ws
        .run_env(&["notifications", "--failed"], ENV)
        .ok()
        .stdout
        .clone();
    assert!(text.contains("failed after 2 attempts"), "{text}");

    // Up again: retry delivers every missed event, in order, signed, once.
    let rx = Receiver::start_on(port).await.unwrap();
    let ws = tokio::task::spawn_blocking(move || {
        ws.run_env(&["notifications", "retry"], ENV)
            .expect(exit::OK);
        ws
    })
    .await
    .unwrap();
    let got = rx.received();
    assert_eq!(
        got.iter()
            .map(|r| r.json()["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>(),
        history
            .iter()
            .map(|e| e.record.id.to_string())
            .collect::<Vec<_>>()
    );
    assert!(got.iter().all(|r| {
        r.header("webhook-signature")
            .is_some_and(|s| s.starts_with("v1,"))
            && r.header("x-api-key") == Some("k3y-value")
    }));
    assert!(deliveries(&ws, true).is_empty());
    assert!(
        deliveries(&ws, false)
            .iter()
            .all(|d| d.status == DeliveryStatus::Delivered)
    );

    // Nothing is left to retry; no secret was printed anywhere.
    let ws = tokio::task::spawn_blocking(move || {
        let again = ws.run_env(&["notifications", "retry"], ENV);
        again.expect(exit::OK);
        assert!(
            again.stdout.contains("no failed webhook deliveries"),
            "{}",
            again.stdout
        );
        ws
    })
    .await
    .unwrap();
    assert_eq!(rx.count(), history.len());
    let export = ws
        .run_env(&["audit", "export", "--format", "jsonl"], ENV)
        .ok()
        .stdout
        .clone();
    for secret in ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "k3y-value"] {
        assert!(!export.contains(secret));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_that_still_fails_exits_unavailable() {
    let ws = workspace(closed_port().unwrap());
    ws.run_env(&["lock", "staging", "--reason", "freeze"], ENV)
        .ok();
    let run = ws.run_env(&["notifications", "retry"], ENV);
    run.expect(exit::UNAVAILABLE);
    assert!(run.stdout.contains("still fail"), "{}", run.stdout);
}

#[test]
fn a_missing_secret_variable_is_a_usage_error_naming_it() {
    let ws = workspace(closed_port().unwrap());
    let line = ws
        .run_env(&["status"], &[("FLOE_WEBHOOK_KEY", "k")])
        .one_error_line(exit::USAGE);
    assert!(
        line.contains("manifest.yaml:10:21")
            && line.contains("artifacts.promotion.webhooks[0].secret_env")
            && line.contains("FLOE_WEBHOOK_SECRET"),
        "{line}"
    );
}
