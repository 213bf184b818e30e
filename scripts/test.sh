#!/usr/bin/env bash
# Runs every test of the workspace: formatting, lints, unit, conformance, integration and
# end-to-end tests. Installs the system packages the registry tests need when they are missing
# (docker-registry, skopeo, apache2-utils); each registry test starts its own registry on a
# free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/registry-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
./scripts/deps-check.sh
cargo test --workspace
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
