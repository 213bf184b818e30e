#!/usr/bin/env bash
# Installs the system packages the registry tests and benchmarks need, when any is missing:
#   docker-registry  the CNCF distribution registry 2.8 (/usr/bin/docker-registry)
#   skopeo           an independent registry client, to push fixtures and check digests
#   apache2-utils    htpasswd -B, for the registry with Basic auth
#   sqlite3          the sqlite3 shell, with which tamper tests edit state files behind floe's back
#   postgresql       initdb and postgres, for the throwaway server of the PostgreSQL store's tests
#   python3-cryptography  an independent checker of floe's DSSE-signed attestations
#   chromium, chromium-driver  headless Chromium and chromedriver, for the dashboard's browser test
#   openssh-client   ssh-keygen and ssh-agent: keys, signatures and an independent check of signed votes
#   time             GNU time (/usr/bin/time): the peak memory of floe runs fed hostile input
# Idempotent and quick when everything is installed.
set -euo pipefail

missing=()
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
[ -x /usr/bin/time ] || missing+=(time)
python3 -c 'import cryptography' >/dev/null 2>&1 || missing+=(python3-cryptography)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
# Debian keeps the server binaries in /usr/lib/postgresql/<version>/bin, off PATH.
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    missing+=(postgresql)
fi
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "registry-deps: missing ${missing[*]}; run as root or install sudo" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "registry-deps: installing ${missing[*]}" >&2
if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
    "${sudo[@]}" apt-get update
    "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi
