#!/usr/bin/env bash
# Benchmarks promotion over real registries: floe-promotion-oci's OciRegistry beside
# `skopeo copy` doing the same operations against the same two docker-registry processes in
# the same run (retag, cross-repository mount, 256 MiB cross-registry copy with MiB/s), then
# the peak RSS of one 256 MiB copy per tool, measured in fresh processes. Prints a summary
# table with the ratios at the end. Extra arguments go to criterion (e.g. a filter).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/registry-deps.sh
cargo bench -p floe-promotion-oci --bench remote_promotion -- "$@"
