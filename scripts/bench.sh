#!/usr/bin/env bash
# Whole-process benchmark: `floe promote` beside `skopeo copy` doing the same movement against
# the same local docker-registry processes in the same run, then the in-process criterion
# figures. Prints the README's table with ratios.
#
#   ./scripts/bench.sh              # everything (the criterion SQLite benchmark at 1M events
#                                   # takes several minutes)
#   QUICK=1 ./scripts/bench.sh      # whole-process table only
#   ROUNDS=5 RUNS=4 ./scripts/bench.sh
#   WARMUP=150 ./scripts/bench.sh   # untimed retags per tool before anything is timed
#
# Each movement is timed with hyperfine in ROUNDS rounds of RUNS runs per tool, the tools
# alternating round by round, so the two see the same machine; a run's `--prepare` gives it a
# fresh destination (and floe its own copy of an existing state file, or for retag-new no
# state file at all), so every run does the real work. hyperfine starts each tool itself, with
# no shell around it: the time is the command's, as a user runs it. The ratio
# is floe's median over skopeo's. Peak memory is `/usr/bin/time -v`'s maximum
# resident set size of one 256 MiB cross-registry copy per tool.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

ROUNDS=${ROUNDS:-5}
RUNS=${RUNS:-4}
BIG_MIB=${BIG_MIB:-256}
WARMUP=${WARMUP:-150}

./scripts/registry-deps.sh
missing=()
command -v hyperfine >/dev/null 2>&1 || missing+=(hyperfine)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    echo "bench: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" \
        || { "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; }
fi

# The binary as built for use: the dist profile (workspace Cargo.toml).
cargo build --profile dist --quiet -p floe-promotion-cli
export FLOE=$root/target/dist/floe

work=$(mktemp -d)
export BENCH_WORK=$work
# start_registry runs in a command substitution (a subshell): each registry's pid goes to a
# file, so that the cleanup can stop it.
cleanup() {
    for f in "$work"/*/pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_registry() { # name -> host:port
    local name=$1 port; port=$(free_port)
    mkdir -p "$work/$name"
    cat >"$work/$name/config.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/$name/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
YAML
    docker-registry serve "$work/$name/config.yml" >"$work/$name/log" 2>&1 &
    echo $! >"$work/$name/pid"
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && { echo "127.0.0.1:$port"; return; }
        sleep 0.1
    done
    echo "bench: registry $name did not start" >&2; exit 1
}
export A; A=$(start_registry a)
export B; B=$(start_registry b)

# Fixtures: a small image (the quick start's demo artifact) and one with a BIG_MIB layer.
copy() { skopeo copy -q --src-tls-verify=false --dest-tls-verify=false "$@" >/dev/null; }
copy oci:examples/quickstart/demo-artifact:v1.0.0 "docker://$A/seed/small/dev/app:v1"
python3 "$root/scripts/bench/make_image.py" "$work/big-layout" "$BIG_MIB"
copy "oci:$work/big-layout:v1" "docker://$A/seed/big/dev/app:v1"
# The fixtures left hundreds of MiB to write back; a registry's fsync of a tag would wait
# behind them. Written out before anything is timed.
sync

# The existing state file each run but retag-new starts from: created by a first command and
# holding a few events, as a team's state file does after its first promotion.
mkdir -p "$work/template"
cat >"$work/template/manifest.yaml" <<YAML
artifacts:
  promotion:
    insecure_registries: ["$A"]
    environments:
      - name: dev
        repository: $A/template/dev
      - name: staging
        repository: $A/template/staging
YAML
for cmd in lock unlock; do
    "$FLOE" --manifest "$work/template/manifest.yaml" --state "$work/template/state.db" \
        "$cmd" staging --reason "bench template" --actor bench >/dev/null
done

echo 0 >"$work/counter"
# The numbers of the next COUNT runs, "a,b,c": each run has its own fresh destination.
next_runs() { # count
    local first; first=$(($(<"$work/counter") + 1))
    echo $((first + $1 - 1)) >"$work/counter"
    seq -s, "$first" $((first + $1 - 1))
}
step=$root/scripts/bench/step.sh
# One run of TOOL's MOVEMENT on a fresh destination, untimed.
untimed() { # tool movement
    local n cmd
    n=$(next_runs 1)
    "$step" prepare "$2" "$n"
    read -ra cmd <<<"$("$step" command "$1" "$2" "$n")"
    "${cmd[@]}" >/dev/null
}
run_pair() { # movement
    local m=$1
    # Two untimed runs of each tool first (hyperfine's warm-up, on destinations of their
    # own), so that neither is timed against registries and caches still warming up.
    for tool in floe skopeo; do untimed "$tool" "$m"; untimed "$tool" "$m"; done
    for r in $(seq "$ROUNDS"); do
        if [ $((r % 2)) -eq 1 ]; then order=(floe skopeo); else order=(skopeo floe); fi
        for tool in "${order[@]}"; do
            # One run per number; hyperfine substitutes {n} in the preparation and the command.
            hyperfine -N --style none --runs 1 --parameter-list n "$(next_runs "$RUNS")" \
                --prepare "$step prepare $m {n}" \
                "$("$step" command "$tool" "$m" '{n}')" \
                --export-json "$work/$m-$tool-$r.json" >/dev/null
        done
    done
}
# Registries just started answer more slowly for their first few hundred requests: on a fresh
# pair, floe's retag went from 15.7 to 12.5 ms over about 300 runs of each tool, skopeo's from
# 24.9 to 23.2 ms. Both tools make WARMUP untimed retags first, so that what is timed is the
# registries' steady state, as a registry that has been running meets it.
echo "bench: warming the registries up ($WARMUP retags per tool)" >&2
for _ in $(seq "$WARMUP"); do untimed floe retag; untimed skopeo retag; done
for m in retag retag-new mount stream; do
    echo "bench: timing $m ($ROUNDS rounds x $RUNS runs per tool)" >&2
    run_pair "$m"
done

# Peak memory of one cross-registry copy per tool.
for tool in floe skopeo; do
    n=$(next_runs 1)
    "$step" prepare stream "$n"
    read -ra cmd <<<"$("$step" command "$tool" stream "$n")"
    /usr/bin/time -v "${cmd[@]}" 2>"$work/rss-$tool.txt" >/dev/null
done

python3 "$root/scripts/bench/report.py" "$work" "$BIG_MIB"

if [ -z "${QUICK:-}" ]; then
    echo
    echo "In process (criterion; medians in target/criterion):"
    cargo bench --quiet -p floe-benches --bench promotion -- --noplot 2>/dev/null | grep -E "^[a-z_/]+ +time:|thrpt:" || true
    cargo bench --quiet -p floe-promotion-sqlite --bench sqlite -- --noplot 2>/dev/null | grep -E "^[a-z_0-9/]+ +time:|thrpt:" || true
fi
