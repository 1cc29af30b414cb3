# shellcheck shell=bash
# check.sh - the assertions of pgship's integration scripts. Source it; set WORK first (the
# scratch directory where expect_fail keeps a command's output).
#
#   ok WHAT / bad WHAT            count a pass or a failure (and print it)
#   check WHAT CMD...             CMD must succeed
#   expect_fail WHAT PATTERN CMD...
#                                 CMD must exit non-zero and print PATTERN (ERE) on stderr
#   check_summary NAME            print the tally; returns non-zero when anything failed

passed=0 failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAILED: $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
expect_fail() {
    local what=$1 pattern=$2; shift 2
    local rc=0
    "$@" >"$WORK/out.txt" 2>"$WORK/err.txt" || rc=$?
    if [ "$rc" -ne 0 ] && grep -q -E -- "$pattern" "$WORK/err.txt"; then
        ok "$what (exit $rc: $(grep -m1 -E -- "$pattern" "$WORK/err.txt" | cut -c1-150))"
    else
        bad "$what: exit $rc, stderr: $(head -c 600 "$WORK/err.txt")"
    fi
}
check_summary() {
    echo
    echo "$1: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
