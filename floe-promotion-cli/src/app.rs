//! Wiring: the manifest, the state (a SQLite file, or a PostgreSQL database given by URL) and
//! the OCI backends into a manager.

use std::path::Path;
use std::sync::Arc;

use floe_promotion::config::{InMemoryConfig, load_manifest};
use floe_promotion::notify::{CursorStore, DeliveryLog};
use floe_promotion::state::{HoldStore, RevocationStore};
use floe_promotion::{
    ArtifactName, ArtifactRegistry, DefaultPromotionManager, EnvName, EnvironmentConfig, Error,
    Excerpt, LogNotifier, Result,
};
use floe_promotion::{HistoryStore, LockStore, ReleaseStore};
use floe_promotion_oci::{
    CosignVerifier, CredentialSource, OciLayoutRegistry, OciOptions, RoutingRegistry,
};
use floe_promotion_postgres::PostgresStore;
use floe_promotion_sqlite::{SHORT_LIVED_WAL_PAGES, SqliteOptions, SqliteStore};
use floe_promotion_webhook::WebhookNotifier;

use crate::cli::Global;

/// Everything a command needs, opened from the global options.
pub(crate) struct App {
    pub(crate) config: Arc<InMemoryConfig>,
    pub(crate) store: State,
    pub(crate) manager: DefaultPromotionManager,
    /// How the state is shown: the file's path, or the database URL without its password.
    pub(crate) state_name: String,
    /// One notifier per configured webhook, also added to the manager's notifiers.
    pub(crate) webhooks: Vec<Arc<WebhookNotifier>>,
    /// The registries (remote and layout directories), as the manager reaches them.
    pub(crate) registry: Arc<dyn ArtifactRegistry>,
    progress: Option<crate::progress::Progress>,
}

/// Reads the manifest; a missing, unreadable or non-file path is a usage error naming it.
pub(crate) fn manifest(path: &Path) -> Result<InMemoryConfig> {
    let config_error = |message: String| Error::Config {
        file: Some(path.to_path_buf()),
        location: None,
        message,
    };
    if !path.exists() {
        return Err(config_error(
            "no such file (give --manifest PATH or run where manifest.yaml is)".into(),
        ));
    }
    if !path.is_file() {
        return Err(config_error("not a file".into()));
    }
    load_manifest(path).map_err(|e| match e {
        Error::Io { source, .. } => config_error(format!("cannot read it: {source}")),
        other => other,
    })
}

/// The state store, whichever backend holds it.
#[derive(Clone)]
pub(crate) struct State {
    pub(crate) history: Arc<dyn HistoryStore>,
    locks: Arc<dyn LockStore>,
    holds: Arc<dyn HoldStore>,
    revocations: Arc<dyn RevocationStore>,
    cursors: Arc<dyn CursorStore>,
    releases: Arc<dyn ReleaseStore>,
    pub(crate) deliveries: Arc<dyn DeliveryLog>,
}

impl State {
    fn of<S>(store: S) -> State
    where
        S: HistoryStore
            + LockStore
            + HoldStore
            + RevocationStore
            + CursorStore
            + ReleaseStore
            + DeliveryLog,
    {
        let store = Arc::new(store);
        State {
            history: store.clone(),
            locks: store.clone(),
            holds: store.clone(),
            revocations: store.clone(),
            cursors: store.clone(),
            releases: store.clone(),
            deliveries: store,
        }
    }
}

