//! The lock and lease conformance suite against the in-memory state, through `Arc<dyn _>`.

use std::sync::Arc;

use floe_promotion::state::HoldStore;
use floe_promotion::{InMemoryState, LockStore};

floe_promotion::state_conformance!(async {
    let locks: Arc<dyn LockStore> = Arc::new(InMemoryState::new());
    (locks, ())
});

mod holds {
    use super::*;

    floe_promotion::hold_conformance!(async {
        let holds: Arc<dyn HoldStore> = Arc::new(InMemoryState::new());
        (holds, ())
    });
}

mod revocations {
    use super::*;
    use floe_promotion::state::RevocationStore;

    floe_promotion::revocation_conformance!(async {
        let store: Arc<dyn RevocationStore> = Arc::new(InMemoryState::new());
        (store, ())
    });
}
