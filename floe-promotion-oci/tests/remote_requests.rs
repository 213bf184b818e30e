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

/// `prepare` asks the registry its authentication question ahead: the calls after it make
/// exactly their own requests, none of them a probe. A registry that does not answer fails
/// `prepare` with an error naming its host, and a later call to it fails the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_probes_ahead_so_the_calls_that_follow_do_not() {
    let reg = TestRegistry::start();
    let repo = app(&reg.namespace("prepare"));
    push_generated_image(
        &reg.client(),
        &repo,
        Some(&Tag::new("v1").unwrap()),
        &[256],
        9,
    )
    .await;
    let proxy = FaultProxy::start(&reg.host());
    let via = proxy.repository(&repo);
    let client = anonymous_client(proxy.host());

    client.prepare(&via).await.unwrap();
    assert_eq!(proxy.requests(), ["GET /v2/ HTTP/1.1"]);
    let v1 = Reference::Tag(Tag::new("v1").unwrap());
    let (a, b) = tokio::join!(client.resolve(&via, &v1), client.resolve(&via, &v1));
    assert_eq!(a.unwrap().digest(), b.unwrap().digest());
    let requests = proxy.requests();
    assert_eq!(
        requests.len(),
        3,
        "one probe, then two reads: {requests:#?}"
    );
    assert!(
        requests[1..]
            .iter()
            .all(|r| r.starts_with("GET /v2/") && r.contains("/manifests/v1 ")),
        "{requests:#?}"
    );

    // Calls made while the probe is in flight wait for it instead of probing too.
    let proxy = FaultProxy::start(&reg.host());
    let via = proxy.repository(&repo);
    let client = anonymous_client(proxy.host());
    let (prepared, a, b) = tokio::join!(
        client.prepare(&via),
        client.resolve(&via, &v1),
        client.resolve(&via, &v1)
    );
    prepared.unwrap();
    assert_eq!(a.unwrap().digest(), b.unwrap().digest());
    let requests = proxy.requests();
    let probes = requests
        .iter()
        .filter(|r| r.starts_with("GET /v2/ "))
        .count();
    assert_eq!(probes, 1, "one probe for the three calls: {requests:#?}");
    assert_eq!(requests.len(), 3, "{requests:#?}");

    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("127.0.0.1:{port}");
    let client = anonymous_client(down.clone());
    let nowhere = Repository::new(format!("{down}/nowhere/app")).unwrap();
    let e = client.prepare(&nowhere).await.unwrap_err();
    assert!(e.to_string().contains(&down), "{e}");
    let again = client
        .resolve(&nowhere, &Reference::Tag(Tag::new("v1").unwrap()))
        .await
        .unwrap_err();
    assert!(again.to_string().contains(&down), "{again}");
}

/// A mount of a manifest the caller has resolved (`copy_known`) does not read it from the
/// source again: its requests are the attachment lookups, the destination's manifest and
/// blob checks, one mount per blob and one manifest write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_manifest_is_mounted_without_reading_it_again() {
    let reg = TestRegistry::start();
    let src = app(&reg.namespace("known-src"));
    let dst = app(&reg.namespace("known-dst"));
    let manifest = push_generated_image(
        &reg.client(),
        &src,
        Some(&Tag::new("v1").unwrap()),
        &[300, 400],
        10,
    )
    .await;
    let proxy = FaultProxy::start(&reg.host());
    let (via_src, via_dst) = (proxy.repository(&src), proxy.repository(&dst));
    let client = anonymous_client(proxy.host());
    client.prepare(&via_src).await.unwrap();
    let report = client
        .copy_known(&via_src, &via_dst, &manifest)
        .await
        .unwrap();
    assert_eq!(
        report.blobs_mounted, 3,
        "two layers and the config: {report:?}"
    );
    let requests = proxy.requests();
    let src_path = src.as_str().split_once('/').unwrap().1.to_string();
    let reread = format!("GET /v2/{src_path}/manifests/{} ", manifest.digest());
    assert!(
        !requests.iter().any(|r| r.starts_with(&reread)),
        "the source manifest is not read again: {requests:#?}"
    );
    let count = |prefix: &str| requests.iter().filter(|r| r.starts_with(prefix)).count();
    assert_eq!(count("POST "), 3, "{requests:#?}");
    assert_eq!(count("PUT "), 1, "{requests:#?}");
    assert_eq!(count("HEAD "), 3, "{requests:#?}");

    // The same copy by digest reads it once.
    let again = app(&reg.namespace("known-dst2"));
    client
        .copy(&via_src, &proxy.repository(&again), manifest.digest())
        .await
        .unwrap();
    let requests = proxy.requests();
    assert_eq!(
        requests.iter().filter(|r| r.starts_with(&reread)).count(),
        1,
        "{requests:#?}"
    );
}
