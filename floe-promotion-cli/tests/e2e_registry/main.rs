//! End to end: the built `floe` binary, run as a user would, against a real `docker-registry`
//! started by the test, with fixtures pushed by skopeo and results read back by skopeo.

#[path = "../common/mod.rs"]
mod common;

use common::{Workspace, push, skopeo_digest, tags, three_env_manifest};
use floe_promotion::Digest;
use floe_promotion_cli::output::Output;
use floe_promotion_oci::testing::TestRegistry;

mod audit;
mod layout;
mod locks_rollback;
mod promotion;

/// One test's world: a fresh namespace on the shared registry, a workspace whose manifest puts
/// `dev`, `staging`, `prod` in `NS/<env>`, and the artifact `app`.
struct World {
    ws: Workspace,
    ns: String,
}

impl World {
    fn new(prefix: &str, extra: &[(&str, &str)]) -> World {
        let registry = TestRegistry::shared();
        let ns = registry.namespace(prefix).to_string();
        let ws = Workspace::new(&three_env_manifest(&registry.host(), &ns, extra));
        World { ws, ns }
    }

    /// `HOST/NS/<env>/app`.
    fn repo(&self, env: &str) -> String {
        format!("{}/{env}/app", self.ns)
    }

    /// CI pushes `app:<version>` into dev.
    fn push(&self, version: &str, seed: u64) -> Digest {
        push(&self.repo("dev"), version, seed, None)
    }

    fn digest(&self, env: &str, tag: &str) -> Digest {
        skopeo_digest(&format!("{}:{tag}", self.repo(env)), None)
    }

    fn tags(&self, env: &str) -> Vec<String> {
        tags(&self.repo(env), None)
    }

    /// Every environment's tag list and the whole history, to compare before and after.
    fn snapshot(&self) -> (Vec<Vec<String>>, String) {
        let tags = ["dev", "staging", "prod"].map(|e| self.tags(e)).to_vec();
        let history = self
            .ws
            .run(&["--output", "json", "history", "--limit", "100000"])
            .ok()
            .stdout
            .clone();
        (tags, history)
    }

    fn promote(&self, version: &str, from: &str, to: &str, actor: &str) -> common::Run {
        let args = common::promote_args_as(version, from, to, actor);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ws.run(&args)
    }

    /// Promotes `version` from dev through to `last`, asserting success.
    fn promote_through(&self, version: &str, last: &str) {
        for (from, to) in [("dev", "staging"), ("staging", "prod")] {
            self.promote(version, from, to, &format!("ci-{to}")).ok();
            if to == last {
                return;
            }
        }
    }

    fn rollback(&self, env: &str, to: &str, extra: &[&str]) -> common::Run {
        let mut args = vec![
            "--output", "json", "rollback", "--env", env, "--to", to, "--actor", "oncall",
        ];
        args.extend_from_slice(extra);
        self.ws.run(&args)
    }

    fn current(&self, env: &str) -> Option<(String, Digest)> {
        let Output::Status { environments } = self
            .ws
            .run(&["--output", "json", "status", "--env", env])
            .ok()
            .output()
        else {
            panic!("not a status")
        };
        assert_eq!(environments.len(), 1);
        environments[0].deployments.first().map(|d| {
            (
                d.deployment.version.to_string(),
                d.deployment.digest.clone(),
            )
        })
    }
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}
