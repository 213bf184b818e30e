//! Remote registries over oci-client: [`OciRegistry`].
//!
//! Repository locations are `HOST[:PORT]/PATH` (`registry.example.com/floe/prod/app`,
//! `127.0.0.1:5000/floe/dev/app`): the first path component is the host, the rest the
//! repository. `oci-layout:` locations belong to [`OciLayoutRegistry`](crate::OciLayoutRegistry).

mod auth;
mod clients;
mod copy;
mod error;
mod location;
mod options;
mod referrers;
mod stream;
mod transfer;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use floe_promotion::registry::{
    CopyMode, CopyReport, Descriptor, MANIFEST_MEDIA_TYPES, Manifest, TransferObserver,
};
use floe_promotion::{ArtifactRegistry, Digest, Error, Reference, Repository, Result, Tag};
use futures::StreamExt;
use oci_client::secrets::RegistryAuth;

use self::clients::{Clients, build_clients};
use self::error::{Failure, classify};
use self::location::RemoteRepo;

pub use self::options::{CredentialSource, OciOptions};

/// Tags asked for per page when listing.
const TAG_PAGE: usize = 1000;
/// A bound on pages, for registries whose pagination never ends.
const MAX_TAG_PAGES: usize = 10_000;
/// Locks that serialise updates of referrers fallback indexes in this process.
const INDEX_LOCKS: usize = 64;
/// The longest wait between two retries.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The [`ArtifactRegistry`] over remote OCI registries (Docker Registry HTTP API v2 / OCI
/// distribution), built on oci-client.
///
/// - Manifests are read and written as raw bytes: a tag written by [`put_manifest`] resolves
///   to the same digest as its source, for OCI and Docker media types and image indexes.
/// - [`copy`] skips blobs the destination has, mounts blobs between repositories of the same
///   registry (streaming them when the registry declines the mount), and streams blobs between
///   registries with flat memory (one streaming `PUT` per blob, checked against its digest
///   before its last byte goes out: a corrupt source blob is an [`Error::Store`] naming the
///   source blob, not retried, and never lands in the destination). Index children are copied
///   before the index; the cosign signature tag `sha256-<hex>.sig` and the referrers
///   (evidence, attestations) are copied along.
/// - Referrers: registries without the referrers API (distribution 2.8) use the referrers tag
///   schema; `put_manifest` of a manifest with a `subject` adds it to the `sha256-<hex>` index
///   tag of its subject.
/// - Every request has a time limit, and blob transfers fail when bytes stop moving rather than
///   after a fixed time (see [`OciOptions::request_timeout`]); connection errors, timeouts, 5xx
///   and 429 answers are retried with exponential backoff, other 4xx answers are not. A stall
///   is blamed on the side that stalled: the source while reading a blob, the destination
///   while it takes the upload.
/// - Errors map to [`Error::NotFound`], [`Error::Unauthorized`], [`Error::Unavailable`],
///   [`Error::Immutability`] (a registry refusing to move an immutable tag), naming the
///   registry and the reference.
///
/// ```no_run
/// # async fn demo() -> floe_promotion::Result<()> {
/// use floe_promotion::{ArtifactRegistry, Reference, Repository, Tag};
/// use floe_promotion_oci::{CredentialSource, OciOptions, OciRegistry};
///
/// let registry = OciRegistry::new(OciOptions {
///     insecure_hosts: vec!["127.0.0.1:5000".into()],
///     credentials: CredentialSource::DockerConfig { path: None },
///     ..OciOptions::default()
/// })?;
/// let dev = Repository::new("127.0.0.1:5000/floe/dev/app")?;
/// let manifest = registry.resolve(&dev, &Reference::Tag(Tag::new("v1.2.3")?)).await?;
/// println!("{}", manifest.digest());
/// # Ok(()) }
/// ```
///
/// [`put_manifest`]: ArtifactRegistry::put_manifest
/// [`copy`]: ArtifactRegistry::copy
#[derive(Clone)]
pub struct OciRegistry {
    inner: Arc<Inner>,
}

