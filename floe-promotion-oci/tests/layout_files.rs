//! What `OciLayoutRegistry` writes on disk and how it handles locations, missing and damaged
//! files, hard links and streamed copies.

mod layout_support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use chrono::Utc;
use floe_promotion::registry::{
    CopyMode, DOCKER_MANIFEST, EVIDENCE_ARTIFACT_TYPE, Evidence, EvidenceKind, EvidenceStatus,
    Manifest, ManifestBody, OCI_INDEX, OCI_MANIFEST,
};
use floe_promotion::{ArtifactRegistry, Digest, Error, Reference, RegistryExt, Repository};
use floe_promotion_oci::OciLayoutRegistry;
use layout_support::*;
use serde_json::Value;

const REF_NAME: &str = "org.opencontainers.image.ref.name";

fn index_json(dir: &Path) -> Value {
    let text = fs::read(dir.join("index.json")).expect("read index.json");
    serde_json::from_slice(&text).expect("index.json is JSON")
}

fn entries(dir: &Path) -> Vec<Value> {
    index_json(dir)["manifests"]
        .as_array()
        .expect("manifests array")
        .clone()
}

fn evidence() -> Evidence {
    Evidence {
        kind: EvidenceKind::Scan,
        status: EvidenceStatus::Passed,
        environment: None,
        created: Utc::now(),
        actor: None,
        details: serde_json::json!({"critical": 0}),
    }
}

#[tokio::test]
async fn writes_the_oci_image_layout_format() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("a/b/app");
    let repo = location(&dir);
    let registry = OciLayoutRegistry::new();
    let tagged = push_image(&registry, &repo, "tagged", &[b"l1"]).await;
    registry
        .put_manifest(&repo, Some(&tag("v1")), &tagged)
        .await
        .expect("tag");
    let referrer = registry
        .attach_evidence(&repo, tagged.digest(), &evidence())
        .await
        .expect("evidence");

    let layout: Value =
        serde_json::from_slice(&fs::read(dir.join("oci-layout")).expect("oci-layout")).unwrap();
    assert_eq!(layout, serde_json::json!({"imageLayoutVersion": "1.0.0"}));
    let index = index_json(&dir);
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);

    let all = entries(&dir);
    let v1: Vec<&Value> = all
        .iter()
        .filter(|e| e["annotations"][REF_NAME] == "v1")
        .collect();
    assert_eq!(v1.len(), 1);
    assert_eq!(v1[0]["digest"], tagged.digest().as_str());
    assert_eq!(v1[0]["mediaType"], OCI_MANIFEST);
    assert_eq!(v1[0]["size"], tagged.bytes().len());
    let evidence_entry = all
        .iter()
        .find(|e| e["digest"] == referrer.as_str())
        .expect("referrer entry");
    assert_eq!(evidence_entry["artifactType"], EVIDENCE_ARTIFACT_TYPE);
    assert!(evidence_entry.get("annotations").is_none(), "untagged");

    for blob in tagged.body().blobs() {
        let path = dir.join("blobs/sha256").join(blob.digest.hex());
        assert_eq!(
            Digest::of(&fs::read(&path).expect("blob file")),
            blob.digest
        );
    }
    let manifest_file = dir.join("blobs/sha256").join(tagged.digest().hex());
    assert_eq!(
        fs::read(&manifest_file).expect("manifest blob"),
        tagged.bytes()
    );
    // Files get the ordinary mode of new files (the umask's), not a temporary file's 0600.
    let ordinary = tmp.path().join("ordinary");
    fs::write(&ordinary, b"").unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o777;
    for file in ["oci-layout", "index.json"] {
        assert_eq!(mode(&dir.join(file)), mode(&ordinary), "{file}");
    }
    assert_eq!(mode(&manifest_file), mode(&ordinary), "blob");
    let leftovers: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".floe-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[tokio::test]
