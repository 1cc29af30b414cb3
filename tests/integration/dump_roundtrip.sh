#!/usr/bin/env bash
# Integration test of the archive: a throwaway PostgreSQL 15 cluster on loopback, the fixture
# database, pgship-agent dump in both formats, pgship decrypt, stock pg_restore, and equality by
# schema dump, row counts and content checksums. Then the failures a user meets: an unreachable
# database, no suitable pg_dump, a bad recipient, pg_dump failing mid-way, a signal mid-dump, a
# tampered, truncated or foreign archive; each must fail clearly and leave nothing behind.
#
# usage: dump_roundtrip.sh BINDIR     (BINDIR holds pgship and pgship-agent)
set -euo pipefail

BIN=$(cd "${1:?usage: dump_roundtrip.sh BINDIR}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib/pgcluster.sh"
source "$HERE/lib/dbcompare.sh"
PGBIN=${PGC_BINDIR:-/usr/lib/postgresql/15/bin}

WORK=$(mktemp -d /tmp/pgship-it.XXXXXX)
chmod 755 "$WORK"
cleanup() { pgc_destroy "$WORK/pg" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

source "$HERE/lib/check.sh"
# no_leftovers DIR: no temporary output and no spool directory remain in DIR.
no_leftovers() { ! ls -A "$1" | grep -q -E '^\..*\.tmp-|^pgship-dump-'; }

cd "$WORK"
PORT=$(pgc_free_port)
pgc_start "$WORK/pg" "$PORT" >/dev/null
pgc_psql "$PORT" postgres -q -c "CREATE DATABASE src"
pgc_psql "$PORT" src -q -f "$HERE/sql/fixture.sql" >/dev/null
SRC=$(pgc_conninfo "$PORT" src)
restore() { # restore DUMP DB [pg_restore args]
    local dump=$1 db=$2; shift 2
    pgc_psql "$PORT" postgres -q -c "CREATE DATABASE \"$db\""
    "$PGBIN/pg_restore" -h 127.0.0.1 -p "$PORT" -U postgres -d "$db" --exit-on-error "$@" "$dump"
}

"$BIN/pgship" keygen ops 2>/dev/null
"$BIN/pgship" keygen dr 2>/dev/null
"$BIN/pgship" keygen stranger 2>/dev/null
check "keygen writes ops.key with mode 0600" test "$(stat -c %a ops.key)" = 600
expect_fail "keygen refuses to overwrite" "refusing to overwrite" "$BIN/pgship" keygen ops

# --- custom format, two recipients, small parts so that several members are joined back
"$BIN/pgship-agent" dump --dbname "$SRC" --recipient ops.pub --recipient dr.pub \
    --part-size 1M -o custom.pgship 2>agent.err
check "custom dump reports the pg_dump it used" grep -q "with $PGBIN/pg_dump" agent.err
check "custom dump prints a summary with the archive's sha256" grep -q -E "sha256 [0-9a-f]{64}" agent.err
"$BIN/pgship" decrypt --key dr.key custom.pgship --list --json >list.json
check "--list with the second recipient's key shows the manifest" \
    grep -q '"database": "src"' list.json
check "--list names both recipients" test "$(grep -c '"key_id"' list.json)" -eq 2
"$BIN/pgship" decrypt --key ops.key custom.pgship --extract x_custom 2>/dev/null
check "custom extract joins the parts into dump.pgdump" test -s x_custom/dump.pgdump
restore x_custom/dump.pgdump dst_custom
check "custom round trip is equal (schema, counts, checksums)" db_compare "$PORT" src "$PORT" dst_custom

# --- directory format, parallel, with globals
"$BIN/pgship-agent" dump -d "$SRC" -r ops.pub -F directory -j 2 --globals --spool-dir "$WORK" \
    -o dir.pgship 2>/dev/null
check "directory dump leaves no spool directory" no_leftovers "$WORK"
"$BIN/pgship" decrypt -k ops.key dir.pgship -x x_dir 2>/dev/null
check "directory extract has toc.dat" test -f x_dir/dump/toc.dat
check "globals.sql holds the roles" grep -q "CREATE ROLE postgres" x_dir/globals.sql
restore x_dir/dump dst_dir -j 2
check "directory round trip is equal" db_compare "$PORT" src "$PORT" dst_dir

# --- the plain tar route: archive on stdout, decrypt to a tar, stock tar and sha256sum
"$BIN/pgship-agent" dump -d "$SRC" -r ops.pub -o - 2>/dev/null >stdout.pgship
mkdir plain && "$BIN/pgship" decrypt -k ops.key <stdout.pgship | tar -x -C plain
check "stock sha256sum verifies SHA256SUMS" bash -c "cd plain && sha256sum --quiet -c SHA256SUMS"
cat plain/dump/part-* >plain/dump.pgdump
restore plain/dump.pgdump dst_plain
check "plain tar route round trip is equal" db_compare "$PORT" src "$PORT" dst_plain

# --- the dump job streaming into a sink, as the agent daemon uses it
check "dump into a sink: result matches the bytes received, which decrypt" \
    "$BIN/dump_sink_check" "$SRC" "$WORK/ops.pub" "$WORK/ops.key"

# --- table selection is passed to pg_dump
"$BIN/pgship-agent" dump -d "$SRC" -r ops.pub -T 'shop.*' -o notshop.pgship 2>/dev/null
"$BIN/pgship" decrypt -k ops.key notshop.pgship -x x_notshop 2>/dev/null
check "--exclude-table keeps the shop tables out" \
    bash -c "! '$PGBIN/pg_restore' -l x_notshop/dump.pgdump | grep -q 'TABLE DATA shop '"

# --- failures that must leave nothing behind
expect_fail "unreachable database: libpq's message" "cannot connect to the database: .*refused" \
    "$BIN/pgship-agent" dump -d "host=127.0.0.1 port=1 dbname=x" -r ops.pub -o unreachable.pgship
check "unreachable database: no output file" test ! -e unreachable.pgship
mkdir emptybin
expect_fail "no suitable pg_dump: says where it looked" "no pg_dump of major version 15 or later found; looked in $WORK/emptybin" \
    "$BIN/pgship-agent" dump -d "$SRC" -r ops.pub -o nopgdump.pgship --pg-bindir "$WORK/emptybin"
expect_fail "a secret key as recipient is refused" "a public key is needed here" \
    "$BIN/pgship-agent" dump -d "$SRC" -r ops.key -o badrcpt.pgship
printf 'hello\n' >junk.pub
expect_fail "a recipient that is not a key is refused" "not a pgship key" \
    "$BIN/pgship-agent" dump -d "$SRC" -r junk.pub -o badrcpt.pgship
check "bad recipient: no output file" test ! -e badrcpt.pgship
expect_fail "an existing output is kept without --force" "exists; use --force" \
    "$BIN/pgship-agent" dump -d "$SRC" -r ops.pub -o custom.pgship
before=$(sha256sum custom.pgship)
check "the existing output is untouched" test "$before" = "$(sha256sum custom.pgship)"

# pg_dump failing mid-way: a non-superuser owner, whose table under FORCE ROW LEVEL SECURITY makes
# pg_dump stop after it has already streamed the data of the tables before it.
pgc_psql "$PORT" postgres -q -c "CREATE ROLE dumper LOGIN" -c "CREATE DATABASE rls OWNER dumper"
pgc_psql "$PORT" rls -q -U dumper -c "CREATE TABLE aaa AS SELECT g, md5(g::text) AS t FROM generate_series(1, 200000) g" \
    -c "CREATE TABLE zzz (id int)" -c "INSERT INTO zzz VALUES (1)" \
    -c "ALTER TABLE zzz ENABLE ROW LEVEL SECURITY" -c "ALTER TABLE zzz FORCE ROW LEVEL SECURITY" \
    -c "CREATE POLICY p ON zzz USING (id > 0)"
RLS="host=127.0.0.1 port=$PORT user=dumper dbname=rls"
expect_fail "pg_dump failing mid-way: its stderr is shown" "row-level security" \
    "$BIN/pgship-agent" dump -d "$RLS" -r ops.pub --part-size 64K -o midway.pgship
check "pg_dump failing mid-way: no output file, no temporary file" \
    bash -c "test ! -e midway.pgship && ! ls -A | grep -q '\.tmp-'"
pgc_psql "$PORT" rls -q -U dumper -c "DROP TABLE zzz"
"$BIN/pgship-agent" dump -d "$RLS" -r ops.pub --globals -o rlsglobals.pgship 2>rlsglobals.err
check "--globals as a non-superuser: warns, goes on without role passwords" \
    grep -q "globals are dumped without role passwords" rlsglobals.err
check "--globals as a non-superuser still writes the archive" test -s rlsglobals.pgship

# A signal mid-dump: slow the archive down with zstd level 19 so the signal lands mid-way.
mkdir spool
# (directory at 0.2 s lands while pg_dump -Fd is still writing the spool, at 1.5 s while archiving)
for case in custom:1 directory:0.2 directory:1.5; do
    fmt=${case%:*}
    "$BIN/pgship-agent" dump -d "$SRC" -r ops.pub -F "$fmt" -Z 19 --compress-threads 0 \
        --spool-dir "$WORK/spool" -o "sig_$fmt.pgship" 2>/dev/null &
    pid=$!
    sleep "${case#*:}"
    kill -TERM "$pid"
    rc=0; wait "$pid" || rc=$?
    check "SIGTERM mid-dump ($case) exits 143" test "$rc" -eq 143
    check "SIGTERM mid-dump ($case): no output, no temporary file, spool empty" \
        bash -c "test ! -e sig_$fmt.pgship && ! ls -A | grep -q '\.tmp-' && test -z \"\$(ls -A spool)\""
done
check "SIGTERM mid-dump: no pg_dump left running" bash -c "! pgrep -x pg_dump >/dev/null"

# pgship decrypt stalled on its input (a FIFO fed half an archive) stops on SIGTERM and removes
# the directory it was extracting into.
mkfifo stall.fifo
"$BIN/pgship" decrypt -k ops.key stall.fifo -x x_stalled 2>/dev/null &
pid=$!
exec 3>stall.fifo
head -c 3000000 custom.pgship >&3
sleep 1
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
exec 3>&-
check "SIGTERM to a stalled decrypt exits 143" test "$rc" -eq 143
check "SIGTERM to a stalled decrypt removes its extract directory" test ! -e x_stalled

# --- archives that must be refused
size=$(stat -c %s custom.pgship)
cp custom.pgship tampered.pgship
printf '\x55' | dd of=tampered.pgship bs=1 seek=$((size / 2)) conv=notrunc status=none
expect_fail "a modified byte is refused" "failed authentication|modified" \
    "$BIN/pgship" decrypt -k ops.key tampered.pgship -x x_tampered
check "a refused extract leaves no directory" test ! -e x_tampered
head -c $((size - 100)) custom.pgship >truncated.pgship
expect_fail "a truncated archive is refused" "truncated archive" \
    "$BIN/pgship" decrypt -k ops.key truncated.pgship -o truncated.tar
check "a refused -o leaves no file" test ! -e truncated.tar
ops_id=$(grep -o 'key id [0-9a-f]*' ops.pub | cut -d' ' -f3)
expect_fail "a key that is not a recipient: names the recipients" "sealed to key ids .*$ops_id" \
    "$BIN/pgship" decrypt -k stranger.key custom.pgship --list
expect_fail "not an archive" "not a pgship archive" "$BIN/pgship" decrypt -k ops.key junk.pub --list

check_summary dump_roundtrip
