//! End to end: `floe serve` on a loopback port over a real SQLite state file and a real
//! `docker-registry`, called over HTTP.
//!
//! - health, readiness and the OpenAPI document (every endpoint listed, valid JSON);
//! - a mutating call without a token, with an unknown token, or naming its own actor is
//!   refused (401, 401, 400); reads need no token;
//! - a promotion as the token's actor (recorded as that actor), a dry run that writes
//!   nothing, an approval that waits (202), a vote by someone no rule admits (403), by the
//!   requester (403), and the vote that executes it (the prod pointer moves, as the voter);
//! - locks (423 while locked), holds, rollback with and without dry run, paged history,
//!   audit verify and the streamed export (verified by `floe audit verify --file`);
//! - bounds: an overlong query (414), an oversized body (413);
//! - metrics count what happened; SIGTERM stops the server with exit 0.

mod common;
mod serving;

use common::{Workspace, push, three_env_manifest};
use floe_promotion_oci::testing::TestRegistry;
use reqwest::Method;
use serde_json::{Value, json};
use serving::{Served, call, client, get, post, token_entry};

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-0123456789";
const CAROL: &str = "carol-token-0123456789";

const APPROVAL: &str = "approval:
  rules:
    - { name: release, required: 1, groups: [release-managers] }
  timeout: 1h";

fn world(prefix: &str) -> (Workspace, String) {
    let registry = TestRegistry::shared();
    let ns = registry.namespace(prefix);
    let mut manifest = three_env_manifest(&registry.host(), ns.as_ref(), &[("prod", APPROVAL)]);
    manifest.push_str("    server:\n      identity:\n        static_tokens: tokens.yaml\n");
    let ws = Workspace::new(&manifest);
    ws.write(
        "tokens.yaml",
        &format!(
            "tokens:\n{}{}{}",
            token_entry(ALICE, "alice", &["release-managers"]),
            token_entry(BOB, "bob", &["ci"]),
            token_entry(CAROL, "carol", &[]),
        ),
    );
    (ws, ns.to_string())
}

fn promote_body(version: &str, from: &str, to: &str) -> Value {
    json!({"artifact": "app", "version": version, "from": from, "to": to})
}

