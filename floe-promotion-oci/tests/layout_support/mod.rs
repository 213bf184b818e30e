//! Helpers shared by the `layout_*` integration tests.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use floe_promotion::registry::{Descriptor, Manifest, ManifestBody, OCI_MANIFEST};
use floe_promotion::{ArtifactRegistry, Digest, Reference, Repository, Tag};
use floe_promotion_oci::OciLayoutRegistry;

pub(crate) fn tag(t: &str) -> Tag {
    Tag::new(t).expect("valid tag")
}

pub(crate) fn location(dir: &Path) -> Repository {
    OciLayoutRegistry::location(dir).expect("layout location")
}

pub(crate) fn descriptor(media_type: &str, data: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest: Digest::of(data),
        size: data.len() as u64,
        annotations: Default::default(),
        artifact_type: None,
        platform: None,
    }
}

/// Pushes an OCI image (an image config that tools can parse, and the given layers) and stores
/// its manifest untagged.
pub(crate) async fn push_image(
    registry: &dyn ArtifactRegistry,
    repo: &Repository,
    salt: &str,
    layers: &[&[u8]],
) -> Manifest {
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Labels":{{"salt":"{salt}"}}}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
    );
    registry
        .push_blob(repo, config.clone().into_bytes())
        .await
        .expect("push config");
    let mut descriptors = Vec::new();
    for layer in layers {
        registry
            .push_blob(repo, layer.to_vec())
            .await
            .expect("push layer");
        descriptors.push(descriptor("application/vnd.oci.image.layer.v1.tar", layer));
    }
    let body = ManifestBody {
        schema_version: Some(2),
        media_type: Some(OCI_MANIFEST.into()),
        config: Some(descriptor(
            "application/vnd.oci.image.config.v1+json",
            config.as_bytes(),
        )),
        layers: descriptors,
        ..Default::default()
    };
    let manifest =
        Manifest::from_bytes(serde_json::to_vec(&body).expect("json"), None).expect("manifest");
    registry
        .put_manifest(repo, None, &manifest)
        .await
        .expect("put manifest");
    manifest
}

pub(crate) async fn resolve_tag(
    registry: &dyn ArtifactRegistry,
    repo: &Repository,
    t: &str,
) -> Manifest {
    registry
        .resolve(repo, &Reference::Tag(tag(t)))
        .await
        .unwrap_or_else(|e| panic!("resolve {repo}:{t}: {e}"))
}

/// Runs skopeo with `args` and returns its standard output; fails the test, with skopeo's
/// message, when it cannot run or exits non-zero.
pub(crate) fn skopeo(args: &[&str]) -> Vec<u8> {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("running skopeo {args:?} (install skopeo to run these tests): {e}")
        });
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `oci:<dir>:<tag>`, skopeo's name of a tag in a layout.
pub(crate) fn oci_ref(dir: &Path, t: &str) -> String {
    format!("oci:{}:{t}", dir.display())
}

/// The digest skopeo reports for `reference`.
pub(crate) fn skopeo_digest(reference: &str) -> String {
    let out = skopeo(&["inspect", "--format", "{{.Digest}}", reference]);
    String::from_utf8(out).expect("utf-8").trim().to_string()
}
