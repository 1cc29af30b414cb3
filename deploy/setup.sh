#!/usr/bin/env bash
# Installs everything pgship needs to build, test and run its demo on a fresh Debian 12 machine
# (as root). Skips apt entirely when every package is already installed.
set -euo pipefail

PACKAGES=(
    build-essential cmake pkg-config git ca-certificates
    clang libclang-rt-14-dev                       # libFuzzer targets and sanitizer runtimes
    libpq-dev libnng-dev libcurl4-openssl-dev libssl-dev libsodium-dev libarchive-dev libzstd-dev
    libsqlite3-dev libjansson-dev libinih-dev libcmocka-dev
    postgresql postgresql-client zstd
    procps time util-linux coreutils tar           # pgrep, /usr/bin/time, runuser: tests, benchmark
    nodejs python3-botocore rclone curl            # storage test: s3rver, SigV4 proxy, S3 client
    pgbackrest jq sqlite3 openssl                  # ship_bench baseline; fleet.sh (jq); fleet_ship (sqlite3); certs
    chromium                                       # status_page test: the page in headless Chromium
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: these packages are missing and installing them needs root: ${missing[*]}" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# npm: Debian's package, unless the installed Node.js brings its own (NodeSource's does, and
# conflicts with Debian's npm).
if ! command -v npm >/dev/null; then
    echo "setup: installing npm" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
# s3rver, the S3 stand-in of the storage integration test, in a project-local directory.
S3RVER_DIR="$(cd "$(dirname "$0")" && pwd)/.npm"
if [ ! -x "$S3RVER_DIR/node_modules/.bin/s3rver" ]; then
    echo "setup: installing s3rver into $S3RVER_DIR" >&2
    mkdir -p "$S3RVER_DIR"
    npm install --prefix "$S3RVER_DIR" --no-audit --no-fund --loglevel=error s3rver@3.7.1 >/dev/null
fi
echo "setup: all dependencies are installed" >&2