async fn moving_a_tag_replaces_its_entry() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = location(tmp.path());
    let registry = OciLayoutRegistry::new();
    let a = push_image(&registry, &repo, "a", &[b"a"]).await;
    let b = push_image(&registry, &repo, "b", &[b"b"]).await;
    for m in [&a, &b, &a, &b] {
        registry
            .put_manifest(&repo, Some(&tag("latest")), m)
            .await
            .expect("move tag");
    }
    let latest: Vec<Value> = entries(tmp.path())
        .into_iter()
        .filter(|e| e["annotations"][REF_NAME] == "latest")
        .collect();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0]["digest"], b.digest().as_str());
    // The untagged entries of both images remain, so `a` stays resolvable and collectable by no tool.
    let got = registry
        .resolve(&repo, &Reference::Digest(a.digest().clone()))
        .await
        .expect("a by digest");
    assert_eq!(got.bytes(), a.bytes());
    assert_eq!(entries(tmp.path()).len(), 3);
}

#[tokio::test]
async fn other_locations_are_invalid_input() {
    let registry = OciLayoutRegistry::new();
    let remote = Repository::new("registry.example.com/team/app").unwrap();
    let layout = Repository::new("oci-layout:/nonexistent/floe-test").unwrap();
    let d = Digest::of(b"x");
    let check = |what: &str, r: Result<(), Error>| match r {
        Err(Error::InvalidInput { value, .. }) => {
            assert_eq!(value, remote.as_str(), "{what}")
        }
        other => panic!("{what}: expected InvalidInput, got {other:?}"),
    };
    check(
        "resolve",
        registry
            .resolve(&remote, &Reference::Digest(d.clone()))
            .await
            .map(drop),
    );
    check(
        "push_blob",
        registry.push_blob(&remote, vec![1]).await.map(drop),
    );
    check(
        "fetch_blob",
        registry.fetch_blob(&remote, &d, 10).await.map(drop),
    );
    check("list_tags", registry.list_tags(&remote).await.map(drop));
    check("referrers", registry.referrers(&remote, &d).await.map(drop));
    check(
        "copy from",
        registry.copy(&remote, &layout, &d).await.map(drop),
    );
    check(
        "copy to",
        registry.copy(&layout, &remote, &d).await.map(drop),
    );
    let m = Manifest::from_bytes(br#"{"schemaVersion":2,"layers":[]}"#.to_vec(), None).unwrap();
    check(
        "put_manifest",
        registry.put_manifest(&remote, None, &m).await,
    );
    assert!(OciLayoutRegistry::handles(&layout));
    assert!(!OciLayoutRegistry::handles(&remote));
}

#[tokio::test]
async fn reading_a_missing_directory_creates_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("absent");
    let repo = location(&dir);
    let registry = OciLayoutRegistry::new();
    let d = Digest::of(b"x");
    assert!(matches!(
        registry.resolve(&repo, &Reference::Tag(tag("v1"))).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        registry.resolve(&repo, &Reference::Digest(d.clone())).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        registry.fetch_blob(&repo, &d, 10).await,
        Err(Error::NotFound { .. })
    ));
    assert!(registry.list_tags(&repo).await.expect("tags").is_empty());
    assert!(
        registry
            .referrers(&repo, &d)
            .await
            .expect("referrers")
            .is_empty()
    );
    assert!(!dir.exists());
}

#[tokio::test]
async fn a_corrupt_index_json_is_reported_and_left_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = location(tmp.path());
    let registry = OciLayoutRegistry::new();
    let m = push_image(&registry, &repo, "x", &[b"x"]).await;
    let index_path = tmp.path().join("index.json");
    fs::write(&index_path, b"{\"manifests\": [ truncated").unwrap();

    let expect_store = |what: &str, r: Result<(), Error>| match r {
        Err(e @ Error::Store { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&index_path.display().to_string()),
                "{what}: {msg}"
            );
            assert!(msg.contains("not a valid OCI image index"), "{what}: {msg}");
        }
        other => panic!("{what}: expected a Store error, got {other:?}"),
    };
    expect_store(
        "resolve",
        registry
            .resolve(&repo, &Reference::Tag(tag("v1")))
            .await
            .map(drop),
    );
    expect_store("list_tags", registry.list_tags(&repo).await.map(drop));
    expect_store(
        "referrers",
        registry.referrers(&repo, m.digest()).await.map(drop),
    );
    expect_store(
        "put_manifest",
        registry.put_manifest(&repo, Some(&tag("v1")), &m).await,
    );
    assert_eq!(
        fs::read(&index_path).unwrap(),
        b"{\"manifests\": [ truncated"
    );
}

