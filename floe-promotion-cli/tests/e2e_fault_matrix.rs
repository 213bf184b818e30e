//! The fault matrix, end to end: the built `floe` binary promotes between two real registries
//! (blobs streamed from one into the other), each behind a loopback [`FaultProxy`] the test
//! controls, with its state in a real SQLite file.
//!
//! Faults: the connection cut mid-blob upload and mid-blob download, bursts of 503 answers
//! (a short one is ridden out by the retries, a long one fails), a source that stalls past
//! the registry timeout, and the destination registry killed mid-promotion and restarted on
//! the same port and storage. After each:
//! staging holds no environment tag, or the whole artifact with every blob readable (read by
//! skopeo, past the proxies); the history records the failure; `floe audit verify` passes;
//! and running the same promotion again succeeds.

mod common;

use std::time::{Duration, Instant};

use common::cross::CrossRegistry;
use floe_promotion::Digest;
use floe_promotion::history::EventKind;
use floe_promotion_cli::exit;
use floe_promotion_cli::output::{ErrorOutput, Output};
use floe_promotion_oci::testing::FaultProxy;

const KIB: u64 = 1024;

/// The longest a fault may take to show (a stall to be reached, a process to give up).
const PATIENCE: Duration = Duration::from_secs(20);

/// The failed promotion of `version` (which printed `error`) left things whole: no tag in
/// staging, the failure recorded as the history's last event with that error, nothing
/// current in staging, the audit chain intact.
#[track_caller]
fn assert_failed_cleanly(cr: &CrossRegistry, version: &str, digest: &Digest, error: &str) {
    assert!(
        !cr.assert_staging_whole(version, digest),
        "a tag was written"
    );
    assert_failure_recorded(cr, version, error);
}

/// The failure of `version` (which printed `error`) is the history's last event, nothing is
/// current in staging, and the audit chain is intact.
#[track_caller]
fn assert_failure_recorded(cr: &CrossRegistry, version: &str, error: &str) {
    let last = cr.ws.history().pop().expect("events recorded");
    assert_eq!(last.record.kind, EventKind::PromotionFailed, "{last:?}");
    assert_eq!(
        last.record.version.as_ref().map(|v| v.as_str()),
        Some(version)
    );
    assert_eq!(
        last.record.environment.as_ref().map(|e| e.as_str()),
        Some("staging")
    );
    assert_eq!(last.record.details["error"], error);
    assert_eq!(
        cr.ws.current("staging"),
        None,
        "a failure moved the pointer"
    );
    cr.ws.assert_audit_intact();
}

/// Runs the promotion of `version` again, with no fault: it succeeds, and staging, the
/// history and `floe status` agree on `digest`.
#[track_caller]
fn assert_rerun_completes(cr: &CrossRegistry, version: &str, digest: &Digest) {
    let tagged_before = cr.staging_has(&format!("{version}-staging"));
    let run = cr.promote(version);
    run.ok();
    let Output::Promote(record) = run.output() else {
        panic!("not a promotion: {}", run.stdout)
    };
    assert_eq!(&record.digest, digest);
    let copy = record.copy.expect("a copy between registries");
    // Streamed from the other registry, never mounted: the config and both layers are
    // uploaded now or were already there; with the artifact already there, nothing moves.
    assert_eq!(copy.blobs_mounted, 0, "{copy:?}");
    let blobs = if tagged_before { 0 } else { 3 };
    assert_eq!(copy.blobs_uploaded + copy.blobs_skipped, blobs, "{copy:?}");
    assert_complete(cr, version, digest);
}

/// Promotes `v1` (at `digest`) with a fault set on `proxy`: it fails as unavailable and
/// leaves things whole; with the fault cleared, the rerun completes. Returns the error.
#[track_caller]
fn fails_cleanly_then_completes(cr: &CrossRegistry, proxy: &FaultProxy, digest: &Digest) -> String {
    let error = cr.promote("v1").json_error(exit::UNAVAILABLE).error;
    assert_failed_cleanly(cr, "v1", digest, &error);
    proxy.clear();
    assert_rerun_completes(cr, "v1", digest);
    error
}

/// Staging holds the whole artifact under both tags, `floe status` says it runs there, the
/// history's last event is its promotion, and the audit chain verifies.
#[track_caller]
fn assert_complete(cr: &CrossRegistry, version: &str, digest: &Digest) {
    assert!(
        cr.assert_staging_whole(version, digest),
        "no environment tag"
    );
    assert_eq!(cr.ws.current("staging").as_ref(), Some(digest));
    let last = cr.ws.history().pop().expect("events recorded");
    assert_eq!(last.record.kind, EventKind::PromotionSucceeded, "{last:?}");
    assert_eq!(last.record.digest.as_ref(), Some(digest));
    cr.ws.assert_audit_intact();
}

#[test]
fn a_connection_cut_mid_blob_upload_fails_cleanly_and_the_rerun_completes() {
    let cr = CrossRegistry::new("cut-upload", "");
    let digest = cr.push("v1", 51);
    // Every upload of the 40 KB layer loses its connection after 16 KiB, retries included.
    cr.target_proxy
        .cut_upstream_after(&cr.target_uploads(), 16 * KIB);
    fails_cleanly_then_completes(&cr, &cr.target_proxy, &digest);
    assert!(cr.target_proxy.cuts() >= 1, "the fault never fired");
}

