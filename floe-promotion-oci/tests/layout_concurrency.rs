//! Concurrent writers of one layout, as tasks of one process and as separate processes, never
//! lose a tag or leave a damaged `index.json`.

mod layout_support;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use floe_promotion::{ArtifactRegistry, Digest, Reference, Repository, Tag};
use floe_promotion_oci::OciLayoutRegistry;
use layout_support::*;
use serde_json::Value;

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CHILD_DIR: &str = "FLOE_LAYOUT_CHILD_DIR";
const CHILD_ID: &str = "FLOE_LAYOUT_CHILD_ID";
const TAGS_PER_WRITER: usize = 12;

/// Checks that `index.json` parses, that every entry's blob exists, and that no tag has two
/// entries; returns the tags.
fn check_layout(dir: &Path) -> BTreeSet<String> {
    let index: Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).expect("index.json"))
            .expect("index.json is valid JSON");
    let mut tags = BTreeSet::new();
    for entry in index["manifests"].as_array().expect("manifests") {
        let digest = Digest::new(entry["digest"].as_str().expect("digest")).expect("digest");
        assert!(
            dir.join("blobs/sha256").join(digest.hex()).is_file(),
            "entry without blob: {entry}"
        );
        if let Some(t) = entry["annotations"][REF_NAME].as_str() {
            assert!(tags.insert(t.to_string()), "tag {t} has two entries");
        }
    }
    tags
}

/// One writer: pushes its own image, attaches an untagged referrer, writes its tags and moves
/// the shared `latest` tag after each one.
async fn write_tags(registry: &OciLayoutRegistry, repo: &Repository, writer: &str) {
    let image = push_image(
        registry,
        repo,
        writer,
        &[writer.as_bytes(), b"shared layer"],
    )
    .await;
    for i in 0..TAGS_PER_WRITER {
        registry
            .put_manifest(repo, Some(&tag(&format!("{writer}-{i:02}"))), &image)
            .await
            .expect("put tag");
        registry
            .put_manifest(repo, Some(&tag("latest")), &image)
            .await
            .expect("move latest");
    }
}

fn expected_tags(writers: &[String]) -> BTreeSet<String> {
    let mut tags: BTreeSet<String> = writers
        .iter()
        .flat_map(|w| (0..TAGS_PER_WRITER).map(move |i| format!("{w}-{i:02}")))
        .collect();
    tags.insert("latest".into());
    tags
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_tasks_never_lose_a_tag() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("shared");
    let repo = location(&dir);
    let other = location(&tmp.path().join("other"));
    let registry = OciLayoutRegistry::new();
    let source = push_image(&registry, &other, "copied", &[b"copied layer"]).await;

    let writers: Vec<String> = (0..16).map(|i| format!("task{i:02}")).collect();
    let mut handles = Vec::new();
    for writer in writers.clone() {
        let (registry, repo) = (registry.clone(), repo.clone());
        handles.push(tokio::spawn(async move {
            write_tags(&registry, &repo, &writer).await;
        }));
    }
    // Copies into the same layout run alongside the writers.
    for _ in 0..4 {
        let (registry, repo, other) = (registry.clone(), repo.clone(), other.clone());
        let digest = source.digest().clone();
        handles.push(tokio::spawn(async move {
            registry.copy(&other, &repo, &digest).await.expect("copy");
        }));
    }
    for h in handles {
        h.await.expect("task");
    }

    let tags = check_layout(&dir);
    assert_eq!(tags, expected_tags(&writers));
    let listed: BTreeSet<String> = registry
        .list_tags(&repo)
        .await
        .expect("list")
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(listed, tags);
    registry
        .resolve(&repo, &Reference::Digest(source.digest().clone()))
        .await
        .expect("copied image");
}

/// The entry point of the child processes of `concurrent_processes_never_lose_a_tag`; does
/// nothing unless started by it.
#[tokio::test]
#[ignore = "run as a child process by concurrent_processes_never_lose_a_tag"]
async fn layout_child_writer() {
    let (Some(dir), Some(id)) = (std::env::var_os(CHILD_DIR), std::env::var(CHILD_ID).ok()) else {
        return;
    };
    let dir = PathBuf::from(dir);
    // Start together with the other writers.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.join("go").exists() {
        assert!(Instant::now() < deadline, "no start signal");
        std::thread::sleep(Duration::from_millis(1));
    }
    let repo = location(&dir.join("shared"));
    write_tags(&OciLayoutRegistry::new(), &repo, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_processes_never_lose_a_tag() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let writers: Vec<String> = (0..4).map(|i| format!("proc{i}")).collect();
    let children: Vec<_> = writers
        .iter()
        .map(|id| {
            Command::new(&exe)
                .args(["layout_child_writer", "--exact", "--ignored", "--quiet"])
                .env(CHILD_DIR, tmp.path())
                .env(CHILD_ID, id)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn child writer")
        })
        .collect();
    fs::write(tmp.path().join("go"), b"").expect("start signal");
    // This process writes too.
    let dir = tmp.path().join("shared");
    let repo = location(&dir);
    let registry = OciLayoutRegistry::new();
    write_tags(&registry, &repo, "parent").await;
    for child in children {
        let out = child.wait_with_output().expect("child");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The child ran the writer rather than filtering it out.
        assert!(stdout.contains("1 passed"), "child output: {stdout}");
    }
    let mut all = writers.clone();
    all.push("parent".into());
    assert_eq!(check_layout(&dir), expected_tags(&all));
    let latest = registry
        .resolve(&repo, &Reference::Tag(Tag::new("latest").unwrap()))
        .await
        .expect("latest");
    assert!(latest.body().annotations.is_empty());
}