/// The outcome of an authentication probe, an error as its text.
type Probed = std::result::Result<(), String>;

struct Inner {
    /// Clients for the insecure (plain HTTP) hosts: built without the system's TLS roots.
    plain: Clients,
    /// Clients for every other host, built with the system's TLS roots on first use.
    tls: std::sync::OnceLock<Clients>,
    options: OciOptions,
    auths: tokio::sync::Mutex<HashMap<String, RegistryAuth>>,
    /// The authentication probe [`OciRegistry::prepare`] made of each host, with its outcome
    /// (an error as its text):
    /// a call that finds one still in flight waits for it instead of probing too.
    prepared: std::sync::Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Probed>>>>,
    index_locks: Vec<tokio::sync::Mutex<()>>,
    observer: Option<Arc<dyn TransferObserver>>,
}

impl fmt::Debug for OciRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OciRegistry")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl OciRegistry {
    /// A registry client with `options`. Refuses malformed insecure hosts and zero timeouts.
    pub fn new(options: OciOptions) -> Result<Self> {
        for host in &options.insecure_hosts {
            location::validate_host(host)
                .map_err(|reason| Error::invalid("insecure host", host.clone(), reason))?;
        }
        for host in options.host_credentials.keys() {
            location::validate_host(host)
                .map_err(|reason| Error::invalid("credentials host", host.clone(), reason))?;
        }
        if options.request_timeout.is_zero() {
            return Err(Error::invalid(
                "request timeout",
                "0s",
                "a request timeout must be longer than zero",
            ));
        }
        let plain = build_clients(&options, false)?;
        Ok(OciRegistry {
            inner: Arc::new(Inner {
                plain,
                tls: std::sync::OnceLock::new(),
                options,
                auths: tokio::sync::Mutex::new(HashMap::new()),
                prepared: std::sync::Mutex::new(HashMap::new()),
                index_locks: (0..INDEX_LOCKS)
                    .map(|_| tokio::sync::Mutex::new(()))
                    .collect(),
                observer: None,
            }),
        })
    }

    /// Builds a registry that reports blob uploads (streamed copies) to `observer`, e.g. for a
    /// progress bar. Mounted and skipped blobs are not reported.
    pub fn new_with_observer(
        options: OciOptions,
        observer: Arc<dyn TransferObserver>,
    ) -> Result<Self> {
        let mut registry = Self::new(options)?;
        if let Some(inner) = Arc::get_mut(&mut registry.inner) {
            inner.observer = Some(observer);
        }
        Ok(registry)
    }

    /// How a copy between two remote locations moves blobs, without a client and without
    /// I/O: the same repository needs tags only, the same registry mounts, another streams.
    pub fn copy_mode_between(src: &Repository, dst: &Repository) -> CopyMode {
        match (RemoteRepo::parse(src), RemoteRepo::parse(dst)) {
            (Ok(s), Ok(d)) => copy::mode(&s, &d),
            // Unparseable locations fail in `copy`; say "stream", the most general answer.
            _ if src == dst => CopyMode::TagOnly,
            _ => CopyMode::Stream,
        }
    }

    /// The options this registry was built with.
    pub fn options(&self) -> &OciOptions {
        &self.inner.options
    }

    /// Gets ready to use `repo`: resolves its host's credentials, asks the registry how it
    /// authenticates (remembering a pull token, or that it needs none) and leaves the
    /// connection open for the calls that follow. A command calls it while it does other
    /// work (opening its state), so that its first real call finds all of that done.
    ///
    /// Calls made meanwhile wait for it rather than probe the host themselves, then go on as
    /// they would without it: what fails here (within twice the request timeout) fails
    /// again, and is reported, where a real call needs it. Each host is probed once; later
    /// calls return the first outcome.
    pub async fn prepare(&self, repo: &Repository) -> Result<()> {
        let r = RemoteRepo::parse(repo)?;
        let cell = self.inner.prepared_cell(&r, true).unwrap_or_default();
        let mut failed = None;
        let outcome = cell
            .get_or_init(|| async {
                self.inner.probe(&r).await.map_err(|e| {
                    let text = e.to_string();
                    failed = Some(e);
                    text
                })
            })
            .await;
        match (outcome, failed) {
            (Ok(()), _) => Ok(()),
            (Err(_), Some(e)) => Err(e),
            (Err(text), None) => Err(Error::Unavailable {
                registry: r.host().to_string(),
                message: text.clone(),
            }),
        }
    }
}