#[test]
fn a_connection_cut_mid_blob_download_fails_cleanly_and_the_rerun_completes() {
    let cr = CrossRegistry::new("cut-download", "");
    let digest = cr.push("v1", 52);
    cr.source_proxy
        .cut_downstream_after(&cr.source_blobs(), 16 * KIB);
    fails_cleanly_then_completes(&cr, &cr.source_proxy, &digest);
    assert!(cr.source_proxy.cuts() >= 1, "the fault never fired");
}

#[test]
fn a_short_burst_of_503_answers_is_ridden_out_by_the_retries() {
    let cr = CrossRegistry::new("burst-short", "");
    let digest = cr.push("v1", 53);
    // The destination answers its next three requests, whatever they are, with 503.
    cr.target_proxy.answer_with_status(" /v2/", 503, 3);
    let run = cr.promote("v1");
    run.ok();
    let Output::Promote(record) = run.output() else {
        panic!("not a promotion: {}", run.stdout)
    };
    let copy = record.copy.expect("a copy between registries");
    assert_eq!(copy.blobs_uploaded, 3, "{copy:?}");
    assert_eq!(cr.target_proxy.injected_answers(), 3);
    assert_complete(&cr, "v1", &digest);
    assert!(
        !cr.ws
            .history()
            .iter()
            .any(|e| e.record.kind == EventKind::PromotionFailed),
        "a failure was recorded"
    );
}

#[test]
fn a_long_burst_of_503_answers_fails_cleanly_and_the_rerun_completes() {
    let cr = CrossRegistry::new("burst-long", "");
    let digest = cr.push("v1", 54);
    cr.target_proxy.answer_with_status(" /v2/", 503, 10_000);
    let error = fails_cleanly_then_completes(&cr, &cr.target_proxy, &digest);
    assert!(error.contains("503"), "{error}");
}

/// The registry refuses the pointer's write (503, every retry) after it took the environment
/// tag: the promotion fails with the whole artifact under the environment tag and the pointer
/// where it was; the rerun writes the pointer.
#[test]
fn a_503_burst_on_the_pointer_write_leaves_the_whole_artifact_and_the_rerun_completes() {
    let cr = CrossRegistry::new("burst-pointer", "");
    let digest = cr.push("v1", 57);
    cr.target_proxy
        .answer_with_status(&cr.target_tag_put("latest-staging"), 503, 10_000);
    let error = cr.promote("v1").json_error(exit::UNAVAILABLE).error;
    assert!(cr.target_proxy.injected_answers() >= 1);
    assert!(
        cr.assert_staging_whole("v1", &digest),
        "the environment tag is missing"
    );
    assert!(!cr.staging_has("latest-staging"), "the pointer was written");
    assert_failure_recorded(&cr, "v1", &error);

    cr.target_proxy.clear();
    assert_rerun_completes(&cr, "v1", &digest);
}

/// With `registry_timeout_seconds: 1`, a source that stops sending half way through a blob
/// fails each attempt after a second without progress, is retried, and then fails the
/// promotion in seconds (not after the two minutes the proxy would hold the connection).
#[test]
fn a_stall_past_the_registry_timeout_fails_cleanly_and_the_rerun_completes() {
    let cr = CrossRegistry::new("stall", "registry_timeout_seconds: 1\n");
    let digest = cr.push("v1", 56);
    cr.source_proxy
        .stall_downstream_after(&cr.source_blobs(), 16 * KIB);
    let started = Instant::now();
    let error = cr.promote("v1").json_error(exit::UNAVAILABLE).error;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let downloads = cr
        .source_proxy
        .requests()
        .iter()
        .filter(|l| l.starts_with("GET ") && l.contains(&cr.source_blobs()))
        .count();
    assert!(downloads >= 2, "no retry: {:?}", cr.source_proxy.requests());
    assert_failed_cleanly(&cr, "v1", &digest, &error);

    cr.source_proxy.clear();
    assert_rerun_completes(&cr, "v1", &digest);
}

#[test]
fn the_destination_registry_killed_mid_promotion_and_restarted() {
    let cr = CrossRegistry::new("killed", "");
    let digest = cr.push("v1", 55);
    // Hold the layer's upload half way, so the registry dies with a blob in flight.
    cr.target_proxy
        .stall_upstream_after(&cr.target_uploads(), 16 * KIB);
    let promoter = cr.spawn_promote("v1");
    assert!(
        cr.target_proxy.wait_until(PATIENCE, |p| p.stalled() > 0),
        "the upload never stalled: {:?}",
        cr.target_proxy.requests()
    );
    cr.target.kill();
    let out = promoter.wait_with_output().expect("waiting for floe");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(exit::UNAVAILABLE.into()),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: ErrorOutput = serde_json::from_str(&stdout).expect("a JSON error");
    cr.target_proxy.clear();
    cr.target.restart();
    assert_failed_cleanly(&cr, "v1", &digest, &doc.error);

    assert_rerun_completes(&cr, "v1", &digest);
}
