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
echo "setup: all dependencies are installed" >&2
