//! End to end: bad input to the built `floe` binary gets one clear line on stderr (or one JSON
//! error document with `--output json`) and its exit code, never a panic, and writes nothing:
//! the registry's tags and the history are the same before and after.

#[path = "../common/mod.rs"]
mod common;

use common::{Workspace, push, tags, three_env_manifest};
use floe_promotion::history::EventKind;
use floe_promotion_oci::testing::TestRegistry;

mod limits;
mod manifests;
mod refusals;
mod unavailable;
mod usage;

/// A workspace over a fresh namespace of the shared registry, with `app:v1.0.0` pushed to dev
/// and promoted to staging.
struct World {
    ws: Workspace,
    ns: String,
    /// The registry's tags and the history after the setup.
    before: (Vec<Vec<String>>, String),
}

impl World {
    fn new(prefix: &str) -> World {
        let registry = TestRegistry::shared();
        let ns = registry.namespace(prefix).to_string();
        let ws = Workspace::new(&three_env_manifest(&registry.host(), &ns, &[]));
        push(&format!("{ns}/dev/app"), "v1.0.0", 1, None);
        ws.run(&[
            "promote",
            "app:v1.0.0",
            "--from",
            "dev",
            "--to",
            "staging",
            "--actor",
            "ci",
        ])
        .ok();
        let mut w = World {
            ws,
            ns,
            before: Default::default(),
        };
        w.before = w.snapshot();
        w
    }

    /// Nothing was written since the setup: the same tags in every environment and the same
    /// history, byte for byte.
    #[track_caller]
    fn assert_unchanged(&self) {
        assert_eq!(self.snapshot(), self.before, "bad input wrote something");
    }

    /// Tag lists of every environment and the history, to compare before and after.
    fn snapshot(&self) -> (Vec<Vec<String>>, String) {
        let tags = ["dev", "staging", "prod"]
            .map(|e| tags(&format!("{}/{e}/app", self.ns), None))
            .to_vec();
        let history = self
            .ws
            .run(&["--output", "json", "history", "--limit", "100000"])
            .ok()
            .stdout
            .clone();
        (tags, history)
    }

    /// Runs `args` in text mode and in JSON mode: one line / one document with the same
    /// message, exit `code`. Returns the text line. (Tests end with
    /// [`assert_unchanged`](Self::assert_unchanged).)
    #[track_caller]
    fn refused(&self, args: &[&str], code: u8) -> String {
        let line = self.ws.run(args).one_error_line(code);
        let mut json_args = vec!["--output", "json"];
        json_args.extend_from_slice(args);
        let doc = self.ws.run(&json_args).json_error(code);
        assert_eq!(format!("floe: {}", doc.error), line);
        line
    }

    /// Like [`refused`](Self::refused) for refusals the audit trail records by design (a
    /// promotion that reached the manager): the registry is untouched, the environment's
    /// pointer did not move, and the only new events are the failed attempt's.
    #[track_caller]
    fn refused_and_recorded(&self, args: &[&str], code: u8) -> String {
        let before = self.snapshot();
        let events = self.ws.history().len();
        let status = self
            .ws
            .run(&["--output", "json", "status"])
            .ok()
            .stdout
            .clone();
        let line = self.ws.run(args).one_error_line(code);
        let after = self.snapshot();
        assert_eq!(after.0, before.0, "floe {args:?} changed a tag");
        assert_eq!(
            self.ws.run(&["--output", "json", "status"]).ok().stdout,
            status
        );
        for e in &self.ws.history()[events..] {
            assert!(
                matches!(
                    e.record.kind,
                    EventKind::PromotionRequested
                        | EventKind::PromotionFailed
                        | EventKind::RollbackFailed
                ),
                "floe {args:?} recorded {:?}",
                e.record.kind
            );
        }
        line
    }
}

fn no_state_written(ws: &Workspace) {
    assert!(
        !ws.join(".floe").exists(),
        "a state file was created for bad input"
    );
}

/// Two environments in OCI layout directories: no registry needed.
const LAYOUT_MANIFEST: &str = "artifacts:\n  promotion:\n    environments:\n      - name: dev\n        repository: oci-layout:./dev\n      - name: prod\n        repository: oci-layout:./prod\n";