impl Inner {
    async fn resolve(&self, r: &RemoteRepo, reference: &Reference) -> Result<Manifest> {
        let auth = self.auth(r).await?;
        let clients = self.clients(r.host())?;
        let oref = r.reference(reference);
        let target = format!("{r}{reference}");
        let (bytes, digest) = self
            .retry(
                r.host(),
                &format!("reading manifest {target}"),
                self.timeout(),
                || async {
                    clients
                        .client
                        .pull_manifest_raw(&oref, &auth, MANIFEST_MEDIA_TYPES)
                        .await
                        .map_err(|e| classify(&e, r.host(), "manifest", &target))
                },
            )
            .await?;
        let manifest = Manifest::from_bytes(bytes.to_vec(), None).map_err(|e| Error::Store {
            backend: "oci",
            location: target.clone(),
            message: format!("the registry returned something that is not a manifest: {e}"),
        })?;
        let announced = Digest::new(digest.as_str()).ok();
        let expected = match reference {
            Reference::Digest(d) => Some(d),
            Reference::Tag(_) => announced.as_ref(),
        };
        if let Some(expected) = expected
            && expected != manifest.digest()
        {
            return Err(Error::Store {
                backend: "oci",
                location: target,
                message: format!(
                    "the manifest bytes hash to {} but {expected} was expected",
                    manifest.digest()
                ),
            });
        }
        Ok(manifest)
    }

