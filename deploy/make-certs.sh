#!/usr/bin/env bash
# Makes a private CA and certificates for a pgship fleet with the openssl command line: one server
# certificate for the coordinator, and optional client certificates for agents (only needed when the
# coordinator sets tls_ca to require them). For tests and small fleets; use your own PKI where you
# have one. Keys are EC P-256, files mode 0600; nothing existing is overwritten: run it again with
# more --client names to add clients to the same CA.
#
# usage: deploy/make-certs.sh DIR [--server-name NAME]... [--client NAME]... [--days N]
#   DIR/ca.crt, DIR/ca.key                 the CA (keep ca.key offline)
#   DIR/coordinator.crt, coordinator.key    server certificate; names: localhost, 127.0.0.1 and
#                                           every --server-name (DNS names: mbedTLS matches only
#                                           DNS names, so agents must dial a name listed here)
#   DIR/NAME.crt, DIR/NAME.key              a client certificate per --client NAME
set -euo pipefail
umask 077

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
[ $# -ge 1 ] || { usage >&2; exit 2; }
case $1 in -h|--help) usage; exit 0 ;; esac
DIR=$1; shift
names=(localhost) clients=() days=825
while [ $# -gt 0 ]; do
    case $1 in
        --server-name) names+=("${2:?--server-name needs a value}"); shift 2 ;;
        --client) clients+=("${2:?--client needs a value}"); shift 2 ;;
        --days) days=${2:?--days needs a value}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "make-certs: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
valid_name() { [[ $1 =~ ^[A-Za-z0-9]([A-Za-z0-9.-]{0,61}[A-Za-z0-9])?$ ]]; }
for n in "${names[@]}" "${clients[@]}"; do
    valid_name "$n" || { echo "make-certs: \"$n\" is not a valid name" >&2; exit 2; }
done
mkdir -p "$DIR"
cd "$DIR"
refuse() { for f in "$@"; do [ ! -e "$f" ] || { echo "make-certs: $DIR/$f exists, not overwriting" >&2; exit 1; }; done; }

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ ! -e ca.crt ]; then
    refuse ca.key
    newkey ca.key
    openssl req -x509 -new -key ca.key -sha256 -days "$days" -subj "/CN=pgship test CA $(date -u +%Y%m%d%H%M%S)" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out ca.crt
fi

# sign NAME EXT...: NAME.key + NAME.crt signed by the CA, with the given extensions.
sign() {
    local name=$1; shift
    refuse "$name.key" "$name.crt"
    newkey "$name.key"
    local ext
    ext=$(mktemp)
    printf '%s\n' "$@" >"$ext"
    openssl req -new -key "$name.key" -subj "/CN=$name" -out "$name.csr"
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" \
        -sha256 -extfile "$ext" -out "$name.crt" 2>/dev/null
    rm -f "$name.csr" "$ext"
}

san="DNS:${names[0]}"
for n in "${names[@]:1}"; do san="$san,DNS:$n"; done
san="$san,IP:127.0.0.1"
if [ ! -e coordinator.crt ]; then
    sign coordinator "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" "subjectAltName=$san"
fi
for c in "${clients[@]}"; do
    sign "$c" "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=clientAuth" "subjectAltName=DNS:$c"
done
chmod 644 ca.crt coordinator.crt
for c in "${clients[@]}"; do chmod 644 "$c.crt"; done
echo "make-certs: wrote $DIR: ca.crt, coordinator.crt/.key (${names[*]}, 127.0.0.1)${clients:+, clients: ${clients[*]}}" >&2
