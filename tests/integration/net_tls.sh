#!/usr/bin/env bash
# Runs net_tls_test against two CAs made by deploy/make-certs.sh in a temporary directory.
# usage: net_tls.sh BINDIR
set -euo pipefail
BIN=$(cd "${1:?usage: net_tls.sh BINDIR}" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR=$(mktemp -d /tmp/pgship-net.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
"$ROOT/deploy/make-certs.sh" "$DIR/a" --client agent1 2>/dev/null
"$ROOT/deploy/make-certs.sh" "$DIR/b" --client agent1 2>/dev/null
"$BIN/net_tls_test" "$DIR"