/// Whether `--state` names a PostgreSQL database (`postgres://` or `postgresql://`) rather
/// than a SQLite file.
pub(crate) fn is_database_url(state: &Path) -> bool {
    state
        .to_str()
        .is_some_and(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

/// Opens the state: a PostgreSQL database when `--state` is a URL, else the SQLite file.
/// Returns the store and how to show it (never with a password).
async fn open_any_state(state: &Path) -> Result<(State, String)> {
    match state.to_str().filter(|_| is_database_url(state)) {
        Some(url) => {
            let store = PostgresStore::connect(url).await?;
            let name = store.redacted_url().to_string();
            Ok((State::of(store), name))
        }
        None => Ok((
            State::of(open_state(state).await?),
            state.display().to_string(),
        )),
    }
}

/// Whether this process serves for long (`floe serve`, `floe auto --watch`) rather than run
/// one command and exit; see [`long_running`].
static LONG_RUNNING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Marks this process as one that keeps its state open for long: the SQLite file is then
/// opened with SQLite's default automatic checkpoint instead of the short WAL of a command
/// ([`SqliteOptions::wal_autocheckpoint`]).
pub(crate) fn long_running() {
    LONG_RUNNING.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Opens (creating if needed) the state file and its directory. Every failure is a store
/// error naming the state file.
async fn open_state(path: &Path) -> Result<SqliteStore> {
    let store_error = |message: String| Error::Store {
        backend: "sqlite",
        location: path.display().to_string(),
        message,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The nearest existing ancestor must be a directory, or nothing can be created.
        if let Some(blocker) = dir.ancestors().find(|a| a.exists()).filter(|a| !a.is_dir()) {
            return Err(store_error(format!(
                "cannot create the state file: {} is not a directory",
                Excerpt::path(blocker)
            )));
        }
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| {
                store_error(format!(
                    "cannot create the directory {}: {e}",
                    Excerpt::path(dir)
                ))
            })?;
        }
    }
    // SQLite's messages repeat the path whole: shorten it there too.
    let whole = path.display().to_string();
    let shorten = |message: String| message.replace(&whole, &Excerpt::path(path));
    // A command opens the file, makes a few writes and exits; the next one reads the whole
    // WAL again when it opens the file. `floe serve` and `floe auto --watch` keep it open.
    let options = if LONG_RUNNING.load(std::sync::atomic::Ordering::Relaxed) {
        SqliteOptions::default()
    } else {
        SqliteOptions::default().wal_autocheckpoint(SHORT_LIVED_WAL_PAGES)
    };
    SqliteStore::open_with(path, options)
        .await
        .map_err(|e| match e {
            Error::NotFound { what } => {
                store_error(format!("cannot open the state file: {}", shorten(what)))
            }
            Error::Store {
                backend,
                location,
                message,
            } => Error::Store {
                backend,
                location,
                message: shorten(message),
            },
            other => other,
        })
}

impl App {
    /// Opens the manifest, checks that `environments` are in it and reads the trusted keys,
    /// then opens the state file (so bad input never creates or writes one); the registry is connected lazily by the
    /// backends, so commands that only read the state never reach a registry.
    pub(crate) async fn open(
        global: &Global,
        with_progress: bool,
        environments: &[&EnvName],
    ) -> Result<App> {
        App::open_with(global, with_progress, environments, None, |locks| locks).await
    }

    /// [`App::open`] for a command that moves `artifact` between `environments`: their
    /// registries are got ready ([`OciRegistry::prepare`](floe_promotion_oci::OciRegistry::prepare))
    /// while the state opens, so that the command's first registry call does not wait for
    /// credentials, the authentication probe or a connection.
    pub(crate) async fn open_to_move(
        global: &Global,
        environments: &[&EnvName],
        artifact: &ArtifactName,
    ) -> Result<App> {
        App::open_with(global, true, environments, Some(artifact), |locks| locks).await
    }

    /// [`App::open`] with the manager's lock store wrapped by `wrap_locks` (`floe serve`
    /// times lease waits).
    pub(crate) async fn open_with(
        global: &Global,
        with_progress: bool,
        environments: &[&EnvName],
        prepare_for: Option<&ArtifactName>,
        wrap_locks: impl FnOnce(Arc<dyn LockStore>) -> Arc<dyn LockStore>,
    ) -> Result<App> {
        if let Some(path) = &global.docker_config
            && !path.is_file()
        {
            return Err(Error::invalid(
                "--docker-config",
                path.display().to_string(),
                "no such file: give the path of a docker config.json",
            ));
        }
        let config = Arc::new(manifest(&global.manifest)?);
        for env in environments {
            config.environment(env)?;
        }
        let settings = config.settings();
        // Key files are input too: read and checked before the state file exists.
        let verifier = if settings.trusted_keys.is_empty() {
            None
        } else {
            Some(Arc::new(CosignVerifier::from_pem_files(
                &settings.trusted_keys,
            )?))
        };
        let progress = with_progress.then(crate::progress::Progress::new);
        let mut options = OciOptions::default()
            .with_insecure_hosts(settings.insecure_registries.clone())
            .with_credentials(match &global.docker_config {
                Some(path) => CredentialSource::docker_config(path),
                None => CredentialSource::default(),
            });
        if let Some(timeout) = settings.registry_timeout {
            options = options.with_request_timeout(timeout);
        }
        let remote = crate::lazy::LazyRemote::new(options, progress.as_ref().map(|p| p.observer()));
        if let Some(artifact) = prepare_for {
            let repos = environments
                .iter()
                .filter_map(|env| config.repository(env, artifact).ok())
                .collect();
            remote.prepare(repos);
        }
        let (store, state_name) = open_any_state(&global.state).await?;
        let registry: Arc<dyn ArtifactRegistry> =
            Arc::new(RoutingRegistry::new(OciLayoutRegistry::new(), remote));
        let mut builder = DefaultPromotionManager::builder()
            .config(config.clone())
            .registry(registry.clone())
            .history(store.history.clone())
            .locks(wrap_locks(store.locks.clone()))
            .holds(store.holds.clone())
            .revocations(store.revocations.clone())
            .cursors(store.cursors.clone())
            .releases(store.releases.clone())
            .manual_delivery()
            .notifier(Arc::new(LogNotifier));
        // Each webhook is its own notifier: its own cursor, delivered to in parallel.
        let mut webhooks = Vec::new();
        for hook in &settings.webhooks {
            let notifier = Arc::new(
                WebhookNotifier::builder(
                    hook.clone(),
                    store.history.clone(),
                    store.deliveries.clone(),
                )
                .config(config.clone())
                .build()?,
            );
            builder = builder.notifier(notifier.clone());
            webhooks.push(notifier);
        }
        if let Some(verifier) = verifier {
            builder = builder.signature_verifier(verifier);
        }
        // attestation.checkpoints.every: a checkpoint every N events, from the outbox.
        if let Some(n) =
            crate::checkpoints::notifier(settings, store.history.clone(), registry.clone())
        {
            builder = builder.notifier(n);
        }
        if let Some(writer) = attestation_writer(global, &config, &registry)? {
            builder = builder.notifier(writer);
        }
        Ok(App {
            manager: builder.build()?,
            config,
            store,
            state_name,
            webhooks,
            registry,
            progress,
        })
    }

    /// Marks this process as one that records events: its notifications are delivered
    /// before it exits (read-only commands deliver nothing and write no cursor).
    pub(crate) fn deliver_at_exit(&self) {
        *OPENED.lock().unwrap_or_else(|p| p.into_inner()) = Some(self.manager.clone());
    }

    /// The key of `artifacts.promotion.attestation`, read and decrypted now (its password
    /// from the variable `key_password_env` names); a manifest without the section is a
    /// configuration error saying what to add.
    pub(crate) fn signer(&self) -> Result<Arc<dyn floe_promotion::attest::Signer>> {
        let settings = self.config.settings();
        let Some(attestation) = &settings.attestation else {
            return Err(Error::Config {
                file: settings.source.clone(),
                location: None,
                message: "artifacts.promotion.attestation is not configured: add attestation: { key: keys/floe.key, key_password_env: FLOE_KEY_PASSWORD } (make a key with floe keygen or cosign generate-key-pair)".into(),
            });
        };
        Ok(Arc::new(
            floe_promotion_oci::CosignKeySigner::from_settings(attestation)?,
        ))
    }

    /// The progress display of blob copies (a no-op unless stderr is a terminal).
    pub(crate) fn progress(&self) -> crate::progress::Finish<'_> {
        crate::progress::Finish(self.progress.as_ref())
    }
}

