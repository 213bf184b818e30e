//! The core's history, state and release conformance suites against a SQLite file in a temporary
//! directory, through `Arc<dyn _>`.

use std::sync::Arc;

use floe_promotion::{HistoryStore, LockStore, ReleaseStore};
use floe_promotion_sqlite::SqliteStore;

async fn open() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(dir.path().join("floe.db"))
        .await
        .expect("open the database");
    (store, dir)
}

mod history {
    use super::*;

    floe_promotion::history_conformance!(async {
        let (store, dir) = open().await;
        let history: Arc<dyn HistoryStore> = Arc::new(store);
        (history, dir)
    });
}

mod state {
    use super::*;

    floe_promotion::state_conformance!(async {
        let (store, dir) = open().await;
        let locks: Arc<dyn LockStore> = Arc::new(store);
        (locks, dir)
    });
}

mod release {
    use super::*;

    floe_promotion::release_conformance!(async {
        let (store, dir) = open().await;
        let releases: Arc<dyn ReleaseStore> = Arc::new(store);
        (releases, dir)
    });
}

mod cursors {
    use super::*;
    use floe_promotion::notify::CursorStore;

    floe_promotion::cursor_conformance!(async {
        let (store, dir) = open().await;
        let cursors: Arc<dyn CursorStore> = Arc::new(store);
        (cursors, dir)
    });
}

mod holds {
    use super::*;
    use floe_promotion::state::HoldStore;

    floe_promotion::hold_conformance!(async {
        let (store, dir) = open().await;
        let holds: Arc<dyn HoldStore> = Arc::new(store);
        (holds, dir)
    });
}

mod deliveries {
    use super::*;
    use floe_promotion::notify::DeliveryLog;

    floe_promotion::delivery_log_conformance!(async {
        let (store, dir) = open().await;
        let log: Arc<dyn DeliveryLog> = Arc::new(store);
        (log, dir)
    });
}

mod revocations {
    use super::*;
    use floe_promotion::state::RevocationStore;

    floe_promotion::revocation_conformance!(async {
        let (store, dir) = open().await;
        let revocations: Arc<dyn RevocationStore> = Arc::new(store);
        (revocations, dir)
    });
}
