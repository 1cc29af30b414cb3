#!/usr/bin/env bash
# The example sanitization profile (deploy/profiles/app-anonymize) proved on a real PostgreSQL 15
# cluster, with the realistic application database (tests/integration/sql/app.sql, 30000 users by
# default). No pgship binary is involved: this is the SQL the agent runs, run the way the agent
# runs it (sanitize.sql in one transaction, stopping at the first error; every row a check query
# returns is a failure).
#
#   app.sql is deterministic (two loads, same content)
#   the profile's files are plain SQL the agent can run (no BEGIN/COMMIT, no psql meta-commands,
#   a semicolon only at the end of a statement)
#   every check query finds rows in the production data (so each one can fail)
#   sanitize.sql in one transaction; then: no check query returns a row, per-table row counts are
#   unchanged, every foreign key re-validates, e-mails are unique, the trigger it switched off is
#   on again, the dummy password hash is bcrypt of "staging-password"
#   deterministic: two copies sanitized separately are equal (schema dump and content checksums)
#   equal values stay equal (cards, accounts): the grouping of payments is unchanged
#   nothing survives: no original e-mail, phone, IBAN, card fingerprint, street, name or password
#   hash anywhere in the sanitized data (anti-joins, and a grep of the data-only dump); every date
#   of birth moved by 1 to 180 days
#   a sanitize.sql that fails at its end changes nothing (one transaction)
#   the catch-all check finds an e-mail address in a column the profile does not know
#
# usage: profile_check.sh [BINDIR]   (BINDIR is accepted like the other integration tests' and
#        not used). APP_USERS=N loads app.sql with users=N (default 30000); KEEP=1 keeps the work
#        directory (the cluster is stopped all the same).
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PROFILE=$ROOT/deploy/profiles/app-anonymize
APP_SQL=$HERE/sql/app.sql
USERS=${APP_USERS:-30000}
source "$HERE/lib/pgcluster.sh"
source "$HERE/lib/dbcompare.sh"

