#!/usr/bin/env bash
# One run of scripts/bench.sh, numbered N, each with its own fresh destination:
#   step.sh prepare MOVEMENT N        gives run N its destination (and floe its manifest and
#                                     state file)
#   step.sh command TOOL MOVEMENT N   prints run N's command: `floe promote` or `skopeo copy`,
#                                     which hyperfine starts itself, with no shell around it
# Movements:
#   retag   the small image, tags only, within one repository
#   mount   the big image to another repository of the same registry (blobs mounted)
#   stream  the big image to another registry (blobs streamed)
#   retag-new   the retag, into a state file the run creates
# Every movement but retag-new starts from a copy of an existing state file (made once by
# scripts/bench.sh, holding a few events), as a promotion does after a team's first one.
set -euo pipefail
w=$BENCH_WORK

# The source and destination repositories of run N of a movement.
where() { # movement n
    case $1 in
    retag|retag-new) src="$A/r$2/dev" dst="$A/r$2/dev" ;;
    mount)  src="$A/seed/big/dev" dst="$A/m$2/staging" ;;
    stream) src="$A/seed/big/dev" dst="$B/s$2/staging" ;;
    *) echo "step.sh: unknown movement $1" >&2; exit 2 ;;
    esac
}

case $1 in
prepare)
    m=$2 n=$3
    where "$m" "$n"
    # skopeo remembers where it saw each blob (containers/image's blob info cache) and mounts
    # it from there next time. Within one registry that is how it mounts from the source, so
    # it keeps that memory for `mount`; for `stream` it would mount from an earlier run's
    # destination in the other registry, so each stream run starts without it, as floe does.
    if [ "$m" = stream ]; then
        rm -f /var/lib/containers/cache/blob-info-cache-v1.* \
            "${XDG_DATA_HOME:-$HOME/.local/share}"/containers/cache/blob-info-cache-v1.* 2>/dev/null || true
    fi
    case $m in
    retag|retag-new)
        skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
            "docker://$A/seed/small/dev/app:v1" "docker://$src/app:v1" >/dev/null ;;
    esac
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
command)
    tool=$2 m=$3 n=$4
    where "$m" "$n"
    case $tool in
    floe)
        echo "$FLOE --manifest $w/floe-$n/manifest.yaml --state $w/floe-$n/state.db" \
            "promote app:v1 --from dev --to staging --actor bench" ;;
    skopeo)
        echo "skopeo copy -q --src-tls-verify=false --dest-tls-verify=false" \
            "docker://$src/app:v1 docker://$dst/app:v1-staging" ;;
    *) echo "step.sh: unknown tool $tool" >&2; exit 2 ;;
    esac
    ;;
*) echo "usage: step.sh prepare MOVEMENT N | step.sh command TOOL MOVEMENT N" >&2; exit 2 ;;
esac