fn events(history: &Value) -> Vec<Value> {
    history["events"].as_array().expect("events").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_promotes_approves_and_refuses_as_the_token_s_actor() {
    let (ws, ns) = world("serve-api");
    push(&format!("{ns}/dev/app"), "v1", 1, None);
    push(&format!("{ns}/dev/app"), "v2", 2, None);
    let served = Served::start(&ws);
    let http = client();
    let url = |p: &str| served.url(p);

    // Health, readiness, the document.
    assert_eq!(get(&http, &url("/healthz")).await.expect(200).text, "ok\n");
    let ready = get(&http, &url("/readyz")).await.expect(200).json();
    assert_eq!(ready["ready"], true, "{ready}");
    assert!(ready["checks"].as_array().unwrap().len() >= 2, "{ready}");
    let doc = get(&http, &url("/api/v1/openapi.json"))
        .await
        .expect(200)
        .json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    for path in [
        "/api/v1/environments",
        "/api/v1/environments/{env}",
        "/api/v1/environments/{env}/lock",
        "/api/v1/environments/{env}/holds",
        "/api/v1/history",
        "/api/v1/approvals",
        "/api/v1/approvals/{id}/approve",
        "/api/v1/approvals/{id}/reject",
        "/api/v1/approvals/{id}/execute",
        "/api/v1/promotions",
        "/api/v1/rollbacks",
        "/api/v1/locks",
        "/api/v1/holds",
        "/api/v1/audit/verify",
        "/api/v1/audit/export",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the document"
        );
    }
    assert!(doc["components"]["schemas"]["PromoteBody"].is_object());
    assert!(doc["components"]["schemas"]["ApiError"].is_object());

    // Identity: no token, an unknown token, an actor named in the body.
    let promotions = url("/api/v1/promotions");
    let refused = post(
        &http,
        &promotions,
        None,
        promote_body("v1", "dev", "staging"),
    )
    .await;
    assert_eq!(refused.headers["www-authenticate"], "Bearer");
    let doc = refused.error(401, "authorization");
    assert_eq!(doc["exit_code"], 12);
    post(
        &http,
        &promotions,
        Some("not-a-token"),
        promote_body("v1", "dev", "staging"),
    )
    .await
    .error(401, "authorization");
    let mut spoofed = promote_body("v1", "dev", "staging");
    spoofed["actor"] = json!({"id": "mallory", "groups": ["release-managers"]});
    post(&http, &promotions, Some(BOB), spoofed)
        .await
        .error(400, "usage");
    post(&http, &promotions, Some(BOB), json!({"artifact": "app"}))
        .await
        .error(400, "usage");
    assert!(events(&get(&http, &url("/api/v1/history")).await.expect(200).json()).is_empty());

    // A dry run writes nothing; the promotion is bob's.
    let mut dry = promote_body("v1", "dev", "staging");
    dry["dry_run"] = json!(true);
    let plan = post(&http, &promotions, Some(BOB), dry)
        .await
        .expect(200)
        .json();
    assert_eq!(plan["would_succeed"], true, "{plan}");
    assert!(
        plan["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["tag"] == "v1-staging")
    );
    assert!(events(&get(&http, &url("/api/v1/history")).await.json()).is_empty());
    let record = post(
        &http,
        &promotions,
        Some(BOB),
        promote_body("v1", "dev", "staging"),
    )
    .await
    .expect(200)
    .json();
    assert_eq!(record["actor"], "bob");
    assert_eq!(record["outcome"], "promoted");

    // Prod needs an approval: 202 with the request named; carol is in no rule, bob asked.
    let pending = post(
        &http,
        &promotions,
        Some(BOB),
        promote_body("v1", "staging", "prod"),
    )
    .await
    .error(202, "approval_pending");
    let list = get(&http, &url("/api/v1/approvals?status=pending"))
        .await
        .expect(200)
        .json();
    let requests = list["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 1, "{list}");
    let id = requests[0]["id"].as_str().unwrap().to_string();
    assert!(
        pending["error"].as_str().unwrap().contains(&id),
        "{pending}"
    );
    let approve = url(&format!("/api/v1/approvals/{id}/approve"));
    post(&http, &approve, Some(CAROL), json!({}))
        .await
        .error(403, "authorization");
    let by_requester = post(&http, &approve, Some(BOB), json!({})).await;
    assert_eq!(by_requester.status, 403, "{}", by_requester.text);
    post(
        &http,
        &url("/api/v1/approvals/not-a-uuid/approve"),
        Some(ALICE),
        json!({}),
    )
    .await
    .error(400, "usage");
    let outcome = post(&http, &approve, Some(ALICE), json!({"comment": "ship it"}))
        .await
        .expect(200)
        .json();
    assert_eq!(outcome["executed"]["to"], "prod", "{outcome}");
    let status = get(&http, &url("/api/v1/environments/prod"))
        .await
        .expect(200)
        .json();
    let prod = &status["environments"][0];
    assert_eq!(prod["deployments"][0]["version"], "v1", "{status}");
    let history = get(
        &http,
        &url("/api/v1/history?env=prod&kind=approval_decided"),
    )
    .await
    .expect(200)
    .json();
    let decided = events(&history);
    assert_eq!(decided.len(), 1, "{history}");
    assert_eq!(decided[0]["actor"]["id"], "alice");
    // A closed request: another vote and a rejection are refused.
    post(
        &http,
        &url(&format!("/api/v1/approvals/{id}/reject")),
        Some(ALICE),
        json!({"reason": "late"}),
    )
    .await
    .error(409, "approval_closed");
    get(&http, &url("/api/v1/environments/qa"))
        .await
        .error(404, "not_found");

    // Locks: while staging is locked a promotion into it is refused (423).
    let lock = url("/api/v1/environments/staging/lock");
    let taken = call(
        &http,
        Method::PUT,
        &lock,
        Some(ALICE),
        Some(json!({"reason": "incident 7"})),
    )
    .await
    .expect(200)
    .json();
    assert_eq!(taken["owner"], "alice");
    let locks = get(&http, &url("/api/v1/locks")).await.expect(200).json();
    assert_eq!(locks["locks"].as_array().unwrap().len(), 1, "{locks}");
    post(
        &http,
        &promotions,
        Some(BOB),
        promote_body("v2", "dev", "staging"),
    )
    .await
    .error(423, "locked");
    call(
        &http,
        Method::DELETE,
        &format!("{lock}?reason=resolved"),
        Some(ALICE),
        None,
    )
    .await
    .expect(200);
    call(
        &http,
        Method::DELETE,
        &format!("{lock}?reason=again"),
        None,
        None,
    )
    .await
    .error(401, "authorization");

    // Holds.
    let holds = url("/api/v1/environments/prod/holds");
    post(&http, &holds, Some(ALICE), json!({"reason": "freeze"}))
        .await
        .expect(201);
    let listed = get(&http, &url("/api/v1/holds?env=prod"))
        .await
        .expect(200)
        .json();
    assert_eq!(listed["holds"][0]["holder"], "alice", "{listed}");
    call(
        &http,
        Method::DELETE,
        &format!("{holds}?reason=thaw"),
        Some(ALICE),
        None,
    )
    .await
    .expect(200);
    assert!(
        get(&http, &url("/api/v1/holds")).await.json()["holds"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // v2 into staging, then back to v1: a dry run, then the rollback, bob's.
    post(
        &http,
        &promotions,
        Some(BOB),
        promote_body("v2", "dev", "staging"),
    )
    .await
    .expect(200);

    // v2 asks for prod; alice rejects it (carol may not), and it can be executed by nobody.
    post(
        &http,
        &promotions,
        Some(BOB),
        promote_body("v2", "staging", "prod"),
    )
    .await
    .error(202, "approval_pending");
    let list = get(&http, &url("/api/v1/approvals?status=pending&env=prod"))
        .await
        .expect(200)
        .json();
    let second = list["requests"][0]["id"]
        .as_str()
        .expect("request id")
        .to_string();
    assert_ne!(second, id);
    let reject = url(&format!("/api/v1/approvals/{second}/reject"));
    post(&http, &reject, Some(CAROL), json!({"reason": "no"}))
        .await
        .error(403, "authorization");
    post(&http, &reject, Some(ALICE), json!({}))
        .await
        .error(400, "usage");
    let rejected = post(
        &http,
        &reject,
        Some(ALICE),
        json!({"reason": "v2 fails the load test"}),
    )
    .await
    .expect(200)
    .json();
    assert_eq!(rejected["status"], "rejected", "{rejected}");
    assert_eq!(rejected["votes"][0]["actor"]["id"], "alice", "{rejected}");
    let execute = url(&format!("/api/v1/approvals/{second}/execute"));
    call(&http, Method::POST, &execute, None, None)
        .await
        .error(401, "authorization");
    call(&http, Method::POST, &execute, Some(ALICE), None)
        .await
        .error(409, "approval_closed");
    let prod_now = get(&http, &url("/api/v1/environments/prod")).await.json();
    assert_eq!(
        prod_now["environments"][0]["deployments"][0]["version"],
        "v1"
    );

    let rollbacks = url("/api/v1/rollbacks");
    let plan = post(
        &http,
        &rollbacks,
        Some(BOB),
        json!({"environment": "staging", "version": "v1", "reason": "bad v2", "dry_run": true}),
    )
    .await
    .expect(200)
    .json();
    assert_eq!(plan["would_succeed"], true, "{plan}");
    let rolled = post(
        &http,
        &rollbacks,
        Some(BOB),
        json!({"environment": "staging", "version": "v1", "reason": "bad v2"}),
    )
    .await
    .expect(200)
    .json();
    assert_eq!(rolled["outcome"], "rolled_back", "{rolled}");
    assert_eq!(rolled["actor"], "bob");
    post(
        &http,
        &rollbacks,
        Some(BOB),
        json!({"environment": "staging", "version": "v9", "reason": "x"}),
    )
    .await
    .error(404, "version_not_promoted");

    // Paged history: pages of 2 cover every event once, newest first.
    let all = events(
        &get(&http, &url("/api/v1/history?limit=500"))
            .await
            .expect(200)
            .json(),
    );
    let mut paged = Vec::new();
    let mut next = url("/api/v1/history?limit=2");
    loop {
        let page = get(&http, &next).await.expect(200).json();
        paged.extend(events(&page));
        match page["next_before"].as_u64() {
            Some(before) => next = url(&format!("/api/v1/history?limit=2&before={before}")),
            None => break,
        }
    }
    let seqs = |v: &[Value]| {
        v.iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(seqs(&paged), seqs(&all));
    assert!(seqs(&all).windows(2).all(|w| w[0] > w[1]));
    get(&http, &url("/api/v1/history?limit=0"))
        .await
        .error(400, "usage");
    get(&http, &url("/api/v1/history?kind=bogus"))
        .await
        .error(400, "usage");

    // Audit: intact; the streamed export verifies with the CLI.
    let verify = get(&http, &url("/api/v1/audit/verify"))
        .await
        .expect(200)
        .json();
    assert_eq!(verify["intact"], true);
    assert_eq!(verify["events"].as_u64().unwrap() as usize, all.len());
    let export = get(&http, &url("/api/v1/audit/export?format=jsonl"))
        .await
        .expect(200);
    assert_eq!(export.headers["content-type"], "application/x-ndjson");
    assert_eq!(export.text.lines().count(), all.len());
    let file = ws.write("export.jsonl", &export.text);
    ws.run(&["audit", "verify", "--file", file.to_str().unwrap()])
        .ok();
    let csv = get(&http, &url("/api/v1/audit/export?format=csv&env=prod"))
        .await
        .expect(200);
    assert!(csv.text.lines().count() > 1, "{}", csv.text);
    get(&http, &url("/api/v1/audit/export?format=xml"))
        .await
        .error(400, "usage");

    // Bounds. The server answers an oversized body without reading it and closes that
    // connection: a client of its own, so no later request reuses it.
    let long = format!("/api/v1/history?env={}", "x".repeat(5000));
    get(&http, &url(&long)).await.error(414, "usage");
    let big = json!({"reason": "y".repeat(70 * 1024)});
    post(&client(), &holds, Some(ALICE), big)
        .await
        .error(413, "usage");

    // Metrics count what the history holds.
    let metrics = get(&http, &url("/metrics")).await.expect(200).text;
    assert!(
        metrics.contains("floe_promotions_total{environment=\"prod\",outcome=\"succeeded\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "floe_approval_wait_seconds_count{environment=\"prod\",outcome=\"promoted\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("floe_http_requests_total"), "{metrics}");

    // The CLI reads the same state.
    ws.run(&["audit", "verify"]).ok();
    assert_eq!(served.terminate(), Some(0));
}