WORK=$(mktemp -d /tmp/pgship-profile.XXXXXX)
chmod 755 "$WORK"
source "$HERE/lib/check.sh"
cleanup() {
    pgc_stop "$WORK/pg" >/dev/null 2>&1 || true
    if [ -n "${KEEP:-}" ]; then
        echo "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
cd "$WORK"

PORT=$(pgc_free_port)
pgc_start "$WORK/pg" "$PORT" >/dev/null
q() { pgc_psql "$PORT" "$1" -Atq -c "$2"; } # q DB SQL: the result, unaligned
secs() { python3 -c 'import sys, time; print("%.2f" % (time.time() - float(sys.argv[1])))' "$1"; }
now() { date +%s.%N; }
# sanitize DB [FILE]: as the agent runs it, one transaction, stopping at the first error
sanitize() { pgc_psql "$PORT" "$1" -q --single-transaction -f "${2:-$PROFILE/sanitize.sql}" >/dev/null; }

# split_sql FILE PREFIX: each statement of FILE (whole-line comments dropped, the final semicolon
# removed) into PREFIX.01.sql, PREFIX.02.sql, ...; prints how many. It relies on the rule the
# profile's files keep: a semicolon only at the end of a line that ends a statement.
split_sql() {
    awk -v out="$2" '
        /^[ \t]*--/ { next }
        { buf = buf $0 "\n" }
        /;[ \t]*$/ { n++; f = sprintf("%s.%02d.sql", out, n); sub(/;[ \t]*\n$/, "\n", buf)
                     printf "%s", buf > f; close(f); buf = "" }
        END { print n + 0 }' "$1"
}
# rows_of DB STMTFILE: how many rows the statement returns
rows_of() { { echo "SELECT count(*) FROM ("; cat "$2"; echo ") AS q"; } | pgc_psql "$PORT" "$1" -Atq; }

# ===================== the application database =====================
pgc_psql "$PORT" postgres -q -c "CREATE DATABASE prod" -c "CREATE DATABASE prod2"
t=$(now)
pgc_psql "$PORT" prod -q -v users="$USERS" -f "$APP_SQL" >/dev/null
LOAD_S=$(secs "$t")
echo "app.sql (users=$USERS) loaded in $LOAD_S s"
pgc_psql "$PORT" prod2 -q -v users="$USERS" -f "$APP_SQL" >/dev/null
db_fingerprint "$PORT" prod >prod.fp
db_fingerprint "$PORT" prod2 >prod2.fp
check "app.sql is deterministic: two loads have the same content" cmp -s prod.fp prod2.fp
pgc_psql "$PORT" postgres -q -c "DROP DATABASE prod2"
check "app.users has $USERS rows" test "$(q prod "SELECT count(*) FROM app.users")" = "$USERS"
awk -F'\t' '$1 == "table" { printf "  %-18s %8d rows\n", $2, $3 }' prod.fp
check "every table of app has rows" \
    test "$(awk -F'\t' '$1 == "table" && $3 > 0' prod.fp | wc -l)" -eq 5
check "the view, the trigger and the sequence are there" \
    test "$(q prod "SELECT to_regclass('app.customer_summary') IS NOT NULL
                    AND to_regclass('app.invoice_no_seq') IS NOT NULL
                    AND EXISTS (SELECT FROM pg_trigger WHERE tgname = 'users_set_updated_at')")" = t

# ===================== the profile's files =====================
check "sanitize.sql has no psql meta-command" bash -c "! grep -n -E '^[[:space:]]*\\\\' '$PROFILE/sanitize.sql'"
check "check.sql has no psql meta-command" bash -c "! grep -n -E '^[[:space:]]*\\\\' '$PROFILE/check.sql'"
check "sanitize.sql opens or ends no transaction and runs no VACUUM (the agent wraps it)" \
    bash -c "! grep -v -E '^[[:space:]]*--' '$PROFILE/sanitize.sql' | grep -q -i -E '(^|;)[[:space:]]*(BEGIN|COMMIT|ROLLBACK|START[[:space:]]+TRANSACTION|SAVEPOINT|VACUUM)\\b'"
check "sanitize.sql and check.sql have a semicolon only at the end of a line" \
    bash -c "! grep -h ';' '$PROFILE/sanitize.sql' '$PROFILE/check.sql' | grep -q -v ';[[:space:]]*\$'"
check "profile.ini has a [profile] section with a description" \
    bash -c "grep -q '^\[profile\]' '$PROFILE/profile.ini' && grep -q -E '^description = .+' '$PROFILE/profile.ini'"
check "profile.ini keeps sanitizer and sanitizer_database commented out" \
    bash -c "! grep -q -E '^[[:space:]]*sanitizer' '$PROFILE/profile.ini'"

NCHECK=$(split_sql "$PROFILE/check.sql" chk)
check "check.sql holds several queries ($NCHECK)" test "$NCHECK" -ge 8
for f in chk.*.sql; do
    n=$(rows_of prod "$f")
    what=$(grep -m1 -o -E "'([^']|'')*' AS problem" "$f" | sed "s/' AS problem//; s/^'//; s/''/'/g")
    check "on production data, check ${f#chk.} finds rows ($n: ${what:0:60})" test "$n" -gt 0
done
pgc_psql "$PORT" prod -Atq -f "$PROFILE/check.sql" >prod.check
check "check.sql as one file prints offending rows on production data ($(wc -l <prod.check))" test -s prod.check
check "... naming rows by id, never by the value (no e-mail address in its output)" \
    bash -c "! grep -o -E '[^[:space:]|<>]+@[a-z0-9.-]+\\.[a-z]{2,}' prod.check | grep -q -v '@example\\.invalid\$'"

# ===================== sanitize two copies =====================
pgc_psql "$PORT" postgres -q -c "CREATE DATABASE a TEMPLATE prod" -c "CREATE DATABASE b TEMPLATE prod" \
    -c "CREATE DATABASE c TEMPLATE prod"
q a "SELECT count(*) FROM app.users" >/dev/null # the copy's first read sets hint bits: not timed
t=$(now)
sanitize a
SAN_S=$(secs "$t")
ok "sanitize.sql ran in one transaction in $SAN_S s"
# b in one session with a question at the end: are the helpers gone from pg_temp?
check "sanitize.sql leaves no helper function behind in pg_temp" \
    test "$(pgc_psql "$PORT" b -Atq --single-transaction -f "$PROFILE/sanitize.sql" \
            -c "SELECT count(*) FROM pg_proc WHERE pronamespace = pg_my_temp_schema()" | tail -n 1)" = 0
t=$(now)
pgc_psql "$PORT" a -Atq -f "$PROFILE/check.sql" >a.check
CHECK_S=$(secs "$t")
check "after sanitization check.sql prints nothing (ran in $CHECK_S s)" test ! -s a.check
for f in chk.*.sql; do
    check "after sanitization check ${f#chk.} returns no row" test "$(rows_of a "$f")" = 0
done

db_fingerprint "$PORT" a >a.fp
rowcounts() { awk -F'\t' '$1 == "table" { print $2, $3 }' "$1"; }
check "per-table row counts are unchanged" cmp -s <(rowcounts prod.fp) <(rowcounts a.fp)
check "the content did change" bash -c "! cmp -s prod.fp a.fp"
check "sequences are unchanged" cmp -s <(grep '^seq' prod.fp) <(grep '^seq' a.fp)

# every foreign key, re-added as a copy (which checks every row), in a transaction rolled back
nfk=$(q a "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'app'::regnamespace")
check "app has its 5 foreign keys" test "$nfk" = 5
check "every foreign key still holds (each re-added and validated over all rows)" \
    pgc_psql "$PORT" a -q -o /dev/null <<'SQL'
BEGIN;
SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname || '_recheck',
              pg_get_constraintdef(oid))
