//! The lock and approval conformance suite against the in-memory state, through `Arc<dyn _>`.

use std::sync::Arc;

use floe_promotion::{ApprovalStore, InMemoryState, LockStore};

floe_promotion::state_conformance!(async {
    let state = InMemoryState::new();
    let locks: Arc<dyn LockStore> = Arc::new(state.clone());
    let approvals: Arc<dyn ApprovalStore> = Arc::new(state);
    (locks, approvals)
});
