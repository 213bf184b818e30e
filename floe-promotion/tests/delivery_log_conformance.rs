//! The delivery-log conformance suite against the in-memory log, through `Arc<dyn _>`.

use std::sync::Arc;

use floe_promotion::notify::{DeliveryLog, InMemoryDeliveryLog};

floe_promotion::delivery_log_conformance!(async {
    let log: Arc<dyn DeliveryLog> = Arc::new(InMemoryDeliveryLog::new());
    (log, ())
});