FROM pg_constraint WHERE contype = 'f' AND connamespace = 'app'::regnamespace
\gexec
ROLLBACK;
SQL
check "no order, address or payment lost its user or order (anti-joins)" \
    test "$(q a "SELECT (SELECT count(*) FROM app.orders o WHERE NOT EXISTS (SELECT FROM app.users u WHERE u.id = o.user_id))
                    + (SELECT count(*) FROM app.addresses a WHERE NOT EXISTS (SELECT FROM app.users u WHERE u.id = a.user_id))
                    + (SELECT count(*) FROM app.payments p WHERE NOT EXISTS (SELECT FROM app.orders o WHERE o.id = p.order_id))
                    + (SELECT count(*) FROM app.order_items i WHERE NOT EXISTS (SELECT FROM app.orders o WHERE o.id = i.order_id))")" = 0
check "e-mails are still unique, also ignoring case" \
    test "$(q a "SELECT count(*) - count(DISTINCT lower(email)) FROM app.users")" = 0
check "the updated_at trigger is enabled again" \
    test "$(q a "SELECT tgenabled FROM pg_trigger WHERE tgname = 'users_set_updated_at'")" = O
check "updated_at is as it was (the trigger did not stamp the clock)" \
    test "$(q a "SELECT md5(string_agg(coalesce(updated_at::text, '-'), ',' ORDER BY id)) FROM app.users")" = \
         "$(q prod "SELECT md5(string_agg(coalesce(updated_at::text, '-'), ',' ORDER BY id)) FROM app.users")"
check "the view still answers" test "$(q a "SELECT count(*) FROM app.customer_summary")" = "$USERS"

# ===================== deterministic =====================
check "deterministic: two copies sanitized apart are equal (schema and content)" \
    db_compare "$PORT" a "$PORT" b
# equal values stay equal: payments grouped by card (and by account) form the same groups
groups() { # DB COLUMN: the md5 of the groups of payment ids sharing a value of COLUMN
    q "$1" "SELECT md5(string_agg(g, ';' ORDER BY g)) FROM (SELECT string_agg(id::text, ',' ORDER BY id) AS g
            FROM app.payments WHERE $2 IS NOT NULL GROUP BY $2) AS s"
}
check "payments grouped by card fingerprint form the same groups" test "$(groups a card_fingerprint)" = "$(groups prod card_fingerprint)"
check "payments grouped by IBAN form the same groups" test "$(groups a iban)" = "$(groups prod iban)"
check "payments grouped by card holder are the users' own (one holder per user)" \
    test "$(q a "SELECT count(*) FROM (SELECT o.user_id FROM app.payments p JOIN app.orders o ON o.id = p.order_id
                 WHERE p.card_holder IS NOT NULL GROUP BY o.user_id HAVING count(DISTINCT p.card_holder) > 1) AS s")" = 0

# ===================== nothing survives =====================
# A grep of the sanitized data-only dump for every original value (fixed strings).
PG_DUMP=$(pgc_bin pg_dump)
"$PG_DUMP" -h 127.0.0.1 -p "$PORT" -U postgres --data-only -d a -f a.data.sql
q prod "SELECT email FROM app.users UNION ALL SELECT phone FROM app.users WHERE phone IS NOT NULL
        UNION ALL SELECT iban FROM app.payments WHERE iban IS NOT NULL
        UNION ALL SELECT DISTINCT card_fingerprint FROM app.payments WHERE card_fingerprint IS NOT NULL
        UNION ALL SELECT DISTINCT password_hash FROM app.users" >prod.secrets
check "no original e-mail, phone, IBAN, card fingerprint or password hash in the sanitized dump ($(wc -l <prod.secrets) values)" \
    bash -c "! grep -q -F -f prod.secrets a.data.sql"
check "... and the grep does find them in the production dump (the test can fail)" \
    bash -c "'$PG_DUMP' -h 127.0.0.1 -p $PORT -U postgres --data-only -d prod | grep -q -F -f prod.secrets"

# The sanitized users, addresses and payments copied into the production copy, for anti-joins.
pgc_psql "$PORT" prod -q -c "CREATE SCHEMA san" -c "CREATE TABLE san.users (LIKE app.users)" \
    -c "CREATE TABLE san.addresses (LIKE app.addresses)" -c "CREATE TABLE san.payments (LIKE app.payments)"
for t in users addresses payments; do
    pgc_psql "$PORT" a -q -c "COPY app.$t TO STDOUT" | pgc_psql "$PORT" prod -q -c "COPY san.$t FROM STDIN"
done
survivors() { q prod "SELECT count(*) FROM $1"; } # FROM-clause: must count 0
check "no sanitized e-mail is any original one (any user)" \
    test "$(survivors "san.users s WHERE EXISTS (SELECT FROM app.users o WHERE lower(o.email) = lower(s.email))")" = 0
check "no sanitized phone is any original one" \
    test "$(survivors "san.users s WHERE EXISTS (SELECT FROM app.users o WHERE o.phone = s.phone)")" = 0
check "no first or last name survives (any user)" \
    test "$(survivors "san.users s WHERE s.first_name IN (SELECT first_name FROM app.users)
                                        OR s.last_name IN (SELECT last_name FROM app.users)")" = 0
check "no password hash survives" \
    test "$(survivors "san.users s WHERE EXISTS (SELECT FROM app.users o WHERE o.password_hash = s.password_hash)")" = 0
check "phones stay NULL where they were NULL, and only there" \
    test "$(survivors "san.users s JOIN app.users o USING (id) WHERE (o.phone IS NULL) <> (s.phone IS NULL)")" = 0
check "every date of birth moved by 1 to 180 days (NULL stays NULL)" \
    test "$(survivors "san.users s JOIN app.users o USING (id)
                       WHERE (o.date_of_birth IS NULL) <> (s.date_of_birth IS NULL)
                          OR abs(s.date_of_birth - o.date_of_birth) NOT BETWEEN 1 AND 180")" = 0
check "no street or town survives (any address)" \
    test "$(survivors "san.addresses s WHERE s.street IN (SELECT street FROM app.addresses)
                                            OR s.city IN (SELECT city FROM app.addresses)")" = 0
check "countries are kept" \
    test "$(survivors "san.addresses s JOIN app.addresses o USING (id) WHERE o.country <> s.country")" = 0
check "no IBAN survives" \
    test "$(survivors "san.payments s WHERE EXISTS (SELECT FROM app.payments o WHERE o.iban = s.iban)")" = 0
check "no card fingerprint survives" \
    test "$(survivors "san.payments s WHERE EXISTS (SELECT FROM app.payments o WHERE o.card_fingerprint = s.card_fingerprint)")" = 0
check "no card holder survives" \
    test "$(survivors "san.payments s WHERE EXISTS (SELECT FROM app.payments o WHERE o.card_holder = s.card_holder)")" = 0
check "amounts, statuses and methods are kept" \
    test "$(survivors "san.payments s JOIN app.payments o USING (id)
                       WHERE (o.amount, o.status, o.method, o.order_id) IS DISTINCT FROM (s.amount, s.status, s.method, s.order_id)")" = 0

check "the dummy hash is bcrypt of \"staging-password\" (pgcrypto's crypt, which spells it \$2a\$)" \
    test "$(pgc_psql "$PORT" a -Atq -c "CREATE EXTENSION pgcrypto" \
            -c "SELECT crypt('staging-password', h) = h FROM (SELECT DISTINCT
                    overlay(password_hash placing '\$2a\$' from 1 for 4) AS h FROM app.users) AS s")" = t

# ===================== failures =====================
# A sanitization that fails at its very end: one transaction, so nothing of it stays.
{ cat "$PROFILE/sanitize.sql"; echo "SELECT 1 / 0;"; } >failing.sql
if pgc_psql "$PORT" c -q --single-transaction -f failing.sql >/dev/null 2>failing.err; then
    bad "the failing sanitize.sql succeeded"
else
    ok "the failing sanitize.sql stopped at its error ($(grep -m1 -o 'division by zero' failing.err || head -c 100 failing.err))"
fi
db_fingerprint "$PORT" c >c.fp
check "... and the copy is exactly as it was (content checksums)" cmp -s prod.fp c.fp
check "... with its trigger enabled" \
    test "$(q c "SELECT tgenabled FROM pg_trigger WHERE tgname = 'users_set_updated_at'")" = O

# The catch-all check: an e-mail address in a column the profile does not know about.
pgc_psql "$PORT" b -q -c "ALTER TABLE app.orders ADD COLUMN gift_note text" \
    -c "UPDATE app.orders SET gift_note = 'Happy birthday! Reply to jane.doe@gmail.com, not user_1@example.invalid' WHERE id = 7"
pgc_psql "$PORT" b -Atq -f "$PROFILE/check.sql" >b.check
check "check.sql's catch-all names app.orders.gift_note ($(head -c 120 b.check))" \
    test "$(cut -d'|' -f1 b.check)" = app.orders.gift_note

echo
echo "figures: app.sql (users=$USERS) load $LOAD_S s, sanitize.sql $SAN_S s, check.sql $CHECK_S s"
check_summary profile_check
