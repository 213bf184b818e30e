//! Wiring: the manifest, the SQLite state file and the OCI backends into a manager.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use floe_promotion::config::{InMemoryConfig, load_manifest};
use floe_promotion::{
    ArtifactRegistry, DefaultPromotionManager, EnvironmentConfig, Error, LogNotifier, Result,
};
use floe_promotion_oci::{
    CosignVerifier, CredentialSource, OciLayoutRegistry, OciOptions, OciRegistry, RoutingRegistry,
};
use floe_promotion_sqlite::SqliteStore;

use crate::cli::Global;

/// Everything a command needs, opened from the global options.
pub(crate) struct App {
    pub(crate) config: Arc<InMemoryConfig>,
    pub(crate) store: Arc<SqliteStore>,
    pub(crate) manager: DefaultPromotionManager,
    pub(crate) state_path: PathBuf,
    progress: Option<crate::progress::Progress>,
}

/// Reads the manifest; a missing or unreadable file is a usage error naming it.
fn manifest(path: &Path) -> Result<InMemoryConfig> {
    if !path.exists() {
        return Err(Error::Config {
            file: Some(path.to_path_buf()),
            location: None,
            message: "no such file (give --manifest PATH or run where manifest.yaml is)".into(),
        });
    }
    load_manifest(path)
}

/// Opens (creating if needed) the state file and its directory.
async fn open_state(path: &Path) -> Result<SqliteStore> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).map_err(|e| Error::Store {
            backend: "sqlite",
            location: path.display().to_string(),
            message: format!("cannot create the directory {}: {e}", dir.display()),
        })?;
    }
    SqliteStore::open(path).await
}

impl App {
    /// Opens the manifest and the state file; the registry is connected lazily by the
    /// backends, so commands that only read the state never reach a registry.
    pub(crate) async fn open(global: &Global, with_progress: bool) -> Result<App> {
        let config = Arc::new(manifest(&global.manifest)?);
        let settings = config.settings();
        let store = Arc::new(open_state(&global.state).await?);
        let progress = with_progress.then(crate::progress::Progress::new);
        let options = OciOptions::default()
            .with_insecure_hosts(settings.insecure_registries.clone())
            .with_credentials(match &global.docker_config {
                Some(path) => CredentialSource::docker_config(path),
                None => CredentialSource::default(),
            });
        let remote = match &progress {
            Some(p) => OciRegistry::new_with_observer(options, p.observer())?,
            None => OciRegistry::new(options)?,
        };
        let registry: Arc<dyn ArtifactRegistry> =
            Arc::new(RoutingRegistry::new(OciLayoutRegistry::new(), remote));
        let mut builder = DefaultPromotionManager::builder()
            .config(config.clone())
            .registry(registry)
            .history(store.clone())
            .locks(store.clone())
            .approvals(store.clone())
            .notifier(Arc::new(LogNotifier));
        if !settings.trusted_keys.is_empty() {
            builder = builder.signature_verifier(Arc::new(CosignVerifier::from_pem_files(
                &settings.trusted_keys,
            )?));
        }
        Ok(App {
            manager: builder.build()?,
            config,
            store,
            state_path: global.state.clone(),
            progress,
        })
    }

    /// The progress display of blob copies (a no-op unless stderr is a terminal).
    pub(crate) fn progress(&self) -> crate::progress::Finish<'_> {
        crate::progress::Finish(self.progress.as_ref())
    }
}
