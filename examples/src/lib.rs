//! Runnable examples of embedding floe-promotion; see `examples/`.
