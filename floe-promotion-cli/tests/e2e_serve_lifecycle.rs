//! End to end: `floe serve`'s life and its other state backend.
//!
//! - SIGTERM while a promotion runs (its gate takes a second): the promotion finishes and
//!   answers 200, its events are recorded, new connections are refused, the exit code is 0;
//! - the same API over a PostgreSQL state (a throwaway server): a promotion waits for
//!   approval, the approval executes it, and `floe history` over the same database shows
//!   what the API recorded; no answer carries the database password.

mod common;
mod serving;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Workspace, copy_dir, push, three_env_manifest};
use floe_promotion_oci::testing::TestRegistry;
use floe_promotion_postgres::testing::TestPostgres;
use serde_json::json;
use serving::{Served, client, get, post, token_entry};

const CI: &str = "ci-lifecycle-token-0123";
const ALICE: &str = "alice-lifecycle-token-0123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_promotion_under_way_finish() {
    let registry = TestRegistry::shared();
    let ns = registry.namespace("serve-sigterm");
    let mut manifest = three_env_manifest(
        &registry.host(),
        ns.as_ref(),
        &[("staging", "gates:\n  slow: [\"sleep\", \"1\"]")],
    );
    manifest.push_str("    server:\n      identity:\n        static_tokens: tokens.yaml\n");
    let ws = Workspace::new(&manifest);
    ws.write(
        "tokens.yaml",
        &format!("tokens:\n{}", token_entry(CI, "ci", &[])),
    );
    push(&format!("{ns}/dev/app"), "v1", 1, None);
    let served = Served::start(&ws);
    let http = client();
    let url = served.url("/api/v1/promotions");
    let started = Instant::now();
    let under_way = tokio::spawn({
        let http = http.clone();
        async move {
            post(
                &http,
                &url,
                Some(CI),
                json!({"artifact": "app", "version": "v1", "from": "dev", "to": "staging"}),
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    served.signal_term();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Stopped accepting: a new request gets no answer.
    assert!(
        http.get(served.url("/healthz")).send().await.is_err(),
        "a new request was served after SIGTERM"
    );
    let answer = under_way
        .await
        .expect("the request task")
        .expect(200)
        .json();
    assert_eq!(answer["outcome"], "promoted", "{answer}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(served.terminate(), Some(0));
    let kinds: Vec<String> = ws
        .history()
        .iter()
        .map(|e| e.record.kind.to_string())
        .collect();
    assert_eq!(kinds, ["promotion_requested", "promotion_succeeded"]);
    ws.run(&["audit", "verify"]).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_over_a_postgres_state() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/serve");
    let ws = Workspace::new(&std::fs::read_to_string(demo.join("manifest.yaml")).unwrap());
    ws.write(
        "tokens.yaml",
        &format!(
            "tokens:\n{}{}",
            token_entry(CI, "ci", &["ci"]),
            token_entry(ALICE, "alice", &["release-managers"])
        ),
    );
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart/demo-artifact"),
        &ws.join("registry/dev/demo"),
    );
    let secret = "pg-serve-secret-never-shown";
    let url = TestPostgres::shared().fresh_database().await.replacen(
        "postgres@",
        &format!("postgres:{secret}@"),
        1,
    );
    let served = Served::start_with(&ws, &["--state", &url]);
    let http = client();
    let ready = get(&http, &served.url("/readyz")).await.expect(200);
    assert!(!ready.text.contains(secret), "{}", ready.text);
    let promotions = served.url("/api/v1/promotions");
    let body = |from: &str, to: &str| json!({"artifact": "demo", "version": "v1.0.0", "from": from, "to": to});
    post(&http, &promotions, Some(CI), body("dev", "staging"))
        .await
        .expect(200);
    let pending = post(&http, &promotions, Some(CI), body("staging", "prod"))
        .await
        .error(202, "approval_pending");
    assert!(!pending.to_string().contains(secret));
    let list = get(&http, &served.url("/api/v1/approvals?status=pending"))
        .await
        .json();
    let id = list["requests"][0]["id"]
        .as_str()
        .expect("request id")
        .to_string();
    let outcome = post(
        &http,
        &served.url(&format!("/api/v1/approvals/{id}/approve")),
        Some(ALICE),
        json!({}),
    )
    .await
    .expect(200)
    .json();
    assert_eq!(outcome["executed"]["to"], "prod", "{outcome}");
    let api: Vec<u64> = get(&http, &served.url("/api/v1/history?limit=500"))
        .await
        .json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(served.terminate(), Some(0));
    let cli = ws.run_env(
        &["--output", "json", "history", "--limit", "500"],
        &[("FLOE_STATE", url.as_str())],
    );
    let cli: serde_json::Value = serde_json::from_str(&cli.ok().stdout).unwrap();
    let cli: Vec<u64> = cli["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(api, cli);
    assert_eq!(api.len(), 6, "{api:?}");
}
