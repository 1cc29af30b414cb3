# shellcheck shell=bash
# dbcompare.sh - prove two PostgreSQL databases hold the same schema and data.
#
# Source this file (it sources pgcluster.sh from the same directory if
# pgc_psql is not yet defined). Functions:
#
#   db_fingerprint PORT DB
#       prints one line per item, tab separated:
#         table  <schema.table>  <rows>  <md5 of sorted per-row md5s>
#         lo_count  <n>
#         lo     <oid>  <md5 of content>
#         seq    <schema.seq>  <last_value>  <is_called>
#       Tables are all relkind 'r' (incl. partitions) outside system schemas.
#
#   db_compare PORT_A DB_A PORT_B DB_B
#       compares pg_dump --schema-only output and the fingerprints; returns 0
#       if equal, 1 if different (diff -u printed), 2 on error.

if ! declare -F pgc_psql >/dev/null 2>&1; then
    # shellcheck source=pgcluster.sh
    source "$(dirname -- "${BASH_SOURCE[0]}")/pgcluster.sh"
fi

# Session settings that make text output independent of server/client config.
_DBC_SETTINGS="SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres';
SET extra_float_digits = 1; SET bytea_output = 'hex'; SET search_path = pg_catalog;
SET statement_timeout = 0; SET lc_monetary = 'C';"

# Filter that names the user tables, sequences etc. (no pg_*/information_schema).
_DBC_NSFILTER="n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'"

db_fingerprint() {
    if [[ $# -ne 2 ]]; then
        echo "usage: db_fingerprint PORT DB" >&2
        return 2
    fi
    local port=$1 db=$2
    pgc_psql "$port" "$db" -q -A -t -F $'\t' <<SQL
$_DBC_SETTINGS
SELECT format(
  'SELECT %L, %L, count(*), md5(coalesce(string_agg(h, %L ORDER BY h), %L)) FROM (SELECT md5(t::text) AS h FROM %I.%I AS t) AS s',
  'table', format('%I.%I', n.nspname, c.relname), ',', '', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND $_DBC_NSFILTER
ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C"
\gexec
SELECT 'lo_count', count(*) FROM pg_largeobject_metadata;
SELECT 'lo', oid, md5(lo_get(oid)) FROM pg_largeobject_metadata ORDER BY oid;
SELECT format('SELECT %L, %L, last_value, is_called FROM %I.%I',
              'seq', format('%I.%I', n.nspname, c.relname), n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'S' AND $_DBC_NSFILTER
ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C"
\gexec
SQL
}

# pg_dump --schema-only with the version banner / restrict-key lines removed.
_dbc_schema_dump() {
    local port=$1 db=$2 out=$3 pg_dump
    pg_dump=$(pgc_bin pg_dump) || return 1
    "$pg_dump" --schema-only -h 127.0.0.1 -p "$port" -U postgres -d "$db" >"$out.raw" || return 1
    # Drop the version banner and, for pg_dump >= 15.14, the random
    # \restrict/\unrestrict key lines; nothing else is normalised.
    grep -v -E '^(-- Dumped (from database version|by pg_dump version) |\\(un)?restrict )' \
        "$out.raw" >"$out" || true
    rm -f -- "$out.raw"
}

db_compare() {
    if [[ $# -ne 4 ]]; then
        echo "usage: db_compare PORT_A DB_A PORT_B DB_B" >&2
        return 2
    fi
    local pa=$1 da=$2 pb=$3 db=$4 tmp rc=0
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/dbcompare.XXXXXX") || return 2
    local la="A:${pa}/${da}" lb="B:${pb}/${db}"

    if ! _dbc_schema_dump "$pa" "$da" "$tmp/schema.a" ||
       ! _dbc_schema_dump "$pb" "$db" "$tmp/schema.b"; then
        echo "db_compare: pg_dump --schema-only failed" >&2
        rm -rf -- "$tmp"
        return 2
    fi
    if ! db_fingerprint "$pa" "$da" >"$tmp/fp.a" ||
       ! db_fingerprint "$pb" "$db" >"$tmp/fp.b"; then
        echo "db_compare: fingerprint query failed" >&2
        rm -rf -- "$tmp"
        return 2
    fi

    local d
    if ! diff -u --label "schema $la" --label "schema $lb" \
            "$tmp/schema.a" "$tmp/schema.b" >"$tmp/schema.diff"; then
        echo "db_compare: SCHEMA DIFFERS ($la vs $lb):"
        head -n 200 -- "$tmp/schema.diff"
        rc=1
    fi
    if ! diff -u --label "data $la" --label "data $lb" \
            "$tmp/fp.a" "$tmp/fp.b" >"$tmp/fp.diff"; then
        echo "db_compare: DATA DIFFERS ($la vs $lb):"
        head -n 200 -- "$tmp/fp.diff"
        rc=1
    fi

    local ntab nrows nlo nseq
    ntab=$(awk -F'\t' '$1=="table"{n++} END{print n+0}' "$tmp/fp.a")
    nrows=$(awk -F'\t' '$1=="table"{n+=$3} END{printf "%d", n}' "$tmp/fp.a")
    nlo=$(awk -F'\t' '$1=="lo"{n++} END{print n+0}' "$tmp/fp.a")
    nseq=$(awk -F'\t' '$1=="seq"{n++} END{print n+0}' "$tmp/fp.a")
    if [[ $rc -eq 0 ]]; then
        d=equal
    else
        d=DIFFERENT
    fi
    echo "db_compare: $ntab tables, $nrows rows, $nlo large objects, $nseq sequences: $d"
    rm -rf -- "$tmp"
    return "$rc"
}