#[tokio::test]
async fn a_tampered_blob_is_reported() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = location(tmp.path());
    let registry = OciLayoutRegistry::new();
    let m = push_image(&registry, &repo, "x", &[b"layer"]).await;
    registry
        .put_manifest(&repo, Some(&tag("v1")), &m)
        .await
        .unwrap();
    let manifest_path = tmp.path().join("blobs/sha256").join(m.digest().hex());
    fs::write(&manifest_path, br#"{"schemaVersion":2,"layers":[]}"#).unwrap();
    match registry.resolve(&repo, &Reference::Tag(tag("v1"))).await {
        Err(e @ Error::Store { .. }) => {
            assert!(
                e.to_string().contains(&manifest_path.display().to_string()),
                "{e}"
            );
        }
        other => panic!("expected a Store error, got {other:?}"),
    }
    let layer = &m.body().layers[0].digest;
    fs::write(tmp.path().join("blobs/sha256").join(layer.hex()), b"LAYER").unwrap();
    assert!(matches!(
        registry.fetch_blob(&repo, layer, 100).await,
        Err(Error::Store { .. })
    ));
}

#[tokio::test]
async fn a_non_empty_directory_that_is_not_a_layout_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    fs::write(tmp.path().join("notes.txt"), b"mine").unwrap();
    let repo = location(tmp.path());
    let registry = OciLayoutRegistry::new();
    match registry.push_blob(&repo, b"data".to_vec()).await {
        Err(e @ Error::InvalidInput { .. }) => {
            assert!(e.to_string().contains("not an OCI image layout"), "{e}")
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    assert!(!tmp.path().join("oci-layout").exists());
    assert!(!tmp.path().join("index.json").exists());
}

/// Pushes an image with two layers into `src`, copies it to `dst` and returns the manifest and
/// the report.
async fn copy_image(
    registry: &OciLayoutRegistry,
    src: &Repository,
    dst: &Repository,
) -> (Manifest, floe_promotion::registry::CopyReport) {
    let m = push_image(registry, src, "copy", &[&[1u8; 5000], &[2u8; 7000]]).await;
    let report = registry.copy(src, dst, m.digest()).await.expect("copy");
    let got = registry
        .resolve(dst, &Reference::Digest(m.digest().clone()))
        .await
        .expect("copied");
    assert_eq!(got.bytes(), m.bytes());
    (m, report)
}

fn inode(dir: &Path, digest: &Digest) -> u64 {
    fs::metadata(dir.join("blobs/sha256").join(digest.hex()))
        .expect("blob")
        .ino()
}

#[tokio::test]
async fn copies_hard_link_blobs_on_one_file_system() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let registry = OciLayoutRegistry::new();
    assert_eq!(
        registry.copy_mode(&location(&a), &location(&b)),
        CopyMode::Mount
    );
    let (m, report) = copy_image(&registry, &location(&a), &location(&b)).await;
    assert_eq!(report.blobs_mounted, 3, "{report:?}");
    assert_eq!(report.blobs_uploaded, 0);
    assert_eq!(report.bytes_uploaded, 0);
    assert_eq!(report.manifests_copied, 1);
    for blob in m.body().blobs() {
        assert_eq!(inode(&a, &blob.digest), inode(&b, &blob.digest));
    }
    // The copied artifact is kept in the destination's index, untagged.
    let dst_entries = entries(&b);
    assert_eq!(dst_entries.len(), 1);
    assert_eq!(dst_entries[0]["digest"], m.digest().as_str());
    assert!(dst_entries[0].get("annotations").is_none());
}

#[tokio::test]
async fn copies_stream_blobs_without_hard_links() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let registry = OciLayoutRegistry::new().with_hard_links(false);
    assert_eq!(
        registry.copy_mode(&location(&a), &location(&b)),
        CopyMode::Stream
    );
    let (m, report) = copy_image(&registry, &location(&a), &location(&b)).await;
    assert_eq!(report.blobs_uploaded, 3, "{report:?}");
    assert_eq!(report.blobs_mounted, 0);
    assert_eq!(report.bytes_uploaded, m.body().blob_size());
    for blob in m.body().blobs() {
        assert_ne!(inode(&a, &blob.digest), inode(&b, &blob.digest));
    }
}

