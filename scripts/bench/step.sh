#!/usr/bin/env bash
# One step of scripts/bench.sh: `prepare MOVEMENT` gives the next run a fresh destination (and
# floe a fresh manifest and state file); `floe MOVEMENT` / `skopeo MOVEMENT` make the movement.
#   retag   the small image, tags only, within one repository
#   mount   the big image to another repository of the same registry (blobs mounted)
#   stream  the big image to another registry (blobs streamed)
#   retag-new   the retag, into a state file the run creates
# Every movement but retag-new starts from a copy of an existing state file (made once by
# scripts/bench.sh, holding a few events), as a promotion does after a team's first one.
set -euo pipefail
w=$BENCH_WORK
what=$1 m=$2
case $what in
prepare)
    n=$(($(<"$w/counter") + 1)); echo "$n" >"$w/counter"
    # skopeo remembers where it saw each blob (containers/image's blob info cache) and mounts
    # it from there next time. Within one registry that is how it mounts from the source, so
    # it keeps that memory for `mount`; for `stream` it would mount from an earlier run's
    # destination in the other registry, so each stream run starts without it, as floe does.
    if [ "$m" = stream ]; then
        rm -f /var/lib/containers/cache/blob-info-cache-v1.* \
            "${XDG_DATA_HOME:-$HOME/.local/share}"/containers/cache/blob-info-cache-v1.* 2>/dev/null || true
    fi
    case $m in
    retag|retag-new)  src="$A/r$n/dev" dst="$A/r$n/dev"
            skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
                "docker://$A/seed/small/dev/app:v1" "docker://$src/app:v1" >/dev/null ;;
    mount)  src="$A/seed/big/dev" dst="$A/m$n/staging" ;;
    stream) src="$A/seed/big/dev" dst="$B/s$n/staging" ;;
    esac
    echo "$src" >"$w/src"; echo "$dst" >"$w/dst"
    mkdir -p "$w/floe-$n"
    cat >"$w/floe-$n/manifest.yaml" <<YAML
artifacts:
  promotion:
    insecure_registries: ["$A", "$B"]
    environments:
      - name: dev
        repository: $src
      - name: staging
        repository: $dst
YAML
    if [ "$m" != retag-new ]; then
        for f in "$w"/template/state.db*; do cp "$f" "$w/floe-$n/"; done
        # On disk before the run, as an existing file is: else the run's first fsync would
        # also write out the copy.
        sync "$w/floe-$n"/state.db*
    fi
    ;;
floe)
    # `$(<file)` reads without starting a process: the timed wrapper costs both tools the
    # same (one shell start), and no more.
    n=$(<"$w/counter")
    exec "$FLOE" --manifest "$w/floe-$n/manifest.yaml" --state "$w/floe-$n/state.db" \
        promote app:v1 --from dev --to staging --actor bench ;;
skopeo)
    exec skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
        "docker://$(<"$w/src")/app:v1" "docker://$(<"$w/dst")/app:v1-staging" ;;
esac