    /// The digest a tag or digest points at, or `None` when it does not exist. One GET: a
    /// HEAD would be followed by a GET whenever the manifest is missing.
    async fn head_manifest(&self, r: &RemoteRepo, reference: &Reference) -> Result<Option<Digest>> {
        match self.resolve(r, reference).await {
            Ok(m) => Ok(Some(m.digest().clone())),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes manifest bytes under `tag` (or by digest), then, for a manifest with a
    /// `subject`, adds it to the subject's referrers fallback index.
    async fn put_manifest(
        &self,
        r: &RemoteRepo,
        tag: Option<&Tag>,
        manifest: &Manifest,
    ) -> Result<()> {
        let body = manifest.body();
        // Refuse an index whose children are missing here: not every registry checks.
        for child in body.children() {
            if self
                .head_manifest(r, &Reference::Digest(child.digest.clone()))
                .await?
                .is_none()
            {
                return Err(Error::not_found(format!(
                    "manifest {} referenced by index {}",
                    r.at_digest(&child.digest),
                    manifest.digest()
                )));
            }
        }
        self.push_manifest_raw(r, tag, manifest).await?;
        if let Some(subject) = &body.subject {
            self.add_referrer(r, &subject.digest, referrers::entry_for(manifest, body))
                .await?;
        }
        Ok(())
    }

    /// PUTs the exact bytes. oci-client panics (`expect`) when a registry answers a push by
    /// digest without a `Location` header; the push runs in its own task so that such a panic
    /// becomes an error.
    async fn push_manifest_raw(
        &self,
        r: &RemoteRepo,
        tag: Option<&Tag>,
        manifest: &Manifest,
    ) -> Result<()> {
        self.auth(r).await?;
        let clients = self.clients(r.host())?;
        let (oref, target) = match tag {
            Some(t) => (r.tag_ref(t.as_str()), r.at_tag(t)),
            None => (
                r.digest_ref(manifest.digest()),
                r.at_digest(manifest.digest()),
            ),
        };
        let content_type = reqwest_header(manifest.media_type()).ok_or_else(|| {
            Error::invalid(
                "manifest media type",
                manifest.media_type(),
                "not a valid HTTP header value",
            )
        })?;
        let bytes = Bytes::copy_from_slice(manifest.bytes());
        let outcome = self
            .retry(r.host(), &format!("writing manifest {target}"), self.timeout(), || {
                let client = clients.client.clone();
                let oref = oref.clone();
                let bytes = bytes.clone();
                let content_type = content_type.clone();
                let target = target.clone();
                let host = r.host().to_string();
                async move {
                    let task = tokio::spawn(async move {
                        client.push_manifest_raw(&oref, bytes, content_type).await
                    });
                    match task.await {
                        Ok(Ok(_)) => Ok(Ok(())),
                        Ok(Err(e)) if error::is_immutable_tag_refusal(&e) => Ok(Err(e)),
                        Ok(Err(e)) => Err(classify(&e, &host, "manifest", &target)),
                        Err(join) => Err(Failure::fatal(Error::Store {
                            backend: "oci",
                            location: target,
                            message: if join.is_panic() {
                                "the registry answered the manifest upload without a Location header, which the client cannot handle".into()
                            } else {
                                "the manifest upload was cancelled".into()
                            },
                        })),
                    }
                }
            })
            .await?;
        match (outcome, tag) {
            (Ok(()), _) => Ok(()),
            (Err(refusal), Some(t)) => {
                let existing = self.head_manifest(r, &Reference::Tag(t.clone())).await?;
                match existing {
                    Some(existing) => Err(Error::Immutability {
                        repository: r.to_string(),
                        tag: t.to_string(),
                        existing,
                        attempted: manifest.digest().clone(),
                    }),
                    None => Err(classify(&refusal, r.host(), "manifest", &target).error),
                }
            }
            (Err(refusal), None) => Err(classify(&refusal, r.host(), "manifest", &target).error),
        }
    }

    async fn blob_exists(&self, r: &RemoteRepo, digest: &Digest) -> Result<bool> {
        self.auth(r).await?;
        let clients = self.clients(r.host())?;
        let oref = r.tag_ref("latest");
        let target = format!("blob {}", r.at_digest(digest));
        self.retry(
            r.host(),
            &format!("checking {target}"),
            self.timeout(),
            || async {
                clients
                    .client
                    .blob_exists(&oref, digest.as_str())
                    .await
                    .map_err(|e| classify(&e, r.host(), "blob", &r.at_digest(digest)))
            },
        )
        .await
    }

    async fn push_blob(&self, r: &RemoteRepo, data: Vec<u8>) -> Result<Digest> {
        let digest = Digest::of(&data);
        if self.blob_exists(r, &digest).await? {
            return Ok(digest);
        }
        let uploader = self.uploader(r).await?;
        let oref = r.tag_ref("latest");
        let data = Bytes::from(data);
        let size = data.len() as u64;
        let target = r.at_digest(&digest);
        self.retry(
            r.host(),
            &format!("uploading blob {target}"),
            self.transfer_timeout(size),
            || {
                let data = data.clone();
                let oref = oref.clone();
                let (digest, target) = (&digest, &target);
                async move {
                    let watch = transfer::Watch::new();
                    let body = transfer::Body::from_bytes(data, Arc::clone(&watch));
                    self.upload(uploader, &oref, body, &watch, digest.as_str(), size)
                        .await
                        .map_err(|e| {
                            copy::Ends {
                                source: None,
                                destination: (r.host(), target),
                            }
                            .failure(e)
                        })
                }
            },
        )
        .await?;
        Ok(digest)
    }

    async fn fetch_blob(&self, r: &RemoteRepo, digest: &Digest, max_bytes: u64) -> Result<Vec<u8>> {
        self.auth(r).await?;
        let clients = self.clients(r.host())?;
        let oref = r.tag_ref("latest");
        let target = r.at_digest(digest);
        let too_large = |len: u64| {
            Failure::fatal(Error::invalid(
                "blob",
                target.clone(),
                format!("{len} bytes or more is more than the limit of {max_bytes}"),
            ))
        };
        self.retry(
            r.host(),
            &format!("reading blob {target}"),
            self.transfer_timeout(max_bytes),
            || async {
                let idle = self.options.request_timeout;
                let stalled = |limit: Duration| {
                    Failure::unavailable(
                        r.host(),
                        format!(
                            "reading blob {target}: the registry sent nothing for {}",
                            copy::seconds(limit)
                        ),
                    )
                };
                let mut stream = tokio::time::timeout(
                    self.timeout(),
                    clients.client.pull_blob_stream(&oref, digest.as_str()),
                )
                .await
                .map_err(|_| stalled(self.timeout()))?
                .map_err(|e| classify(&e, r.host(), "blob", &target))?;
                if let Some(len) = stream.content_length
                    && len > max_bytes
                {
                    return Err(too_large(len));
                }
                let mut out = Vec::new();
                while let Some(chunk) = tokio::time::timeout(idle, stream.next())
                    .await
                    .map_err(|_| stalled(idle))?
                {
                    let chunk = chunk.map_err(|e| {
                        if transfer::is_digest_error(&e) {
                            Failure::fatal(Error::Store {
                                backend: "oci",
                                location: target.clone(),
                                message: format!(
                                    "the blob does not match its digest: {}",
                                    error::chain(&e)
                                ),
                            })
                        } else {
                            classify(
                                &oci_client::errors::OciDistributionError::IoError(e),
                                r.host(),
                                "blob",
                                &target,
                            )
                        }
                    })?;
                    if (out.len() + chunk.len()) as u64 > max_bytes {
                        return Err(too_large((out.len() + chunk.len()) as u64));
                    }
                    out.extend_from_slice(&chunk);
                }
                Ok(out)
            },
        )
        .await
    }

    async fn list_tags(&self, r: &RemoteRepo) -> Result<Vec<Tag>> {
        let auth = self.auth(r).await?;
        let clients = self.clients(r.host())?;
        let oref = r.tag_ref("latest");
        let target = format!("tags of {r}");
        let mut all = BTreeSet::new();
        let mut last: Option<String> = None;
        for _ in 0..MAX_TAG_PAGES {
            let page = self
                .retry(
                    r.host(),
                    &format!("listing {target}"),
                    self.timeout(),
                    || async {
                        clients
                            .client
                            .list_tags(&oref, &auth, Some(TAG_PAGE), last.as_deref())
                            .await
                            .map_err(|e| classify(&e, r.host(), "repository", &r.to_string()))
                    },
                )
                .await;
            let page = match page {
                Ok(page) => page,
                Err(Error::NotFound { .. }) if last.is_none() => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            let before = all.len();
            all.extend(page.tags.iter().cloned());
            // A short page ends the listing; so does a page with nothing new, which is what a
            // registry that ignores `n` and `last` (distribution 2.8) sends every time.
            if page.tags.len() < TAG_PAGE || all.len() == before {
                break;
            }
            let next = page.tags.iter().max().cloned();
            if next == last {
                break;
            }
            last = next;
        }
        Ok(all
            .into_iter()
            .filter_map(|t| match Tag::new(t.as_str()) {
                Ok(tag) => Some(tag),
                Err(_) => {
                    tracing::warn!(repository = %r, tag = %t, "skipping a tag floe cannot represent");
                    None
                }
            })
            .collect())
    }

    fn index_lock(&self, r: &RemoteRepo, subject: &Digest) -> &tokio::sync::Mutex<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (r.to_string(), subject.as_str()).hash(&mut h);
        &self.index_locks[(h.finish() % INDEX_LOCKS as u64) as usize]
    }
}

/// A header value for a media type.
fn reqwest_header(media_type: &str) -> Option<http::HeaderValue> {
    http::HeaderValue::from_str(media_type).ok()
}

#[async_trait]
impl ArtifactRegistry for OciRegistry {
    async fn resolve(&self, repo: &Repository, reference: &Reference) -> Result<Manifest> {
        let r = RemoteRepo::parse(repo)?;
        self.inner.resolve(&r, reference).await
    }

    async fn put_manifest(
        &self,
        repo: &Repository,
        tag: Option<&Tag>,
        manifest: &Manifest,
    ) -> Result<()> {
        let r = RemoteRepo::parse(repo)?;
        self.inner.put_manifest(&r, tag, manifest).await
    }

    async fn push_blob(&self, repo: &Repository, data: Vec<u8>) -> Result<Digest> {
        let r = RemoteRepo::parse(repo)?;
        self.inner.push_blob(&r, data).await
    }

    async fn fetch_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        max_bytes: u64,
    ) -> Result<Vec<u8>> {
        let r = RemoteRepo::parse(repo)?;
        self.inner.fetch_blob(&r, digest, max_bytes).await
    }

    async fn copy(
        &self,
        src: &Repository,
        dst: &Repository,
        digest: &Digest,
    ) -> Result<CopyReport> {
        let s = RemoteRepo::parse(src)?;
        let d = RemoteRepo::parse(dst)?;
        self.inner.copy(&s, &d, digest, None).await
    }

    async fn copy_known(
        &self,
        src: &Repository,
        dst: &Repository,
        manifest: &Manifest,
    ) -> Result<CopyReport> {
        let s = RemoteRepo::parse(src)?;
        let d = RemoteRepo::parse(dst)?;
        self.inner
            .copy(&s, &d, manifest.digest(), Some(manifest))
            .await
    }

    async fn list_tags(&self, repo: &Repository) -> Result<Vec<Tag>> {
        let r = RemoteRepo::parse(repo)?;
        self.inner.list_tags(&r).await
    }

    async fn referrers(&self, repo: &Repository, subject: &Digest) -> Result<Vec<Descriptor>> {
        let r = RemoteRepo::parse(repo)?;
        self.inner.referrers(&r, subject).await
    }

    fn copy_mode(&self, src: &Repository, dst: &Repository) -> CopyMode {
        OciRegistry::copy_mode_between(src, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls to plain-HTTP hosts use the clients built without the system's TLS roots; the
    /// TLS clients are built only when a TLS host is reached.
    #[tokio::test]
    async fn tls_clients_are_built_only_for_a_tls_host() {
        let plain_port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let plain_host = format!("127.0.0.1:{plain_port}");
        let mut options = OciOptions::default().with_insecure_hosts(vec![plain_host.clone()]);
        options.request_timeout = Duration::from_secs(2);
        options.retries = 0;
        let registry = OciRegistry::new(options).expect("registry");
        let plain = Repository::new(format!("{plain_host}/floe/app")).expect("repo");
        // Nothing listens there: the call fails, over plain HTTP, without TLS clients.
        let err = registry
            .list_tags(&plain)
            .await
            .expect_err("nothing listens");
        assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
        assert!(
            registry.inner.tls.get().is_none(),
            "a plain-HTTP call built the TLS clients"
        );
        assert!(
            registry.inner.plain.uploader.get().is_none(),
            "a call that uploads nothing built the upload client"
        );
        assert!(std::ptr::eq(
            registry.inner.clients(&plain_host).expect("plain clients"),
            &registry.inner.plain
        ));

        let tls_host = format!("127.0.0.1:{}", plain_port.wrapping_add(1).max(1024));
        let tls_clients = registry.inner.clients(&tls_host).expect("tls clients") as *const Clients;
        assert!(
            registry.inner.tls.get().is_some(),
            "no TLS clients after a TLS host"
        );
        assert!(!std::ptr::eq(tls_clients, &registry.inner.plain));
        // Built once: the next TLS host shares them.
        let again = registry.inner.clients("registry.example.com").expect("tls") as *const Clients;
        assert!(std::ptr::eq(tls_clients, again));
    }
}
