//! Concurrency, end to end: eight `floe promote` processes of eight versions into one
//! environment, started at once on one (new) SQLite state file, against the real registry.
//!
//! Each exits 0, or with the documented busy (19) or conflict (20) code; afterwards the
//! environment's pointer, `floe status` and the last success in the history name the same
//! digest, every process that exited 0 has its promotion event (and no other process has
//! one), the audit chain verifies and SQLite's `PRAGMA integrity_check` says `ok`.

mod common;

use std::collections::BTreeMap;

use common::{Workspace, promote_args, push, skopeo_digest, three_env_manifest};
use floe_promotion::Digest;
use floe_promotion::history::EventKind;
use floe_promotion_cli::exit;
use floe_promotion_cli::output::{ErrorOutput, Output};
use floe_promotion_oci::testing::TestRegistry;

const PROMOTERS: u64 = 8;

#[test]
fn eight_promoters_of_eight_versions_into_one_environment() {
    let registry = TestRegistry::shared();
    let ns = registry.namespace("eight");
    let ws = Workspace::new(&three_env_manifest(&registry.host(), ns.as_ref(), &[]));
    let dev = format!("{ns}/dev/app");
    let versions: BTreeMap<String, Digest> = std::thread::scope(|s| {
        let pushes: Vec<_> = (1..=PROMOTERS)
            .map(|i| {
                let dev = &dev;
                s.spawn(move || (format!("v{i}"), push(dev, &format!("v{i}"), 60 + i, None)))
            })
            .collect();
        pushes.into_iter().map(|p| p.join().unwrap()).collect()
    });
    assert!(
        !ws.state().exists(),
        "the state file is created by the race"
    );

    let promoters: Vec<(String, std::process::Child)> = versions
        .keys()
        .map(|v| {
            let args = promote_args(v, "dev", "staging");
            let child = ws.spawn(&args.iter().map(String::as_str).collect::<Vec<_>>());
            (v.clone(), child)
        })
        .collect();
    let mut succeeded = Vec::new();
    let mut refused = Vec::new();
    for (version, child) in promoters {
        let out = child.wait_with_output().expect("waiting for floe");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out
            .status
            .code()
            .unwrap_or_else(|| panic!("{version}: killed by a signal ({:?})", out.status));
        match u8::try_from(code).expect("an exit code") {
            exit::OK => {
                let Ok(Output::Promote(record)) = serde_json::from_str(&stdout) else {
                    panic!("{version}: not a promotion: {stdout}")
                };
                assert_eq!(record.digest, versions[&version]);
                succeeded.push(version);
            }
            code @ (exit::BUSY | exit::CONFLICT) => {
                let doc: ErrorOutput = serde_json::from_str(&stdout)
                    .unwrap_or_else(|e| panic!("{version}: {e}: {stdout}"));
                assert_eq!(doc.exit_code, code);
                refused.push(format!("{version}: {}", doc.kind));
            }
            other => panic!(
                "{version} exited {other} ({}):\n{stdout}\n{stderr}",
                exit::name(other)
            ),
        }
    }
    assert!(!succeeded.is_empty(), "no promotion succeeded");
    eprintln!("succeeded: {succeeded:?}; refused: {refused:?}");

    // No event lost: exactly the processes that exited 0 have their success recorded.
    let history = ws.history();
    let successes: Vec<_> = history
        .iter()
        .filter(|e| e.record.kind == EventKind::PromotionSucceeded)
        .collect();
    let mut recorded: Vec<String> = successes
        .iter()
        .map(|e| {
            let version = e.record.version.as_ref().expect("a version").to_string();
            assert_eq!(e.record.digest.as_ref(), Some(&versions[&version]));
            assert_eq!(
                e.record.environment.as_ref().map(|e| e.as_str()),
                Some("staging")
            );
            version
        })
        .collect();
    recorded.sort();
    succeeded.sort();
    assert_eq!(
        recorded, succeeded,
        "successes recorded vs processes that exited 0"
    );

    // The pointer is the last success in history, in the registry and in `floe status`.
    let last = successes.last().unwrap().record.digest.clone().unwrap();
    assert_eq!(
        skopeo_digest(&format!("{ns}/staging/app:latest-staging"), None),
        last
    );
    assert_eq!(ws.current("staging"), Some(last));
    ws.assert_audit_intact();
    ws.assert_state_integrity();
}
