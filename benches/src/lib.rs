//! Criterion benchmarks of the workspace; see `benches/`. Nothing to use here.
