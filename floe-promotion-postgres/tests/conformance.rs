//! The core's conformance suites against a real PostgreSQL server started by the test setup
//! ([`TestPostgres::shared`]), with a fresh database per case, through `Arc<dyn _>`.

use std::sync::Arc;

use floe_promotion::{HistoryStore, LockStore, ReleaseStore};
use floe_promotion_postgres::PostgresStore;
use floe_promotion_postgres::testing::TestPostgres;

async fn open() -> PostgresStore {
    let url = TestPostgres::shared().fresh_database().await;
    PostgresStore::connect(&url)
        .await
        .expect("connect to the test database")
}

mod history {
    use super::*;

    floe_promotion::history_conformance!(async {
        let history: Arc<dyn HistoryStore> = Arc::new(open().await);
        history
    });
}

mod state {
    use super::*;

    floe_promotion::state_conformance!(async {
        let locks: Arc<dyn LockStore> = Arc::new(open().await);
        (locks, ())
    });
}

mod release {
    use super::*;

    floe_promotion::release_conformance!(async {
        let releases: Arc<dyn ReleaseStore> = Arc::new(open().await);
        (releases, ())
    });
}

mod cursors {
    use super::*;
    use floe_promotion::notify::CursorStore;

    floe_promotion::cursor_conformance!(async {
        let cursors: Arc<dyn CursorStore> = Arc::new(open().await);
        (cursors, ())
    });
}

mod holds {
    use super::*;
    use floe_promotion::state::HoldStore;

    floe_promotion::hold_conformance!(async {
        let holds: Arc<dyn HoldStore> = Arc::new(open().await);
        (holds, ())
    });
}

mod deliveries {
    use super::*;
    use floe_promotion::notify::DeliveryLog;

    floe_promotion::delivery_log_conformance!(async {
        let log: Arc<dyn DeliveryLog> = Arc::new(open().await);
        (log, ())
    });
}

mod revocations {
    use super::*;
    use floe_promotion::state::RevocationStore;

    floe_promotion::revocation_conformance!(async {
        let store: Arc<dyn RevocationStore> = Arc::new(open().await);
        (store, ())
    });
}
