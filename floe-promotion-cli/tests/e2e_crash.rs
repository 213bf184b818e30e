//! Crashes, end to end: a `floe promote` between two real registries SIGKILLed at each stage
//! of its write, and the next run.
//!
//! The promotion writes in this order: the blobs (streamed into the other registry), the
//! environment tag (`v1-staging`), the pointer (`latest-staging`), then the history record.
//! The test's [`FaultProxy`] in front of the destination holds the request that marks a stage
//! (a blob upload, the pointer's `PUT`, or the pointer's reply after the registry applied
//! it); the test sees the stall in the proxy's log and counters, kills the process there, and
//! then drops whatever the proxy held. The next `floe promote` of the same version completes
//! the promotion with the default 15-minute lease: it takes over the lease of the dead
//! promoter (its process ran on this machine and is gone), recording a `lease_broken` event,
//! and staging holds the whole artifact, `floe status` and the history agree with the
//! registry, and the audit chain verifies.
//!
//! [`FaultProxy`]: floe_promotion_oci::testing::FaultProxy

mod common;

use std::process::Child;
use std::time::Duration;

use common::cross::CrossRegistry;
use floe_promotion::Digest;
use floe_promotion::history::EventKind;
use floe_promotion_cli::output::Output;

/// The default settings: the lease lasts 15 minutes, so only a takeover lets the next run in.
const SETTINGS: &str = "";

/// How long a stage may take to be reached.
const PATIENCE: Duration = Duration::from_secs(20);

/// Kills `promoter` (SIGKILL) once `reached` holds for the proxy in front of staging, then
/// drops what the proxy holds and clears its faults.
fn kill_when(cr: &CrossRegistry, mut promoter: Child, stage: &str, reached: impl Fn() -> bool) {
    let got_there = cr.target_proxy.wait_until(PATIENCE, |_| reached());
    if !got_there {
        let _ = promoter.kill();
        let out = promoter.wait_with_output().expect("waiting for floe");
        panic!(
            "the promotion never reached {stage}: {:?}\n{}",
            cr.target_proxy.requests(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    promoter.kill().expect("SIGKILL");
    let status = promoter.wait().expect("waiting for floe");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "floe ended on its own at {stage}: {status:?}"
    );
    cr.target_proxy.reset_connections();
    cr.target_proxy.clear();
}

/// After the kill: the promotion was requested and has no outcome in the history, nothing
/// is current in staging, and the chain verifies.
#[track_caller]
fn assert_unfinished(cr: &CrossRegistry) {
    let last = cr.ws.history().pop().expect("events recorded");
    assert_eq!(last.record.kind, EventKind::PromotionRequested, "{last:?}");
    assert_eq!(cr.ws.current("staging"), None);
    cr.ws.assert_audit_intact();
}

/// The next run of the same promotion completes it, and everything agrees.
#[track_caller]
fn assert_next_run_completes(cr: &CrossRegistry, digest: &Digest) {
    let run = cr.promote("v1");
    run.ok();
    let Output::Promote(record) = run.output() else {
        panic!("not a promotion: {}", run.stdout)
    };
    assert_eq!(&record.digest, digest);
    assert!(cr.assert_staging_whole("v1", digest), "no environment tag");
    assert_eq!(cr.ws.current("staging").as_ref(), Some(digest));
    let history = cr.ws.history();
    let successes: Vec<_> = history
        .iter()
        .filter(|e| e.record.kind == EventKind::PromotionSucceeded)
        .collect();
    assert_eq!(successes.len(), 1, "{history:?}");
    let taken_over = history
        .iter()
        .find(|e| e.record.kind == EventKind::LeaseBroken)
        .expect("the dead promoter's lease was taken over");
    assert_eq!(taken_over.record.details["holder_liveness"], "gone");
    assert!(taken_over.seq < successes[0].seq, "{history:?}");
    assert_eq!(successes[0].record.digest.as_ref(), Some(digest));
    cr.ws.assert_audit_intact();
}

#[test]
fn killed_during_the_blob_copy() {
    let cr = CrossRegistry::new("crash-copy", SETTINGS);
    let digest = cr.push("v1", 71);
    cr.target_proxy
        .stall_upstream_after(&cr.target_uploads(), 16 * 1024);
    let promoter = cr.spawn_promote("v1");
    kill_when(&cr, promoter, "the blob copy", || {
        cr.target_proxy.stalled() > 0
    });
    assert!(!cr.assert_staging_whole("v1", &digest), "a tag was written");
    assert_unfinished(&cr);
    assert_next_run_completes(&cr, &digest);
}

#[test]
fn killed_between_the_two_tag_writes() {
    let cr = CrossRegistry::new("crash-tags", SETTINGS);
    let digest = cr.push("v1", 72);
    // The pointer's PUT reaches the registry without its body, and stays so.
    let pointer = cr.target_tag_put("latest-staging");
    cr.target_proxy.stall_upstream_after(&pointer, 0);
    let promoter = cr.spawn_promote("v1");
    kill_when(&cr, promoter, "the pointer write", || {
        cr.target_proxy.stalled() > 0 && cr.target_proxy.requests_matching(&pointer) > 0
    });
    assert_eq!(
        cr.target_proxy
            .requests_matching(&cr.target_tag_put("v1-staging")),
        1,
        "the environment tag is written first"
    );
    // The environment tag is there with the whole artifact; the pointer is not.
    assert!(cr.assert_staging_whole("v1", &digest));
    assert!(!cr.staging_has("latest-staging"), "the pointer was written");
    assert_unfinished(&cr);
    assert_next_run_completes(&cr, &digest);
}

#[test]
fn killed_between_the_last_tag_write_and_the_record() {
    let cr = CrossRegistry::new("crash-record", SETTINGS);
    let digest = cr.push("v1", 73);
    // The registry applies the pointer's PUT; its reply never reaches floe.
    let pointer = cr.target_tag_put("latest-staging");
    cr.target_proxy.hold_response(&pointer);
    let promoter = cr.spawn_promote("v1");
    kill_when(&cr, promoter, "the pointer's reply", || {
        cr.target_proxy.held_responses() > 0
    });
    // Both tags name the whole artifact; the history does not know yet.
    assert!(cr.assert_staging_whole("v1", &digest));
    assert_eq!(
        common::skopeo_digest(&format!("{}:latest-staging", cr.staging_repo()), None),
        digest
    );
    assert_unfinished(&cr);
    assert_next_run_completes(&cr, &digest);
}
