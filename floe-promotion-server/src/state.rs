//! What every handler shares.

use std::sync::Arc;

use floe_promotion::{HistoryStore, PromotionManager};

use crate::dashboard::Sessions;
use crate::error::{ErrorReporter, Failure};
use crate::health::ReadinessProbe;
use crate::identity::IdentityVerifier;
use crate::metrics::Metrics;

/// The server's shared parts (cheap to clone).
#[derive(Clone, Debug)]
pub(crate) struct AppState(pub(crate) Arc<Inner>);

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) manager: Arc<dyn PromotionManager>,
    pub(crate) history: Arc<dyn HistoryStore>,
    pub(crate) deliveries: Option<Arc<dyn floe_promotion::DeliveryLog>>,
    pub(crate) identity: IdentityVerifier,
    pub(crate) errors: Arc<dyn ErrorReporter>,
    pub(crate) probes: Vec<Arc<dyn ReadinessProbe>>,
    pub(crate) metrics: Metrics,
    pub(crate) sessions: Sessions,
    /// Whether the server speaks HTTPS (session cookies are then `Secure`).
    pub(crate) tls: bool,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Inner {
    /// The failure of a library error.
    pub(crate) fn fail(&self, error: &floe_promotion::Error) -> Failure {
        Failure::of(self.errors.as_ref(), error)
    }
}
