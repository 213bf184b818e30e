//! The delivery-cursor conformance suite against the in-memory cursors, through `Arc<dyn _>`.

use std::sync::Arc;

use floe_promotion::notify::{CursorStore, InMemoryCursors};

floe_promotion::cursor_conformance!(async {
    let cursors: Arc<dyn CursorStore> = Arc::new(InMemoryCursors::new());
    (cursors, ())
});