#[tokio::test]
async fn copies_stream_blobs_across_file_systems() {
    // /dev/shm is a tmpfs on Linux, another file system than the temporary directory's.
    let shm = Path::new("/dev/shm");
    let tmp = tempfile::tempdir().expect("tempdir");
    let Ok(shm_dir) = tempfile::tempdir_in(shm) else {
        eprintln!("skipped: no /dev/shm to copy across file systems");
        return;
    };
    if fs::metadata(shm).unwrap().dev() == fs::metadata(tmp.path()).unwrap().dev() {
        eprintln!("skipped: /dev/shm is on the temporary directory's file system");
        return;
    }
    let registry = OciLayoutRegistry::new();
    let (m, report) = copy_image(&registry, &location(shm_dir.path()), &location(tmp.path())).await;
    assert_eq!(report.blobs_uploaded, 3, "{report:?}");
    assert_eq!(report.blobs_mounted, 0);
    assert_eq!(report.bytes_uploaded, m.body().blob_size());
}

#[tokio::test]
async fn a_streamed_copy_refuses_a_tampered_source_blob() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let registry = OciLayoutRegistry::new().with_hard_links(false);
    let m = push_image(&registry, &location(&a), "t", &[b"good layer"]).await;
    let layer = m.body().layers[0].digest.clone();
    let layer_path = a.join("blobs/sha256").join(layer.hex());
    fs::write(&layer_path, b"evil layer").unwrap();
    match registry
        .copy(&location(&a), &location(&b), m.digest())
        .await
    {
        Err(e @ Error::Store { .. }) => {
            assert!(
                e.to_string().contains(&layer_path.display().to_string()),
                "{e}"
            )
        }
        other => panic!("expected a Store error, got {other:?}"),
    }
    assert!(!b.join("blobs/sha256").join(layer.hex()).exists());
    assert!(entries(&b).is_empty(), "no index entry after a failed copy");
    assert!(matches!(
        registry
            .resolve(&location(&b), &Reference::Digest(m.digest().clone()))
            .await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn one_directory_under_two_names_is_one_repository() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("app");
    let registry = OciLayoutRegistry::new();
    let repo = location(&dir);
    let dotted = Repository::new(format!("{}/./", repo.as_str())).unwrap();
    assert_eq!(registry.copy_mode(&repo, &dotted), CopyMode::TagOnly);
    let m = push_image(&registry, &repo, "same", &[b"l"]).await;
    registry
        .put_manifest(&repo, Some(&tag("v1")), &m)
        .await
        .unwrap();
    let before = fs::read(dir.join("index.json")).unwrap();
    // Through a symlink the names differ lexically, but the copy sees one directory.
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&dir, &link).unwrap();
    let report = registry
        .copy(&repo, &location(&link), m.digest())
        .await
        .expect("copy onto itself");
    assert_eq!(report, Default::default());
    assert_eq!(fs::read(dir.join("index.json")).unwrap(), before);
}

#[tokio::test]
async fn docker_manifests_keep_their_bytes_and_media_type() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = location(tmp.path());
    let registry = OciLayoutRegistry::new();
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let layer = b"docker layer bytes";
    registry.push_blob(&repo, config.to_vec()).await.unwrap();
    registry.push_blob(&repo, layer.to_vec()).await.unwrap();
    let bytes = format!(
        "{{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"{DOCKER_MANIFEST}\",\n   \"config\": {{\n      \"mediaType\": \"application/vnd.docker.container.image.v1+json\",\n      \"size\": {},\n      \"digest\": \"{}\"\n   }},\n   \"layers\": [\n      {{\n         \"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\",\n         \"size\": {},\n         \"digest\": \"{}\"\n      }}\n   ]\n}}",
        config.len(),
        Digest::of(config),
        layer.len(),
        Digest::of(layer)
    );
    let manifest = Manifest::from_bytes(bytes.into_bytes(), None).unwrap();
    registry
        .put_manifest(&repo, Some(&tag("v1")), &manifest)
        .await
        .unwrap();
    let got = resolve_tag(&registry, &repo, "v1").await;
    assert_eq!(got.media_type(), DOCKER_MANIFEST);
    assert_eq!(got.bytes(), manifest.bytes());
    assert_eq!(entries(tmp.path())[0]["mediaType"], DOCKER_MANIFEST);
}

