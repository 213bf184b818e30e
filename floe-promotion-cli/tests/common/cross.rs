//! Promotions between two registries, each reached through its own [`FaultProxy`]: `dev` lives
//! on the shared test registry, `staging` on a registry of the test's own (which the test may
//! kill and restart), so a promotion into staging streams every blob from one registry into
//! the other, and the test can break either side of the stream.

use std::process::Child;

use floe_promotion::Digest;
use floe_promotion_oci::testing::{FaultProxy, TestRegistry};

use super::{Run, Workspace, absent_or_complete, promote_args, push};

/// The artifact every promotion moves.
pub const APP: &str = "app";

/// `dev` on the shared registry behind `source_proxy`, `staging` on `target` behind
/// `target_proxy`, and a workspace whose manifest names the proxies.
#[derive(Debug)]
pub struct CrossRegistry {
    /// Where `floe` runs.
    pub ws: Workspace,
    /// In front of the source registry (`dev`).
    pub source_proxy: FaultProxy,
    /// In front of the target registry (`staging`).
    pub target_proxy: FaultProxy,
    /// The target registry, the test's own.
    pub target: TestRegistry,
    /// `HOST/NS` of the source namespace, reached directly.
    source_ns: String,
    /// `HOST/NS` of the target namespace, reached directly.
    target_ns: String,
    /// The source namespace's path, as in request lines.
    source_path: String,
    /// The target namespace's path, as in request lines.
    target_path: String,
}

impl CrossRegistry {
    /// Fresh namespaces on both registries; `settings` is YAML added under
    /// `artifacts.promotion` (e.g. `"lease_ttl_seconds: 2\n"`).
    pub fn new(prefix: &str, settings: &str) -> Self {
        let source = TestRegistry::shared();
        let target = TestRegistry::start();
        let source_proxy = FaultProxy::start(&source.host());
        let target_proxy = FaultProxy::start(&target.host());
        let source_ns = source.namespace(prefix);
        let target_ns = target.namespace(prefix);
        let path = |ns: &floe_promotion::Repository| {
            ns.as_str()
                .split_once('/')
                .map(|(_, p)| p.to_string())
                .expect("HOST/PATH")
        };
        let mut manifest = format!(
            "artifacts:\n  promotion:\n    insecure_registries: [\"{}\", \"{}\"]\n",
            source_proxy.host(),
            target_proxy.host()
        );
        for line in settings.lines() {
            manifest.push_str(&format!("    {line}\n"));
        }
        manifest.push_str(&format!(
            "    environments:\n      - name: dev\n        repository: {}/dev\n      - name: staging\n        repository: {}/staging\n",
            source_proxy.repository(&source_ns),
            target_proxy.repository(&target_ns),
        ));
        CrossRegistry {
            ws: Workspace::new(&manifest),
            source_path: path(&source_ns),
            target_path: path(&target_ns),
            source_ns: source_ns.to_string(),
            target_ns: target_ns.to_string(),
            source_proxy,
            target_proxy,
            target,
        }
    }

    /// Pushes `app:VERSION` into dev (directly, as CI would); its digest.
    pub fn push(&self, version: &str, seed: u64) -> Digest {
        push(
            &format!("{}/dev/{APP}", self.source_ns),
            version,
            seed,
            None,
        )
    }

    /// Runs the promotion of `version` into staging.
    pub fn promote(&self, version: &str) -> Run {
        let args = promote_args(version, "dev", "staging");
        self.ws
            .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Starts the promotion of `version` into staging without waiting for it.
    pub fn spawn_promote(&self, version: &str) -> Child {
        let args = promote_args(version, "dev", "staging");
        self.ws
            .spawn(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// `HOST/NS/staging/app` on the target registry, reached directly.
    pub fn staging_repo(&self) -> String {
        format!("{}/staging/{APP}", self.target_ns)
    }

    /// Whether staging has `tag` (read directly, past the proxies).
    pub fn staging_has(&self, tag: &str) -> bool {
        super::tags(&self.staging_repo(), None)
            .iter()
            .any(|t| t == tag)
    }

    /// The request-line pattern of blob downloads (and HEADs) from dev.
    pub fn source_blobs(&self) -> String {
        format!("/v2/{}/dev/{APP}/blobs/sha256:", self.source_path)
    }

    /// The request-line pattern of blob upload requests into staging.
    pub fn target_uploads(&self) -> String {
        format!("/v2/{}/staging/{APP}/blobs/uploads/", self.target_path)
    }

    /// The request line start of a tag write (`PUT` of a manifest) into staging.
    pub fn target_tag_put(&self, tag: &str) -> String {
        format!(
            "PUT /v2/{}/staging/{APP}/manifests/{tag} ",
            self.target_path
        )
    }

    /// After a fault during the promotion of `version` (`digest`): staging holds either no
    /// environment tag and no pointer, or under each the complete artifact at `digest`, every
    /// blob readable (read directly, past the proxies). Returns whether the environment tag
    /// is there.
    #[track_caller]
    pub fn assert_staging_whole(&self, version: &str, digest: &Digest) -> bool {
        let repo = self.staging_repo();
        let env_tag = absent_or_complete(&repo, &format!("{version}-staging"));
        let pointer = absent_or_complete(&repo, "latest-staging");
        for found in [&env_tag, &pointer].into_iter().flatten() {
            assert_eq!(found, digest, "staging holds another digest");
        }
        env_tag.is_some()
    }
}
