#!/usr/bin/env bash
# The quick start: a real promotion dev -> staging (automatic) -> prod of the demo artifact, with the
# environments in OCI image-layout directories and the state in SQLite. No server needed.
# Works in target/quickstart/ (a fresh copy each run); the checkout is not modified.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build --quiet -p floe-promotion-cli
floe="$root/target/debug/floe"

work="$root/target/quickstart"
rm -rf "$work"
mkdir -p "$work/registry"
cp examples/quickstart/manifest.yaml "$work/"
# CI pushed v1.0.0 of the demo artifact into dev.
mkdir -p "$work/registry/dev"
cp -r examples/quickstart/demo-artifact "$work/registry/dev/demo"
cd "$work"

run() { echo "\$ floe $*"; "$floe" "$@"; echo; }

run envs
run attest demo:v1.0.0 --env dev --kind tests --status passed --actor ci
run auto --dry-run --actor ci
# staging has auto_promote { from: dev, soak: 0s }: the pass promotes the attested release.
run auto --actor ci
run promote demo:v1.0.0 --from staging --to prod --actor release-manager --dry-run
run promote demo:v1.0.0 --from staging --to prod --actor release-manager
run status
run history --limit 10
run audit verify
echo "The environments are OCI layouts under $work/registry; for example:"
echo "  skopeo inspect oci:$work/registry/prod/demo:latest-prod"
