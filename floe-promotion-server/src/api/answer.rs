//! The steps handlers share: a library error answered in the API's error shape, and a call on
//! one thing the path names.

use std::future::Future;
use std::sync::Arc;

use floe_promotion::{EnvName, Error, PromotionManager};

use crate::error::Failure;
use crate::state::AppState;

/// Runs a handler's work (its input checks and its call on the manager, each ending with `?`)
/// and answers a library error as the API does: the `{error, exit_code, kind}` document with
/// the status of its kind.
pub(crate) async fn answer<T>(
    st: &AppState,
    work: impl Future<Output = floe_promotion::Result<T>>,
) -> Result<T, Failure> {
    work.await.map_err(|e| st.fail(&e))
}

/// The manager a handler's call runs on.
pub(crate) type Manager = Arc<dyn PromotionManager>;

/// The steps of a call on one thing the path names (an environment, an approval request):
/// `segment` checked by `parse`, then `call` on the manager with the checked value; an error
/// of either in the API's error shape.
pub(crate) async fn on_path<K, T, F>(
    st: &AppState,
    segment: &str,
    parse: fn(&str) -> Result<K, Error>,
    call: impl FnOnce(Manager, K) -> F,
) -> Result<T, Failure>
where
    F: Future<Output = Result<T, Error>>,
{
    answer(st, async {
        call(st.manager.clone(), parse(segment)?).await
    })
    .await
}

/// An environment named in the path, checked.
pub(crate) fn env_name(env: &str) -> Result<EnvName, Error> {
    EnvName::new(env)
}