#[tokio::test]
async fn an_index_written_by_another_tool_keeps_its_fields() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = location(tmp.path());
    let registry = OciLayoutRegistry::new();
    let m = push_image(&registry, &repo, "x", &[b"x"]).await;
    let foreign = serde_json::json!({
        "schemaVersion": 2,
        "x-tool": {"written-by": "another tool"},
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "digest": m.digest().as_str(),
            "size": m.bytes().len(),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {
                REF_NAME: "docker.io/library/app:1.0",
                "org.example.note": "kept"
            }
        }]
    });
    fs::write(tmp.path().join("index.json"), foreign.to_string()).unwrap();
    // A full reference is not a tag: it is kept, not listed.
    assert!(registry.list_tags(&repo).await.unwrap().is_empty());
    registry
        .put_manifest(&repo, Some(&tag("v1")), &m)
        .await
        .unwrap();
    let index = index_json(tmp.path());
    assert_eq!(index["x-tool"]["written-by"], "another tool");
    assert_eq!(index["manifests"][0]["platform"]["os"], "linux");
    assert_eq!(
        index["manifests"][0]["annotations"]["org.example.note"],
        "kept"
    );
    let tags: Vec<String> = registry
        .list_tags(&repo)
        .await
        .unwrap()
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(tags, ["v1"]);
}

#[tokio::test]
async fn a_copy_of_an_index_with_a_missing_child_adds_no_entry() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let registry = OciLayoutRegistry::new();
    let child = push_image(&registry, &location(&a), "child", &[b"c"]).await;
    let body = ManifestBody {
        schema_version: Some(2),
        media_type: Some(OCI_INDEX.into()),
        manifests: Some(vec![child.descriptor()]),
        ..Default::default()
    };
    let index = Manifest::from_bytes(serde_json::to_vec(&body).unwrap(), None).unwrap();
    registry
        .put_manifest(&location(&a), Some(&tag("v1")), &index)
        .await
        .unwrap();
    fs::remove_file(a.join("blobs/sha256").join(child.digest().hex())).unwrap();
    assert!(matches!(
        registry
            .copy(&location(&a), &location(&b), index.digest())
            .await,
        Err(Error::NotFound { .. })
    ));
    assert!(entries(&b).is_empty());
}

#[tokio::test]
async fn referrers_report_artifact_type_and_annotations() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = location(tmp.path());
    let registry = OciLayoutRegistry::new();
    let subject = push_image(&registry, &repo, "s", &[b"s"]).await;
    let digest = registry
        .attach_evidence(&repo, subject.digest(), &evidence())
        .await
        .unwrap();
    // A fresh registry (empty cache) reads the same answer from disk.
    for registry in [registry.clone(), OciLayoutRegistry::new()] {
        let found = registry.referrers(&repo, subject.digest()).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].digest, digest);
        assert_eq!(
            found[0].artifact_type.as_deref(),
            Some(EVIDENCE_ARTIFACT_TYPE)
        );
        let expected: BTreeMap<String, String> = [
            ("dev.floe.evidence.kind".to_string(), "scan".to_string()),
            ("dev.floe.evidence.status".to_string(), "passed".to_string()),
        ]
        .into();
        for (k, v) in expected {
            assert_eq!(found[0].annotations.get(&k), Some(&v), "{k}");
        }
    }
}

#[tokio::test]
async fn relative_locations_are_relative_to_the_working_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cwd = std::env::current_dir().unwrap();
    // A relative path from the working directory up to `/` and down to the temporary directory.
    let up = "../".repeat(cwd.components().count() - 1);
    let relative = format!(
        "{up}{}",
        tmp.path().display().to_string().trim_start_matches('/')
    );
    let relative_repo = Repository::new(format!("oci-layout:{relative}/app")).unwrap();
    let absolute_repo = location(&tmp.path().join("app"));
    let registry = OciLayoutRegistry::new();
    let m = push_image(&registry, &relative_repo, "rel", &[b"rel"]).await;
    registry
        .put_manifest(&relative_repo, Some(&tag("v1")), &m)
        .await
        .unwrap();
    assert_eq!(
        resolve_tag(&registry, &absolute_repo, "v1").await.digest(),
        m.digest()
    );
    assert_eq!(
        registry
            .copy(&relative_repo, &absolute_repo, m.digest())
            .await
            .unwrap(),
        Default::default(),
        "the copy sees one directory"
    );
}
