//! The requests a registry client makes, counted by a loopback [`FaultProxy`] in front of a
//! real registry that needs no credentials: an open registry's `/v2/` is asked for an
//! authentication challenge once per client, not before every call (the patched oci-client,
//! `vendor/README.md`), so a retag is the manifest reads and writes it needs and one probe.

use floe_promotion::{ArtifactName, ArtifactRegistry, Reference, Repository, Tag};
use floe_promotion_oci::testing::{FaultProxy, TestRegistry, push_generated_image};
use floe_promotion_oci::{CredentialSource, OciOptions, OciRegistry};

fn app(base: &Repository) -> Repository {
    base.join(&ArtifactName::new("app").unwrap()).unwrap()
}

fn anonymous_client(host: String) -> OciRegistry {
    OciRegistry::new(OciOptions {
        insecure_hosts: vec![host],
        credentials: CredentialSource::Anonymous,
        ..OciOptions::default()
    })
    .unwrap()
}

/// Resolving a tag, writing two tags and listing the tags of an open registry: one `/v2/`
/// probe, then exactly the calls themselves, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_registry_is_probed_once_per_client() {
    let reg = TestRegistry::start();
    let repo = app(&reg.namespace("probe"));
    let manifest = push_generated_image(
        &reg.client(),
        &repo,
        Some(&Tag::new("v1").unwrap()),
        &[1024],
        7,
    )
    .await;
    let proxy = FaultProxy::start(&reg.host());
    let via = proxy.repository(&repo);
    let client = anonymous_client(proxy.host());

    let resolved = client
        .resolve(&via, &Reference::Tag(Tag::new("v1").unwrap()))
        .await
        .unwrap();
    assert_eq!(resolved.digest(), manifest.digest());
    for tag in ["v1-staging", "latest-staging"] {
        client
            .put_manifest(&via, Some(&Tag::new(tag).unwrap()), &resolved)
            .await
            .unwrap();
    }
    let tags = client.list_tags(&via).await.unwrap();
    assert_eq!(tags.len(), 3, "{tags:?}");

    let requests = proxy.requests();
    let probes = requests
        .iter()
        .filter(|r| r.starts_with("GET /v2/ "))
        .count();
    assert_eq!(probes, 1, "one challenge probe: {requests:#?}");
    assert_eq!(
        requests.first().map(String::as_str),
        Some("GET /v2/ HTTP/1.1"),
        "the probe comes first: {requests:#?}"
    );
    // The repository's path without the host: `host/path` names it.
    let path = repo.as_str().split_once('/').unwrap().1.to_string();
    let calls: Vec<&str> = requests[1..]
        .iter()
        .map(|r| r.split(' ').take(2).collect::<Vec<_>>())
        .map(|parts| parts[0])
        .collect();
    assert_eq!(
        calls,
        ["GET", "PUT", "PUT", "GET"],
        "a resolve, two tag writes and a tag list, nothing else: {requests:#?}"
    );
    assert!(
        requests[1..]
            .iter()
            .all(|r| r.contains(&format!("/v2/{path}/"))),
        "{requests:#?}"
    );
}

/// A second client has its own memory of open registries: it probes once too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_probes_for_itself() {
    let reg = TestRegistry::start();
    let repo = app(&reg.namespace("probe2"));
    push_generated_image(
        &reg.client(),
        &repo,
        Some(&Tag::new("v1").unwrap()),
        &[512],
        8,
    )
    .await;
    let proxy = FaultProxy::start(&reg.host());
    let via = proxy.repository(&repo);
    for _ in 0..2 {
        let client = anonymous_client(proxy.host());
        for _ in 0..3 {
            client.list_tags(&via).await.unwrap();
        }
    }
    let requests = proxy.requests();
    let probes = requests
        .iter()
        .filter(|r| r.starts_with("GET /v2/ "))
        .count();
    assert_eq!(probes, 2, "{requests:#?}");
    assert_eq!(requests.len(), 8, "{requests:#?}");
}