/// The writer of signed attestations when `artifacts.promotion.attestation` is configured:
/// it signs with that key, loaded when the first attestation is written (commands that record
/// nothing never decrypt it), against the manifest as policy (its path as given and the
/// SHA-256 of its bytes now).
fn attestation_writer(
    global: &Global,
    config: &Arc<InMemoryConfig>,
    registry: &Arc<dyn ArtifactRegistry>,
) -> Result<Option<Arc<floe_promotion::attest::AttestationWriter>>> {
    let Some(settings) = config.settings().attestation.clone() else {
        return Ok(None);
    };
    let bytes =
        floe_promotion::input::read_bounded(&global.manifest, 16 * 1024 * 1024, "--manifest")?;
    let policy =
        floe_promotion::attest::policy_descriptor(global.manifest.display().to_string(), &bytes);
    let loader: floe_promotion::attest::SignerLoader = Arc::new(move || {
        let signer: Arc<dyn floe_promotion::attest::Signer> = Arc::new(
            floe_promotion_oci::CosignKeySigner::from_settings(&settings)?,
        );
        Ok(signer)
    });
    Ok(Some(Arc::new(
        floe_promotion::attest::AttestationWriter::with_loader(
            registry.clone(),
            config.clone(),
            loader,
            policy,
        ),
    )))
}

/// The manager of a command that records events, for the notification delivery run at exit.
static OPENED: std::sync::Mutex<Option<DefaultPromotionManager>> = std::sync::Mutex::new(None);

/// Delivers the notifications this process's commands recorded (and any a previous process
/// left undelivered), waiting at most `budget`: what is not delivered by then stays in the
/// outbox for the next run, so a slow notifier never holds up the command for long.
pub(crate) async fn deliver_pending(budget: std::time::Duration) {
    // A clone: the static keeps the manager, and with it the state file's connections, to
    // the end of the process, which closes them (see `run`).
    let manager = OPENED.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let Some(manager) = manager else {
        return;
    };
    match tokio::time::timeout(budget, manager.deliver_notifications()).await {
        Ok(Ok(report)) => {
            for d in report.iter().filter(|d| d.error.is_some()) {
                tracing::warn!(notifier = %d.notifier, error = ?d.error, "notifications kept for the next run");
            }
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "notifications kept for the next run"),
        Err(_) => tracing::warn!(
            ?budget,
            "notification delivery did not finish; the rest waits for the next run"
        ),
    }
}
